import Crypto
import Foundation
import GRDB
import ZiyuankuCore

/// One row of the audit log.
public struct AuditEntry: Sendable, Equatable, Codable {
    public var seq: Int64
    public var at: String
    public var actorId: String?
    public var action: String
    public var resourceId: String?
    public var version: Int?
    /// A JSON object (canonical: sorted keys), as stored.
    public var details: String
    public var prevHash: String
    public var hash: String

    init(row: Row) {
        seq = row["seq"]
        at = row["at"]
        actorId = row["actor_id"]
        action = row["action"]
        resourceId = row["resource_id"]
        version = row["version"]
        details = row["details"]
        prevHash = row["prev_hash"]
        hash = row["hash"]
    }

    /// The bytes whose SHA-256 is `hash`: every field, newline-separated, absent ones empty,
    /// ending with the previous row's hash. Changing any field, or the order of rows, changes it.
    static func hashInput(
        seq: Int64, at: String, actorId: String?, action: String, resourceId: String?, version: Int?, details: String, prevHash: String
    ) -> String {
        [String(seq), at, actorId ?? "", action, resourceId ?? "", version.map(String.init) ?? "", details, prevHash].joined(separator: "\n")
    }

    static func hash(_ input: String) -> String {
        Identifiers.sha256Hex(Array(input.utf8))
    }

    /// Whether the row's own hash matches its fields and `prevHash`.
    var isSelfConsistent: Bool {
        Self.hash(
            Self.hashInput(seq: seq, at: at, actorId: actorId, action: action, resourceId: resourceId, version: version, details: details, prevHash: prevHash))
            == hash
    }
}

/// What `verifyAudit` found: the first broken link, if any.
public struct AuditVerification: Sendable, Codable, Equatable {
    public var ok: Bool
    public var entries: Int
    public var headSeq: Int64?
    /// The sequence number where the chain first breaks, and why.
    public var brokenAt: Int64?
    public var problem: String?
}

/// Filters for listing the audit log (all optional; newest first).
public struct AuditQuery: Sendable {
    public var resourceId: String?
    public var actorId: String?
    public var action: String?
    public var since: String?
    public var until: String?
    /// Only entries with a smaller seq (for paging backwards).
    public var before: Int64?
    public var limit = 100
    public init() {}
}

extension Catalog {
    static let genesisHash = String(repeating: "0", count: 64)

    /// Appends one entry inside the caller's write transaction, chained to the previous one.
    /// Every audited change calls this in the same transaction as the change itself.
    static func audit(
        _ db: Database, actor: String?, action: String, resourceId: String? = nil, version: Int? = nil, details: [String: JSONValue] = [:]
    ) throws {
        let last = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"))
        let seq = (last?["seq"] as Int64? ?? 0) + 1
        let prev = last?["hash"] as String? ?? genesisHash
        let at = Timestamp.now()
        let detailText = canonicalJSON(.object(details))
        let hash = AuditEntry.hash(
            AuditEntry.hashInput(
                seq: seq, at: at, actorId: actor, action: action, resourceId: resourceId, version: version, details: detailText, prevHash: prev))
        try db.cachedStatement(
            sql: """
                INSERT INTO audit_log (seq, at, actor_id, action, resource_id, version, details, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [seq, at, actor, action, resourceId, version, detailText, prev, hash])
        try db.cachedStatement(
            sql: """
                INSERT INTO settings (key, value) VALUES ('audit.head', ?)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """
        ).execute(arguments: ["\(seq):\(hash)"])
    }

    /// JSON with sorted keys and no insignificant whitespace, so the hashed text is stable.
    static func canonicalJSON(_ v: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Appends an entry in a transaction of its own (for events that change nothing else, such
    /// as a download of a non-public file).
    public func audit(actor: String?, action: String, resourceId: String? = nil, version: Int? = nil, details: [String: JSONValue] = [:]) throws {
        try pool.write { db in try Self.audit(db, actor: actor, action: action, resourceId: resourceId, version: version, details: details) }
    }

    /// Entries matching `q`, newest first.
    public func auditEntries(_ q: AuditQuery) throws -> [AuditEntry] {
        var clauses: [String] = []
        var args: [any DatabaseValueConvertible] = []
        for (column, value) in [("resource_id", q.resourceId), ("actor_id", q.actorId), ("action", q.action)] {
            if let value {
                clauses.append("\(column) = ?")
                args.append(value)
            }
        }
        if let since = q.since {
            clauses.append("at >= ?")
            args.append(since)
        }
        if let until = q.until {
            clauses.append("at < ?")
            args.append(until)
        }
        if let before = q.before {
            clauses.append("seq < ?")
            args.append(before)
        }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_log \(whereSQL) ORDER BY seq DESC LIMIT ?", arguments: StatementArguments(args + [q.limit]))
                .map(AuditEntry.init(row:))
        }
    }

    /// Walks the whole chain in order and reports the first broken link: a row whose hash does
    /// not match its fields, whose `prev_hash` is not the previous row's hash, a gap or a
    /// reordering in `seq`, or a chain that ends before the recorded head (rows deleted at the
    /// end). Reads one consistent snapshot, streaming (memory does not grow with the log).
    public func verifyAudit(progress: (Int64, Int64) -> Void = { _, _ in }) throws -> AuditVerification {
        try pool.read { db in
            let head = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'audit.head'")
            let headParts = head?.split(separator: ":").map(String.init)
            let headSeq = headParts.flatMap { $0.count == 2 ? Int64($0[0]) : nil }
            let total = try Int64.fetchOne(db, sql: "SELECT count(*) FROM audit_log") ?? 0
            var result = AuditVerification(ok: true, entries: Int(total), headSeq: headSeq)
            func broken(_ seq: Int64, _ why: String) -> AuditVerification {
                result.ok = false
                result.brokenAt = seq
                result.problem = why
                return result
            }
            var expectedSeq: Int64 = 1
            var prevHash = Self.genesisHash
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit_log ORDER BY seq")
            while let row = try rows.next() {
                let e = AuditEntry(row: row)
                if e.seq != expectedSeq {
                    return broken(expectedSeq, e.seq > expectedSeq ? "entries \(expectedSeq)…\(e.seq - 1) are missing" : "entry \(e.seq) is out of order")
                }
                if e.prevHash != prevHash {
                    return broken(e.seq, "its previous-hash does not match entry \(e.seq - 1) (an entry before it was changed, removed or moved)")
                }
                if !e.isSelfConsistent { return broken(e.seq, "its contents do not match its hash (the entry was changed)") }
                prevHash = e.hash
                expectedSeq += 1
                if expectedSeq % 10_000 == 0 { progress(expectedSeq - 1, total) }
            }
            progress(expectedSeq - 1, total)
            let last = expectedSeq - 1
            switch (headParts, last) {
            case (nil, 0): return result
            case (nil, _): return broken(1, "the recorded head of the log is missing")
            case (let parts?, _):
                guard parts.count == 2, let seq = Int64(parts[0]) else { return broken(last, "the recorded head of the log is unreadable") }
                if seq > last { return broken(last + 1, "entries \(last + 1)…\(seq) are missing at the end (the head records \(seq))") }
                if seq < last || parts[1] != prevHash { return broken(seq, "the recorded head (\(seq)) does not match the last entry (\(last))") }
                return result
            }
        }
    }
}
