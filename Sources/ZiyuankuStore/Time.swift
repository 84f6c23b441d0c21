import Foundation

/// Timestamps are stored and sent as RFC 3339 UTC with milliseconds.
public enum Timestamp {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    static let plain = Date.ISO8601FormatStyle()

    public static func format(_ date: Date) -> String { style.format(date) }
    public static func now() -> String { format(Date()) }
    public static func parse(_ s: String) -> Date? { fastParse(s) ?? (try? style.parse(s)) ?? (try? plain.parse(s)) }

    /// The exact shape we write, `2026-11-30T03:04:17.977Z`, without a formatter.
    static func fastParse(_ s: String) -> Date? {
        let u = Array(s.utf8)
        guard u.count == 24, u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58, u[19] == 46, u[23] == 90 else { return nil }
        func num(_ a: Int, _ b: Int) -> Int32? {
            var v: Int32 = 0
            for i in a..<b {
                guard u[i] >= 48 && u[i] <= 57 else { return nil }
                v = v * 10 + Int32(u[i] - 48)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13), let mi = num(14, 16), let sec = num(17, 19),
            let ms = num(20, 23)
        else { return nil }
        var t = tm()
        t.tm_year = y - 1900
        t.tm_mon = mo - 1
        t.tm_mday = d
        t.tm_hour = h
        t.tm_min = mi
        t.tm_sec = sec
        return Date(timeIntervalSince1970: TimeInterval(timegm(&t)) + Double(ms) / 1000)
    }
}
