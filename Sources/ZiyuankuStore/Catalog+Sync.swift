import Foundation
import GRDB
import ZiyuankuCore

public enum SyncOp: String, Sendable, Codable {
    case put, delete
}

public enum SyncState: String, Sendable, Codable, CaseIterable {
    case pending, inFlight, done, failed, dead
}

/// One outbox entry (one per selected resource).
public struct SyncEntry: Sendable, Encodable, Equatable {
    public var resourceId: String
    public var op: SyncOp
    public var version: Int?
    public var state: SyncState
    public var generation: Int
    public var attempts: Int
    /// RFC 3339.
    public var nextAttemptAt: String
    public var lastError: String?
    public var lastStatus: Int?
    public var remoteId: String?
    public var sentVersion: Int?
    public var selectedAt: String
    public var selectedBy: String?
    public var enqueuedAt: String
    public var updatedAt: String
    public var doneAt: String?
    /// The resource's title now (nil once purged).
    public var title: String?
    var nextAttemptTime: Double

    enum CodingKeys: String, CodingKey {
        case resourceId, op, version, state, generation, attempts, nextAttemptAt, lastError, lastStatus, remoteId, sentVersion, selectedAt
        case selectedBy, enqueuedAt, updatedAt, doneAt, title
    }

    init(row: Row) throws {
        resourceId = row["resource_id"]
        op = try row.decode(SyncOp.self, "op")
        version = row["version"]
        state = try row.decode(SyncState.self, "state")
        generation = row["generation"]
        attempts = row["attempts"]
        nextAttemptTime = row["next_attempt_at"]
        nextAttemptAt = Timestamp.format(Date(timeIntervalSince1970: nextAttemptTime))
        lastError = row["last_error"]
        lastStatus = row["last_status"]
        remoteId = row["remote_id"]
        sentVersion = row["sent_version"]
        selectedAt = row["selected_at"]
        selectedBy = row["selected_by"]
        enqueuedAt = row["enqueued_at"]
        updatedAt = row["updated_at"]
        doneAt = row["done_at"]
        title = row["title"]
    }
}

/// One entry with its attempts, newest first (`zyk sync status --id`, `GET …/sync/entries/{id}`).
public struct SyncEntryDetail: Sendable, Encodable, Equatable {
    public var entry: SyncEntry
    public var attempts: [SyncAttempt]
}

public struct SyncAttempt: Sendable, Codable, Equatable {
    public var generation: Int
    public var op: SyncOp
    public var version: Int?
    public var startedAt: String
    public var finishedAt: String
    public var outcome: String
    public var httpStatus: Int?
    public var error: String?
    public var retryAfter: Double?
    public var bytesSent: Int64
}

/// Which published resources an admin selects. Only resources in scope are selected: published,
/// public, `pushToPlatform` set, not deleted (docs/product.md#sync-to-the-national-platform).
public struct SyncSelection: Sendable {
    public var ids: [String] = []
    public var majorCode: String?
    public var resourceType: ResourceType?
    public var organizationId: String?
    public init() {}
    public var isEmpty: Bool { ids.isEmpty && majorCode == nil && resourceType == nil && organizationId == nil }
}

public struct SyncSelectResult: Sendable, Codable, Equatable {
    public struct Skipped: Sendable, Codable, Equatable {
        public var id: String
        public var reason: String
    }
    /// Entries queued (new, or a newer version than the platform has).
    public var queued: [String] = []
    /// Already on the platform at the same version, or already queued.
    public var unchanged: [String] = []
    public var skipped: [Skipped] = []
}

public struct SyncCounts: Sendable, Codable, Equatable {
    public var pending = 0
    public var inFlight = 0
    public var done = 0
    public var failed = 0
    public var dead = 0
    public var total: Int { pending + inFlight + done + failed + dead }
    /// Not on the platform yet and not given up on: pending, in flight, or failed and waiting to retry.
    public var waiting: Int { pending + inFlight + failed }
    public init() {}

