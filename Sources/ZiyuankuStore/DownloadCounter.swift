import Foundation
import GRDB
import Synchronization

/// Counts downloads in memory and writes them (the resource's total and its count per day) in
/// one transaction per flush, so a busy download path never waits for a write. A repeated
/// download of the same file by the same client within `window` counts once (PRODUCT.md §8):
/// video players and download managers ask for many ranges of one file.
public final class DownloadCounter: Sendable {
    public static let window: TimeInterval = 30
    /// Above this many remembered recent downloads the oldest are forgotten (memory stays bounded
    /// even under a flood; the price is that such a flood may count a few repeats).
    static let recentLimit = 100_000

    struct State {
        var pending: [Key: Int] = [:]
        var recent: [String: TimeInterval] = [:]
    }
    struct Key: Hashable {
        var resourceId: String
        var day: String
    }
    private let state = Mutex(State())
    let catalog: Catalog

    public init(catalog: Catalog) { self.catalog = catalog }

    /// Counts one download of `file` of a resource by `client` (a token id, or the address and
    /// user agent of an anonymous client). Returns false when it repeats one counted less than
    /// `window` ago.
    @discardableResult
    public func record(resourceId: String, file: String, client: String, now: Date = Date()) -> Bool {
        let t = now.timeIntervalSince1970
        let recentKey = resourceId + "\u{0}" + file + "\u{0}" + client
        let day = Self.day(now)
        return state.withLock { s in
            if let last = s.recent[recentKey], t - last < Self.window { return false }
            if s.recent.count >= Self.recentLimit {
                s.recent = s.recent.filter { t - $0.value < Self.window }
                if s.recent.count >= Self.recentLimit { s.recent.removeAll(keepingCapacity: true) }
            }
            s.recent[recentKey] = t
            s.pending[Key(resourceId: resourceId, day: day), default: 0] += 1
            return true
        }
    }

    /// The calendar day in China Standard Time (UTC+8), as YYYY-MM-DD.
    public static func day(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970 + 8 * 3600)
        var parts = tm()
        gmtime_r(&t, &parts)
        let y = Int(parts.tm_year) + 1900
        let m = Int(parts.tm_mon) + 1
        let d = Int(parts.tm_mday)
        return "\(y)-\(m < 10 ? "0" : "")\(m)-\(d < 10 ? "0" : "")\(d)"
    }

    /// Writes what was counted since the last flush; returns how many downloads were written.
    @discardableResult
    public func flush() throws -> Int {
        let batch = state.withLock { s -> [Key: Int] in
            let b = s.pending
            s.pending.removeAll()
            return b
        }
        guard !batch.isEmpty else { return 0 }
        do {
            try catalog.pool.write { db in
                for (key, n) in batch {
                    try db.cachedStatement(sql: "UPDATE resources SET download_count = download_count + ? WHERE id = ?").execute(arguments: [n, key.resourceId])
                    // A resource purged meanwhile has nothing to count against.
                    try db.cachedStatement(sql: """
                            INSERT INTO download_days (resource_id, day, count) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM resources WHERE id = ?)
                            ON CONFLICT (resource_id, day) DO UPDATE SET count = count + excluded.count
                            """).execute(arguments: [key.resourceId, key.day, n, key.resourceId])
                }
            }
        } catch {
            // Keep the counts for the next attempt (e.g. while the disk is full).
            state.withLock { s in for (k, n) in batch { s.pending[k, default: 0] += n } }
            throw error
        }
        return batch.values.reduce(0, +)
    }
}

extension Catalog {
    /// Downloads of a resource per day (China Standard Time), oldest first, within [from, to].
    public func downloadDays(resourceId: String, from: String, to: String) throws -> [(day: String, count: Int)] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT day, count FROM download_days WHERE resource_id = ? AND day BETWEEN ? AND ? ORDER BY day",
                arguments: [resourceId, from, to]
            ).map { ($0["day"], $0["count"]) }
        }
    }
}
