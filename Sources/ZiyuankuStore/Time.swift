import Foundation

/// Timestamps are stored and sent as RFC 3339 UTC with milliseconds.
public enum Timestamp {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    static let plain = Date.ISO8601FormatStyle()

    public static func format(_ date: Date) -> String { style.format(date) }
    public static func now() -> String { format(Date()) }
    public static func parse(_ s: String) -> Date? { (try? style.parse(s)) ?? (try? plain.parse(s)) }
}
