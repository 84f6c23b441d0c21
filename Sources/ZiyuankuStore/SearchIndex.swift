import Foundation
import GRDB
import GRDBSQLite
import Logging
import ZiyuankuCore

/// The `zyk` FTS5 tokenizer: `SearchText` behind SQLite's tokenizer interface, so the index
/// and every query are tokenized by the same code. Public so tools reading a catalog (the
/// search benchmark) register the very same tokenizer.
public final class ZykTokenizer: FTS5CustomTokenizer {
    public static let name = "zyk"

    public init(db: Database, arguments: [String]) throws {}

    public func tokenize(
        context: UnsafeMutableRawPointer?, tokenization: FTS5Tokenization, pText: UnsafePointer<CChar>?, nText: CInt,
        tokenCallback: @escaping FTS5TokenCallback
    ) -> CInt {
        guard let pText, nText > 0 else { return SQLITE_OK }
        let mode: SearchText.Mode = tokenization.contains(.query) ? .query : .document
        var rc = SQLITE_OK
        pText.withMemoryRebound(to: UInt8.self, capacity: Int(nText)) { p in
            SearchText.tokenize(UnsafeBufferPointer(start: p, count: Int(nText)), mode: mode) { token, start, end, colocated in
                token.withMemoryRebound(to: CChar.self) { t in
                    rc = tokenCallback(context, colocated ? FTS5_TOKEN_COLOCATED : 0, t.baseAddress, CInt(t.count), CInt(start), CInt(end))
                }
                return rc == SQLITE_OK
            }
        }
        return rc
    }
}

/// Keeps `resource_search` equal to what readers see, inside the caller's transaction.
enum SearchIndex {
    static let columns = "title, keywords, knowledge_points, course, authors, description"

    static let selectRows = """
        SELECT r.rowid,
               json_extract(v.metadata, '$.title'),
               (SELECT group_concat(value, ' ; ') FROM json_each(v.metadata, '$.keywords')),
               (SELECT group_concat(value, ' ; ') FROM json_each(v.metadata, '$.knowledgePoints')),
               json_extract(v.metadata, '$.course'),
               (SELECT group_concat(json_extract(value, '$.name'), ' ; ') FROM json_each(v.metadata, '$.authors')),
               json_extract(v.metadata, '$.description')
        FROM resources r
        JOIN versions v ON v.resource_id = r.id AND v.number = coalesce(r.published_version, r.current_version)
        WHERE r.deleted_at IS NULL
        """

    /// Indexes resources not yet in the index with one statement. On SQLite 3.40 every
    /// statement that writes to FTS5 opens a savepoint, and FTS5 flushes its pending terms to a
    /// new segment at each savepoint: one INSERT per row would write one segment per row (and
    /// then merge them), so bulk paths index a whole batch at once.
    static func insert(_ db: Database, resourceIds: [String]) throws {
        guard !resourceIds.isEmpty else { return }
        let list = String(decoding: try JSONEncoder().encode(resourceIds), as: UTF8.self)
        try db.execute(
            sql: "INSERT INTO resource_search (rowid, \(columns)) \(selectRows) AND r.id IN (SELECT value FROM json_each(?))",
            arguments: [list])
    }

    /// Re-indexes one resource (removes it when it is deleted).
    static func update(_ db: Database, resourceId: String) throws {
        guard let rowid = try Int64.fetchOne(db.cachedStatement(sql: "SELECT rowid FROM resources WHERE id = ?"), arguments: [resourceId]) else { return }
        try db.cachedStatement(sql: "DELETE FROM resource_search WHERE rowid = ?").execute(arguments: [rowid])
        try db.cachedStatement(sql: "INSERT INTO resource_search (rowid, \(columns)) \(selectRows) AND r.id = ?").execute(arguments: [resourceId])
    }
}

extension Catalog {
    /// Rebuilds the whole search index from the catalog in batches, each one transaction that
    /// replaces the index rows of its range (saves meanwhile keep their own rows right, and
    /// search keeps answering); `progress(done, total)` after each batch. The tokenizer version
    /// is set to 'rebuilding' first, so a rebuild cut short is redone on the next open.
    @discardableResult
    public func reindex(batchSize: Int = 2000, progress: (Int, Int) -> Void = { _, _ in }) throws -> Int {
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO settings (key, value) VALUES ('search.tokenizer', 'rebuilding') ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        }
        let maxRowid = try pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM resources") ?? 0 }
        let total = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM resources WHERE deleted_at IS NULL") ?? 0 }
        var done = 0
        var lo: Int64 = 0
        while lo <= maxRowid {
            let hi = lo + Int64(batchSize) - 1
            try pool.write { db in
                try db.execute(sql: "DELETE FROM resource_search WHERE rowid BETWEEN ? AND ?", arguments: [lo, hi])
                try db.execute(
                    sql: "INSERT INTO resource_search (rowid, \(SearchIndex.columns)) \(SearchIndex.selectRows) AND r.rowid BETWEEN ? AND ?",
                    arguments: [lo, hi])
                done += db.changesCount
            }
            progress(min(done, total), total)
            lo = hi + 1
        }
        try pool.write { db in
            // Index rows past the last resource (none normally) go too.
            try db.execute(sql: "DELETE FROM resource_search WHERE rowid > ?", arguments: [maxRowid])
            try db.execute(
                sql: "INSERT INTO settings (key, value) VALUES ('search.tokenizer', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                arguments: [String(SearchText.version)])
        }
        return done
    }

    /// The index stores tokens, so a catalog indexed by another version of the tokenizer is
    /// rebuilt (once, when opened). Returns whether it was.
    @discardableResult
    public func reindexIfTokenizerChanged(progress: (Int, Int) -> Void = { _, _ in }) throws -> Bool {
        let built = try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'search.tokenizer'") }
        guard built != String(SearchText.version) else { return false }
        if try searchIndexCounts().expected > 0 {
            Logger(label: "zyk.catalog").notice(
                "rebuilding the search index",
                metadata: ["reason": "built by tokenizer version \(built ?? "none"), this build has \(SearchText.version)"])
        }
        try reindex(progress: progress)
        return true
    }

    /// Rows in the index and resources that should be there (for verification).
    public func searchIndexCounts() throws -> (indexed: Int, expected: Int) {
        try pool.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM resource_search") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM resources WHERE deleted_at IS NULL") ?? 0
            )
        }
    }
}
