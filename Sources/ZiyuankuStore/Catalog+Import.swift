import Foundation
import GRDB
import ZiyuankuCore

extension Catalog {
    /// The import keys this owner already imported (to skip them before reading any bytes).
    public func importedKeys(owner: String) throws -> Set<String> {
        try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT import_key FROM import_rows WHERE owner_id = ?", arguments: [owner])) }
    }

    /// Creates a draft for one manifest row and records its import key in the same transaction;
    /// returns nil (creating nothing) when the key was imported meanwhile.
    public func createImported(owner: Principal, key: String, metadata: ResourceMetadata, files: [NewFile]) throws -> String? {
        try pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM import_rows WHERE owner_id = ? AND import_key = ?", arguments: [owner.userId, key]) == true {
                return nil
            }
            try ensureBlobs(files)
            let id = try Self.insertResource(db, owner: owner, metadata: metadata, files: files, changeNote: "imported (\(key))")
            try db.execute(
                sql: "INSERT INTO import_rows (owner_id, import_key, resource_id, imported_at) VALUES (?, ?, ?, ?)",
                arguments: [owner.userId, key, id, Timestamp.now()])
            return id
        }
    }
}

/// Where an import sent over HTTP is: waiting its turn, running, finished (done or failed),
/// or cut off by a stop (the import is idempotent: send it again).
public enum ImportJobStatus: String, Sendable, Codable, CaseIterable {
    case queued, running, done, failed, interrupted

    var isFinished: Bool { self == .done || self == .failed || self == .interrupted }
}

/// An import sent over HTTP, run in the background: a row of `import_jobs`, read as a GRDB
/// record (its status through `Row.decode`).
public struct ImportJob: Sendable, Equatable, FetchableRecord, TableRecord {
    public static let databaseTableName = "import_jobs"

    public var id: String
    public var userId: String
    public var status: ImportJobStatus
    public var createdAt: String
    public var finishedAt: String?
    /// The importer's summary as JSON (when done).
    public var summary: String?
    public var error: String?

    public init(row: Row) throws {
        id = row["id"]
        userId = row["user_id"]
        status = try row.decode(ImportJobStatus.self, "status")
        createdAt = row["created_at"]
        finishedAt = row["finished_at"]
        summary = row["summary"]
        error = row["error"]
    }
}

extension Catalog {
    public func createImportJob(userId: String) throws -> ImportJob {
        let id = Identifiers.uuidV7()
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO import_jobs (id, user_id, status, created_at) VALUES (?, ?, 'queued', ?)", arguments: [id, userId, Timestamp.now()])
        }
        return try importJob(id: id)!
    }

    public func importJob(id: String) throws -> ImportJob? {
        try pool.read { db in try ImportJob.fetchOne(db, key: id) }
    }

    public func updateImportJob(id: String, status: ImportJobStatus, summary: String? = nil, error: String? = nil) throws {
        let finished = status.isFinished ? Timestamp.now() : nil
        try pool.write { db in
            try db.execute(
                sql:
                    "UPDATE import_jobs SET status = ?, summary = coalesce(?, summary), error = coalesce(?, error), finished_at = coalesce(?, finished_at) WHERE id = ?",
                arguments: [status.rawValue, summary, error, finished, id])
        }
    }

    /// Jobs a killed server left queued or running (the import is idempotent: send it again).
    public func markInterruptedImports() throws {
        try pool.write { db in
            try db.execute(
                sql: "UPDATE import_jobs SET status = 'interrupted', finished_at = ? WHERE status IN ('queued', 'running')", arguments: [Timestamp.now()])
        }
    }
}