    enum CodingKeys: String, CodingKey { case pending, inFlight, done, failed, dead, total }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pending, forKey: .pending)
        try c.encode(inFlight, forKey: .inFlight)
        try c.encode(done, forKey: .done)
        try c.encode(failed, forKey: .failed)
        try c.encode(dead, forKey: .dead)
        try c.encode(total, forKey: .total)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pending = try c.decode(Int.self, forKey: .pending)
        inFlight = try c.decode(Int.self, forKey: .inFlight)
        done = try c.decode(Int.self, forKey: .done)
        failed = try c.decode(Int.self, forKey: .failed)
        dead = try c.decode(Int.self, forKey: .dead)
    }
}

/// What the platform adapter needs to build a record for one version.
public struct SyncPayload: Sendable {
    public var resourceId: String
    public var version: ResourceVersion
    public var createdAt: String
    public var organizationId: String
    public var organizationName: String
    /// Names of the version's majors, by code (codes not in the vocabulary are absent).
    public var majorNames: [String: String]
}

/// How an attempt ended, as the runner reports it back.
public enum SyncOutcome: Sendable {
    case done(remoteId: String?, status: Int?)
    case failed(message: String, status: Int?, retryAfter: Double?)
    case dead(message: String, status: Int?)
    /// Stopped by shutdown: back to the queue, the attempt not counted.
    case cancelled
}

extension Catalog {
    // MARK: outbox writes inside other changes' transactions

