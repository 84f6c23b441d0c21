import Foundation
import GRDB
import Synchronization

/// Counts downloads in memory and adds them to `resources.download_count` in one transaction
/// per flush, so a busy download path never waits for a write.
public final class DownloadCounter: Sendable {
    private let pending = Mutex<[String: Int]>([:])
    let catalog: Catalog

    public init(catalog: Catalog) { self.catalog = catalog }

    public func record(resourceId: String) {
        pending.withLock { $0[resourceId, default: 0] += 1 }
    }

    /// Writes what was counted since the last flush; returns how many downloads were written.
    @discardableResult
    public func flush() throws -> Int {
        let batch = pending.withLock { p -> [String: Int] in
            let b = p
            p.removeAll()
            return b
        }
        guard !batch.isEmpty else { return 0 }
        do {
            try catalog.pool.write { db in
                for (id, n) in batch {
                    try db.execute(sql: "UPDATE resources SET download_count = download_count + ? WHERE id = ?", arguments: [n, id])
                }
            }
        } catch {
            // Keep the counts for the next attempt (e.g. while the disk is full).
            pending.withLock { p in for (id, n) in batch { p[id, default: 0] += n } }
            throw error
        }
        return batch.values.reduce(0, +)
    }
}
