import Foundation
import GRDB
import ZiyuankuCore

/// A resumable (tus) upload: a row of `tus_uploads`, read as a GRDB record.
public struct TusUpload: Sendable, Equatable, Codable, FetchableRecord, TableRecord {
    public static let databaseTableName = "tus_uploads"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    public enum Columns {
        public static let received = Column("received")
        public static let length = Column("length")
        public static let sha256 = Column("sha256")
        public static let completedAt = Column("completed_at")
        public static let expiresAt = Column("expires_at")
    }

    public var id: String
    public var userId: String
    public var length: Int64
    /// Bytes received and fsynced.
    public var received: Int64
    public var metadata: String
    public var filename: String?
    public var createdAt: String
    public var expiresAt: String
    /// Set when the upload is complete and its bytes are a blob.
    public var sha256: String?

    public var isExpired: Bool { (Timestamp.parse(expiresAt) ?? .distantPast) < Date() }
}

extension Catalog {
    /// Registers a resumable upload. `maxOpen` and `maxOpenBytes` bound the user's uploads
    /// that are neither complete nor expired, and the bytes they declare.
    public func createTusUpload(
        userId: String, length: Int64, metadata: String, filename: String?, expiresIn: TimeInterval, maxOpen: Int? = nil, maxOpenBytes: Int64? = nil
    ) throws -> TusUpload {
        let id = Identifiers.uuidV7()
        let now = Date()
        try pool.write { db in
            if maxOpen != nil || maxOpenBytes != nil {
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT count(*), coalesce(sum(length), 0) FROM tus_uploads WHERE user_id = ? AND sha256 IS NULL AND expires_at > ?"),
                    arguments: [userId, Timestamp.format(now)])
                let open: Int = row?[0] ?? 0
                let declared: Int64 = row?[1] ?? 0
                if let maxOpen, open >= maxOpen {
                    throw DomainError(
                        .quotaExceeded,
                        "You have \(open) unfinished resumable uploads (at most \(maxOpen)); finish or delete one (DELETE /v1/uploads/{id}) first.",
                        extra: ["limit": .number(Double(maxOpen))])
                }
                let (total, overflow) = declared.addingReportingOverflow(length)
                if let maxOpenBytes, overflow || total > maxOpenBytes {
                    throw DomainError(
                        .quotaExceeded,
                        "Your unfinished resumable uploads would declare \(overflow ? "too many" : String(total)) bytes in all (at most \(maxOpenBytes)); finish or delete some first.",
                        extra: ["limit": .number(Double(maxOpenBytes))])
                }
            }
            try db.execute(
                sql: """
                    INSERT INTO tus_uploads (id, user_id, length, metadata, filename, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [id, userId, length, metadata, filename, Timestamp.format(now), Timestamp.format(now.addingTimeInterval(expiresIn))])
        }
        return try tusUpload(id: id)!
    }

    public func tusUpload(id: String) throws -> TusUpload? {
        try pool.read { db in try TusUpload.fetchOne(db, key: id) }
    }

    /// Records bytes fsynced from `from` to `to`; fails (returns false) when another request
    /// moved the offset meanwhile. Each accepted chunk extends the expiry.
    public func advanceTusUpload(id: String, from: Int64, to: Int64, expiresIn: TimeInterval) throws -> Bool {
        try pool.write { db in
            try db.execute(
                sql: "UPDATE tus_uploads SET received = ?, expires_at = ? WHERE id = ? AND received = ? AND sha256 IS NULL",
                arguments: [to, Timestamp.format(Date().addingTimeInterval(expiresIn)), id, from])
            return db.changesCount == 1
        }
    }

    /// The upload's bytes are in the blob store now: record the blob for its uploader (who may
    /// then attach it to a resource) and mark the upload complete, in one transaction.
    public func completeTusUpload(id: String, blob: BlobInfo, userId: String) throws {
        try pool.write { db in
            try Self.insertBlob(db, sha256: blob.sha256, size: blob.size)
            try db.execute(
                sql: "INSERT INTO blob_uploads (sha256, user_id, uploaded_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: [blob.sha256, userId, Timestamp.now()])
            try db.execute(sql: "UPDATE tus_uploads SET sha256 = ?, completed_at = ? WHERE id = ?", arguments: [blob.sha256, Timestamp.now(), id])
            try Self.audit(
                db, actor: userId, action: "blob.upload",
                details: ["sha256": .string(blob.sha256), "size": .number(Double(blob.size)), "tus": .string(id)])
        }
    }

    /// Deletes an upload that is still expired (not extended by a PATCH meanwhile) and not
    /// complete; returns whether it did.
    public func deleteExpiredTusUpload(id: String, before: Date) throws -> Bool {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM tus_uploads WHERE id = ? AND expires_at < ? AND sha256 IS NULL", arguments: [id, Timestamp.format(before)])
            return db.changesCount == 1
        }
    }

    public func deleteTusUpload(id: String) throws {
        try pool.write { db in try db.execute(sql: "DELETE FROM tus_uploads WHERE id = ?", arguments: [id]) }
    }

    /// Uploads that received all their bytes: those without a digest yet, and those with one
    /// (whose file may still wait in tmp/ after a crash).
    public func unfinishedTusCompletions() throws -> [TusUpload] {
        let recent = Timestamp.format(Date().addingTimeInterval(-7 * 86_400))
        return try pool.read { db in
            try TusUpload.filter(TusUpload.Columns.received == TusUpload.Columns.length)
                .filter(TusUpload.Columns.sha256 == nil || TusUpload.Columns.completedAt >= recent)
                .fetchAll(db)
        }
    }

    /// Uploads whose expiry has passed (for gc).
    public func expiredTusUploads(before: Date) throws -> [String] {
        try pool.read { db in
            try TusUpload.select(Column("id"), as: String.self).filter(TusUpload.Columns.expiresAt < Timestamp.format(before)).fetchAll(db)
        }
    }
}