    /// Queues `op` for a resource, replacing whatever the entry held (a resource changed twice
    /// before a sync sends only its latest state). Returns false when nothing needed queueing.
    /// An entry in flight stays in flight with the new work (a bumped generation): nobody else
    /// may claim it until that attempt ends, so two requests about one resource never race.
    @discardableResult
    static func enqueueSync(_ db: Database, id: String, op: SyncOp, version: Int?, selectedBy: String? = nil, now: Date = Date()) throws -> Bool {
        let ts = Timestamp.format(now)
        if let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT op, version, state, sent_version FROM sync_outbox WHERE resource_id = ?"), arguments: [id])
        {
            let state = try row.decode(SyncState.self, "state")
            let sameWork = row["op"] as String == op.rawValue && row["version"] as Int? == version
            // Already queued for exactly this, or already done at exactly this: nothing to do.
            if sameWork && (state == .pending || state == .failed || state == .inFlight) { return false }
            if sameWork && state == .done && (op == .delete || row["sent_version"] as Int? == version) { return false }
            try db.cachedStatement(
                sql: """
                    UPDATE sync_outbox SET op = ?, version = ?, state = CASE state WHEN 'inFlight' THEN 'inFlight' ELSE 'pending' END,
                        generation = generation + 1, attempts = 0, next_attempt_at = ?, last_error = NULL, last_status = NULL,
                        enqueued_at = ?, updated_at = ?
                    WHERE resource_id = ?
                    """
            ).execute(arguments: [op.rawValue, version, now.timeIntervalSince1970, ts, ts, id])
            return true
        }
        guard op == .put else { return false }  // never sent: nothing to delete
        try db.cachedStatement(
            sql: """
                INSERT INTO sync_outbox (resource_id, op, version, state, next_attempt_at, selected_at, selected_by, enqueued_at, updated_at)
                VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [id, op.rawValue, version, now.timeIntervalSince1970, ts, selectedBy, ts, ts])
        return true
    }

    static func isSelected(_ db: Database, id: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM sync_outbox WHERE resource_id = ?"), arguments: [id]) ?? false
    }

    /// A selected resource got a newly published version: send it if it is still in scope,
    /// otherwise take it off the platform.
    static func syncAfterPublish(_ db: Database, id: String, version: Int, metadata: ResourceMetadata) throws {
        guard try isSelected(db, id: id) else { return }
        if metadata.pushToPlatform && metadata.visibility == .public {
            try enqueueSync(db, id: id, op: .put, version: version)
        } else {
            try enqueueSync(db, id: id, op: .delete, version: nil)
        }
    }

    /// A selected resource was withdrawn or deleted: take it off the platform.
    static func syncAfterRemoval(_ db: Database, id: String) throws {
        guard try isSelected(db, id: id) else { return }
        try enqueueSync(db, id: id, op: .delete, version: nil)
    }

    // MARK: selection

    /// Queues the published, public, `pushToPlatform` resources matching `selection`.
    /// Resources named by id but out of scope are reported with the reason.
    public func selectForSync(_ selection: SyncSelection, by actor: String?, dryRun: Bool = false) throws -> SyncSelectResult {
        guard !selection.isEmpty else {
            throw DomainError(.validation, "Say what to select: resource ids, a major, a resource type or an organization.")
        }
        let work = { (db: Database) throws -> SyncSelectResult in
            var result = SyncSelectResult()
            var conditions: [String] = []
            var args: [any DatabaseValueConvertible] = []
            if !selection.ids.isEmpty {
                conditions.append("r.id IN (\(databaseQuestionMarks(count: selection.ids.count)))")
                args += selection.ids
            }
            if let m = selection.majorCode {
                conditions.append(
                    "EXISTS (SELECT 1 FROM resource_majors rm WHERE rm.resource_id = r.id AND (rm.major_code = ? OR rm.major_code LIKE ? || '%'))")
                args += [m, m]
            }
            if let t = selection.resourceType {
                conditions.append("r.resource_type = ?")
                args.append(t.rawValue)
            }
            if let o = selection.organizationId {
                conditions.append("r.organization_id = ?")
                args.append(o)
            }
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT r.id, r.published_version, r.deleted_at, r.visibility, v.metadata
                    FROM resources r LEFT JOIN versions v ON v.resource_id = r.id AND v.number = r.published_version
                    WHERE \(conditions.joined(separator: " AND ")) ORDER BY r.id
                    """, arguments: StatementArguments(args))
            var seen = Set<String>()
            for row in rows {
                let id: String = row["id"]
                seen.insert(id)
                let reason: String?
                var version: Int? = row["published_version"]
                if row["deleted_at"] as String? != nil {
                    reason = "deleted"
                    version = nil
                } else if version == nil {
                    reason = "not published"
                } else if let json = row["metadata"] as String?,
                    let m = try? JSONDecoder().decode(ResourceMetadata.self, from: Data(json.utf8))
                {
                    reason = m.visibility != .public ? "not public (visibility \(m.visibility.rawValue))" : (m.pushToPlatform ? nil : "pushToPlatform is false")
                } else {
                    reason = "published version unreadable"
                }
                if let reason {
                    // Named explicitly: say why. Matched by a query: out of scope, skip quietly.
                    if !selection.ids.isEmpty { result.skipped.append(.init(id: id, reason: reason)) }
                    continue
                }
                if try Self.enqueueSync(db, id: id, op: .put, version: version, selectedBy: actor) {
                    result.queued.append(id)
                } else {
                    result.unchanged.append(id)
                }
            }
            for id in selection.ids where !seen.contains(id) {
                let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM resources WHERE id = ?", arguments: [id]) ?? false
                result.skipped.append(.init(id: id, reason: exists ? "does not match the other criteria" : "no such resource"))
            }
            if !dryRun && !result.queued.isEmpty {
                try Self.audit(
                    db, actor: actor, action: "sync.select",
                    details: ["queued": .number(Double(result.queued.count)), "unchanged": .number(Double(result.unchanged.count))])
            }
            return result
        }
        if dryRun {
            // Work out the answer in a transaction that is rolled back.
            var result = SyncSelectResult()
            try pool.write { db in
                try db.inSavepoint {
                    result = try work(db)
                    return .rollback
                }
            }
            return result
        }
        return try pool.write(work)
    }

    // MARK: the runner's side

    /// Takes the entry due first (pending or failed, next attempt reached) and marks it in flight.
    public func claimSyncEntry(now: Date = Date()) throws -> SyncEntry? {
        try claimSyncWork(now: now, record: nil)?.entry
    }

    /// One claimed entry with what sending it needs: for a put, the version's payload and the
    /// record body to send (`record` builds it the first time; later sends of that version get
    /// the kept bytes), or why it cannot be sent.
    public struct SyncWork: Sendable {
        public var entry: SyncEntry
        public var payload: SyncPayload?
        public var body: Data?
        public var problem: String?
    }

    /// Claims the entry due first and, for a put, reads its payload and keeps its record body,
    /// all in one transaction (one commit per claim).
    public func claimSyncWork(now: Date = Date(), record: ((SyncPayload) throws -> Data)?) throws -> SyncWork? {
        try pool.write { db in
            guard
                let id = try String.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT resource_id FROM sync_outbox WHERE state IN ('pending', 'failed') AND next_attempt_at <= ?
                            ORDER BY next_attempt_at, resource_id LIMIT 1
                            """), arguments: [now.timeIntervalSince1970])
            else { return nil }
            try db.cachedStatement(sql: "UPDATE sync_outbox SET state = 'inFlight', attempts = attempts + 1, updated_at = ? WHERE resource_id = ?")
                .execute(arguments: [Timestamp.format(now), id])
            guard let entry = try Self.syncEntry(db, id: id) else { return nil }
            var work = SyncWork(entry: entry)
            guard entry.op == .put, let record else { return work }
            guard let number = entry.version, let payload = try syncPayload(db, id: id, version: number) else {
                work.problem = "version \(entry.version ?? 0) of \(id) no longer exists here"
                return work
            }
            work.payload = payload
            if let kept = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT body FROM sync_records WHERE resource_id = ? AND version = ?"), arguments: [id, number])
            {
                work.body = kept
            } else {
                do {
                    let body = try record(payload)
                    try db.cachedStatement(sql: "INSERT INTO sync_records (resource_id, version, body) VALUES (?, ?, ?)").execute(arguments: [id, number, body])
                    work.body = body
                } catch let e as DatabaseError {
                    throw e
                } catch {
                    work.problem = "\(error)"
                }
            }
            return work
        }
    }

    /// When the next entry falls due (nil: nothing waiting).
    public func nextSyncDue() throws -> Date? {
        try pool.read { db in
            try Double.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM sync_outbox WHERE state IN ('pending', 'failed')")
                .map { Date(timeIntervalSince1970: $0) }
        }
    }

    /// Records how an attempt on `entry` ended. A success records what the platform now holds
    /// (attempts on one resource never overlap, so these land in order). If the entry changed
    /// while the attempt was in flight, the new work is due at once, whatever this attempt's fate.
    public func finishSyncAttempt(
        _ entry: SyncEntry, startedAt: Date, outcome: SyncOutcome, bytesSent: Int64, maxAttempts: Int, backoff: (Int) -> Double, now: Date = Date()
    ) throws {
        try pool.write { db in
            guard let current = try Self.syncEntry(db, id: entry.resourceId) else { return }
            let same = current.generation == entry.generation
            let ts = Timestamp.format(now)
            let id = entry.resourceId
            var name: String
            var status: Int? = nil
            var error: String? = nil
            var retryAfter: Double? = nil
            // (state, next attempt, last error, last status) for an unchanged entry.
            var next: (state: String, attemptAt: Double, error: String?, status: Int?)
            switch outcome {
            case .done(let remoteId, let s):
                name = "done"
                status = s
                if entry.op == .put, let v = entry.version {
                    try db.execute(
                        sql: "UPDATE sync_outbox SET remote_id = coalesce(?, remote_id), sent_version = ? WHERE resource_id = ?",
                        arguments: [remoteId, v, id])
                    // The platform keeps older versions' keys, but we will never send those again.
                    try db.execute(sql: "DELETE FROM sync_records WHERE resource_id = ? AND version < ?", arguments: [id, v])
                } else {
                    // Gone from the platform, which forgets the resource's idempotency keys too.
                    try db.execute(sql: "UPDATE sync_outbox SET sent_version = NULL WHERE resource_id = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM sync_records WHERE resource_id = ?", arguments: [id])
                }
                next = ("done", current.nextAttemptTime, nil, nil)
            case .failed(let message, let s, let ra):
                status = s
                error = message
                retryAfter = ra
                if current.attempts >= maxAttempts {
                    name = "dead"
                    next = ("dead", current.nextAttemptTime, "gave up after \(current.attempts) attempts: \(message)", s)
                } else {
                    name = "failed"
                    next = ("failed", now.timeIntervalSince1970 + max(backoff(current.attempts), ra ?? 0), message, s)
                }
            case .dead(let message, let s):
                name = "dead"
                status = s
                error = message
                next = ("dead", current.nextAttemptTime, message, s)
            case .cancelled:
                name = "cancelled"
                error = "stopped by shutdown"
                next = ("pending", current.nextAttemptTime, current.lastError, current.lastStatus)
                if same { try db.execute(sql: "UPDATE sync_outbox SET attempts = max(attempts - 1, 0) WHERE resource_id = ?", arguments: [id]) }
            }
            if same {
                try db.execute(
                    sql: """
                        UPDATE sync_outbox SET state = ?, next_attempt_at = ?, last_error = ?, last_status = ?, updated_at = ?,
                            done_at = CASE WHEN ? = 'done' THEN ? ELSE done_at END
                        WHERE resource_id = ?
                        """, arguments: [next.state, next.attemptAt, next.error, next.status, ts, next.state, ts, id])
            } else {
                try db.execute(
                    sql: "UPDATE sync_outbox SET state = 'pending', next_attempt_at = ?, updated_at = ? WHERE resource_id = ?",
                    arguments: [now.timeIntervalSince1970, ts, id])
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO sync_attempts (resource_id, generation, op, version, started_at, finished_at, outcome, http_status, error, retry_after, bytes_sent)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                id, entry.generation, entry.op.rawValue, entry.version, Timestamp.format(startedAt), ts, name, status, error, retryAfter, bytesSent,
            ])
        }
    }

    /// The record body first sent for this version, if any: later sends reuse these bytes.
    public func syncRecord(id: String, version: Int) throws -> Data? {
        try pool.read { db in
            try Data.fetchOne(db, sql: "SELECT body FROM sync_records WHERE resource_id = ? AND version = ?", arguments: [id, version])
        }
    }

    // MARK: one runner at a time

    /// Takes the sync lock for `owner` (pid@host). A lock left by a process that is gone, or
    /// without a heartbeat for `staleAfter` seconds, is taken over, and the entries it had in
    /// flight go back to the queue (their attempt recorded as interrupted).
    public func acquireSyncLock(owner: String, pid: Int32, host: String, staleAfter: Double = 60, now: Date = Date()) throws {
        try pool.write { db in
            if let lock = try SyncLock.read(db), lock.owner != owner, lock.isLive(host: host, staleAfter: staleAfter, now: now) {
                throw DomainError(
                    .conflict, "A sync run is already going (\(lock.owner), started \(Timestamp.format(Date(timeIntervalSince1970: lock.startedAt))))."
                )
            }
            try SyncLock(owner: owner, pid: pid, host: host, startedAt: now.timeIntervalSince1970, heartbeat: now.timeIntervalSince1970).write(db)
            // Nobody else runs: anything in flight was cut off with its runner.
            let ts = Timestamp.format(now)
            try db.execute(
                sql: """
                    INSERT INTO sync_attempts (resource_id, generation, op, version, started_at, finished_at, outcome, error)
                    SELECT resource_id, generation, op, version, updated_at, ?, 'interrupted', 'the sync process stopped during the attempt'
                    FROM sync_outbox WHERE state = 'inFlight'
                    """, arguments: [ts])
            try db.execute(
                sql: "UPDATE sync_outbox SET state = 'pending', next_attempt_at = ?, updated_at = ? WHERE state = 'inFlight'",
                arguments: [now.timeIntervalSince1970, ts])
        }
    }

    /// Who holds the sync lock now, if a live runner does.
    public func syncLockHolder(host: String, staleAfter: Double = 60, now: Date = Date()) throws -> String? {
        try pool.read { db in
            guard let lock = try SyncLock.read(db), lock.isLive(host: host, staleAfter: staleAfter, now: now) else { return nil }
            return lock.owner
        }
    }

    /// Renews the lock; false when `owner` no longer holds it (another runner took it over after
    /// this one went silent), and the caller must stop.
    public func heartbeatSyncLock(owner: String, now: Date = Date()) throws -> Bool {
        try pool.write { db in
            guard var lock = try SyncLock.read(db), lock.owner == owner else { return false }
            lock.heartbeat = now.timeIntervalSince1970
            try lock.write(db)
            return true
        }
    }

    /// Whether a run would have something to do now: entries due, or entries left in flight by
    /// a runner that is gone.
    public func syncWorkWaiting(host: String, now: Date = Date()) throws -> Bool {
        if let due = try nextSyncDue(), due <= now { return true }
        let stranded = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sync_outbox WHERE state = 'inFlight'") ?? 0 }
        let holder = try syncLockHolder(host: host, now: now)
        return stranded > 0 && holder == nil
    }

    public func releaseSyncLock(owner: String) throws {
        try pool.write { db in
            guard try SyncLock.read(db)?.owner == owner else { return }
            try db.execute(sql: "DELETE FROM settings WHERE key = 'sync.lock'")
        }
    }

    /// Keeps the summary (JSON) of the last finished run, for `sync status`.
    public func recordSyncRun(_ summaryJSON: String) throws {
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO settings (key, value) VALUES ('sync.lastRun', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                arguments: [summaryJSON])
        }
    }

    /// When the last finished run ended (nil: never).
    public func lastSyncRunEndedAt() throws -> String? {
        if let last = try lastSyncRun(), case .object(let o) = last, case .string(let ended)? = o["endedAt"] { return ended }
        return nil
    }

    public func lastSyncRun() throws -> JSONValue? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'sync.lastRun'").flatMap { try? JSONValue.parse(Array($0.utf8)) }
        }
    }

    // MARK: reads for admins

    static func syncEntry(_ db: Database, id: String) throws -> SyncEntry? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT o.*, r.title FROM sync_outbox o LEFT JOIN resources r ON r.id = o.resource_id WHERE o.resource_id = ?"),
            arguments: [id]
        ).map(SyncEntry.init(row:))
    }

    public func syncEntry(id: String) throws -> SyncEntry? {
        try pool.read { db in try Self.syncEntry(db, id: id) }
    }

    public func syncCounts() throws -> SyncCounts {
        try pool.read { db in
            var c = SyncCounts()
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM sync_outbox GROUP BY state") {
                let n: Int = row["n"]
                switch SyncState(rawValue: row["state"]) {
                case .pending: c.pending = n
                case .inFlight: c.inFlight = n
                case .done: c.done = n
                case .failed: c.failed = n
                case .dead: c.dead = n
                case nil: break
                }
            }
            return c
        }
    }

    /// Entries, optionally of one state; those needing attention (dead, failed) first.
    public func syncEntries(state: SyncState?, limit: Int) throws -> [SyncEntry] {
        try syncEntries(states: state.map { [$0] } ?? [], limit: limit)
    }

    /// Entries in any of `states` (all when empty); those needing attention first.
    public func syncEntries(states: [SyncState], limit: Int) throws -> [SyncEntry] {
        try pool.read { db in
            var conditions: [String] = []
            var args: [any DatabaseValueConvertible] = []
            if !states.isEmpty {
                conditions.append("o.state IN (\(databaseQuestionMarks(count: states.count)))")
                args += states.map(\.rawValue)
            }
            let whereSQL = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT o.*, r.title FROM sync_outbox o LEFT JOIN resources r ON r.id = o.resource_id \(whereSQL)
                    ORDER BY CASE o.state WHEN 'dead' THEN 0 WHEN 'failed' THEN 1 WHEN 'inFlight' THEN 2 WHEN 'pending' THEN 3 ELSE 4 END,
                        o.next_attempt_at, o.resource_id LIMIT ?
                    """, arguments: StatementArguments(args + [limit])
            ).map(SyncEntry.init(row:))
        }
    }

    public func syncEntryDetail(id: String) throws -> SyncEntryDetail? {
        try pool.read { db in
            guard let entry = try Self.syncEntry(db, id: id) else { return nil }
            return SyncEntryDetail(entry: entry, attempts: try Self.syncAttempts(db, id: id, limit: 100))
        }
    }

    public func syncAttempts(id: String, limit: Int = 100) throws -> [SyncAttempt] {
        try pool.read { db in try Self.syncAttempts(db, id: id, limit: limit) }
    }

    static func syncAttempts(_ db: Database, id: String, limit: Int) throws -> [SyncAttempt] {
        try Row.fetchAll(db, sql: "SELECT * FROM sync_attempts WHERE resource_id = ? ORDER BY id DESC LIMIT ?", arguments: [id, limit]).map { r in
            SyncAttempt(
                generation: r["generation"], op: try r.decode(SyncOp.self, "op"), version: r["version"], startedAt: r["started_at"],
                finishedAt: r["finished_at"], outcome: r["outcome"], httpStatus: r["http_status"], error: r["error"],
                retryAfter: r["retry_after"], bytesSent: r["bytes_sent"])
        }
    }

    /// Puts dead entries, failed ones (waiting for their next attempt), or the given ids (dead or
    /// failed) back in the queue, due now. Returns how many.
    public func retrySync(dead: Bool, failed: Bool = false, ids: [String], by actor: String?, now: Date = Date()) throws -> Int {
        try pool.write { db in
            var sql = "UPDATE sync_outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE "
            var args: [any DatabaseValueConvertible] = [now.timeIntervalSince1970, Timestamp.format(now)]
            if ids.isEmpty {
                let states: [String] = (dead ? ["'dead'"] : []) + (failed ? ["'failed'"] : [])
                guard !states.isEmpty else { return 0 }
                sql += "state IN (" + states.joined(separator: ", ") + ")"
            } else {
                sql += "state IN ('dead', 'failed') AND resource_id IN (\(databaseQuestionMarks(count: ids.count)))"
                args += ids
            }
            try db.execute(sql: sql, arguments: StatementArguments(args))
            let n = db.changesCount
            if n > 0 { try Self.audit(db, actor: actor, action: "sync.retry", details: ["entries": .number(Double(n))]) }
            return n
        }
    }

    /// The immutable version to send, with the names the record needs.
    public func syncPayload(id: String, version: Int) throws -> SyncPayload? {
        try pool.read { db in try syncPayload(db, id: id, version: version) }
    }

    func syncPayload(_ db: Database, id: String, version: Int) throws -> SyncPayload? {
        do {
            guard let v = try Self.version(db, id: id, number: version, cache: versions),
                let r = try Row.fetchOne(
                    db, sql: "SELECT r.created_at, r.organization_id, o.name FROM resources r JOIN organizations o ON o.id = r.organization_id WHERE r.id = ?",
                    arguments: [id])
            else { return nil }
            var names: [String: String] = [:]
            if !v.metadata.majorCodes.isEmpty {
                let codes = v.metadata.majorCodes
                for row in try Row.fetchAll(
                    db, sql: "SELECT code, name FROM majors WHERE code IN (\(databaseQuestionMarks(count: codes.count)))",
                    arguments: StatementArguments(codes))
                {
                    names[row["code"]] = row["name"]
                }
            }
            return SyncPayload(
                resourceId: id, version: v, createdAt: r["created_at"], organizationId: r["organization_id"], organizationName: r["name"],
                majorNames: names)
        }
    }
}

/// The one-runner-at-a-time lock, kept in `settings('sync.lock')`.
struct SyncLock: Codable {
    var owner: String
    var pid: Int32
    var host: String
    var startedAt: Double
    var heartbeat: Double

    static func read(_ db: Database) throws -> SyncLock? {
        try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'sync.lock'").flatMap {
            try? JSONDecoder().decode(SyncLock.self, from: Data($0.utf8))
        }
    }

    func write(_ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO settings (key, value) VALUES ('sync.lock', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            arguments: [String(decoding: try JSONEncoder().encode(self), as: UTF8.self)])
    }

    /// Held by a runner still alive: its process exists (when on this host) and it renewed the
    /// lock within `staleAfter` seconds.
    func isLive(host: String, staleAfter: Double, now: Date) -> Bool {
        let gone = self.host == host && kill(pid, 0) != 0 && errno == ESRCH
        return !gone && now.timeIntervalSince1970 - heartbeat <= staleAfter
    }
}
