import Foundation
import GRDB
import Synchronization

/// Counts downloads in memory and writes them (the resource's total and its count per day) in
/// one transaction per flush, so a busy download path never waits for a write. A repeated
/// download of the same file by the same client within `window` counts once (docs/product.md#library-report):
/// video players and download managers ask for many ranges of one file.
public final class DownloadCounter: Sendable {
    public static let window: TimeInterval = 30
    /// Recent fetches are remembered in two generations of at most this many entries each (a
    /// fixed-size hash per client and file), so memory stays bounded under any flood; the price
    /// of a flood is that a few repeats may count twice.
    static let generationLimit = 200_000

    struct Entry {
        var firstSeen: TimeInterval
        var counted: Bool
    }
    struct State {
        var pending: [Key: Int] = [:]
        var current: [Int: Entry] = [:]
        var previous: [Int: Entry] = [:]
        var generationStart: TimeInterval = 0
    }
    struct Key: Hashable {
        var resourceId: String
        var day: String
    }
    private let state = Mutex(State())
    let catalog: Catalog

    public init(catalog: Catalog) { self.catalog = catalog }

    /// Notes one fetch of `file` of a resource by `client` (a token id, or the address and user
    /// agent of an anonymous client). `first`: no fetch of this file by this client in the last
    /// `window` (non-public downloads are audited then, whatever the range). `counted`: this
    /// fetch counts as a download — it starts at byte 0 and none was counted in the window.
    @discardableResult
    public func record(resourceId: String, file: String, client: String, fromStart: Bool = true, now: Date = Date()) -> (first: Bool, counted: Bool) {
        let t = now.timeIntervalSince1970
        var hasher = Hasher()
        hasher.combine(resourceId)
        hasher.combine(file)
        hasher.combine(client.prefix(512))
        let key = hasher.finalize()
        let day = Self.day(now)
        return state.withLock { s in
            if t - s.generationStart >= Self.window || s.current.count >= Self.generationLimit {
                s.previous = s.current
                s.current = [:]
                s.generationStart = t
            }
            let known = (s.current[key] ?? s.previous[key]).flatMap { t - $0.firstSeen < Self.window ? $0 : nil }
            var entry = known ?? Entry(firstSeen: t, counted: false)
            var counted = false
            if fromStart && !entry.counted {
                entry.counted = true
                counted = true
                s.pending[Key(resourceId: resourceId, day: day), default: 0] += 1
            }
            s.current[key] = entry
            return (known == nil, counted)
        }
    }

    /// How many recent fetches are remembered (bounded by two generations).
    public var rememberedCount: Int { state.withLock { $0.current.count + $0.previous.count } }

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
                    try db.cachedStatement(
                        sql: """
                            INSERT INTO download_days (resource_id, day, count) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM resources WHERE id = ?)
                            ON CONFLICT (resource_id, day) DO UPDATE SET count = count + excluded.count
                            """
                    ).execute(arguments: [key.resourceId, key.day, n, key.resourceId])
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
