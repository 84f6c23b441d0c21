import Foundation
import GRDB
import ZiyuankuCore

/// What changed between two versions: metadata fields and files.
public struct VersionDiff: Sendable, Codable, Equatable {
    public struct FieldChange: Sendable, Codable, Equatable {
        public var field: String
        /// Absent when the field was added.
        public var from: JSONValue?
        /// Absent when the field was removed.
        public var to: JSONValue?
    }
    public struct FileChange: Sendable, Codable, Equatable {
        public var name: String
        /// added, removed or changed (bytes, media type or role).
        public var change: String
        public var from: FileSide?
        public var to: FileSide?
    }
    public struct FileSide: Sendable, Codable, Equatable {
        public var sha256: String
        public var size: Int64
        public var mediaType: String
        public var role: String
    }
    public var from: Int
    public var to: Int
    public var metadata: [FieldChange]
    public var files: [FileChange]

    public init(from a: ResourceVersion, to b: ResourceVersion) throws {
        from = a.number
        to = b.number
        func object(_ m: ResourceMetadata) throws -> [String: JSONValue] {
            guard case .object(let o) = try JSONDecoder().decode(JSONValue.self, from: Catalog.encoder.encode(m)) else { return [:] }
            return o
        }
        let ma = try object(a.metadata)
        let mb = try object(b.metadata)
        metadata = Set(ma.keys).union(mb.keys).sorted().compactMap { k in
            ma[k] == mb[k] ? nil : FieldChange(field: k, from: ma[k], to: mb[k])
        }
        func side(_ f: VersionFile) -> FileSide { FileSide(sha256: f.sha256, size: f.size, mediaType: f.mediaType, role: f.role.rawValue) }
        let fa = Dictionary(a.files.map { ($0.name, side($0)) }, uniquingKeysWith: { x, _ in x })
        let fb = Dictionary(b.files.map { ($0.name, side($0)) }, uniquingKeysWith: { x, _ in x })
        files = Set(fa.keys).union(fb.keys).sorted().compactMap { name in
            switch (fa[name], fb[name]) {
            case (nil, let t?): FileChange(name: name, change: "added", from: nil, to: t)
            case (let f?, nil): FileChange(name: name, change: "removed", from: f, to: nil)
            case (let f?, let t?) where f != t: FileChange(name: name, change: "changed", from: f, to: t)
            default: nil
            }
        }
    }
}

/// A resource in the review queue.
public struct ReviewItem: Sendable {
    public var view: ResourceView
}

extension Catalog {
    // MARK: workflow

    /// Takes a workflow action as `p`, checking inside the write transaction, in this order:
    /// the caller may see the resource (else 404), may take the action (403), the version they
    /// acted on is still the newest (412, when `expectedVersion` is given), and the state allows
    /// it (409 with the current status and the actions allowed now). Audited in the same
    /// transaction.
    public func transition(
        id: String, action: WorkflowAction, by p: Principal?, reason: String? = nil, expectedVersion: Int? = nil, allowAnonymous: Bool
    ) throws -> ResourceView {
        let reason = reason?.trimmingCharacters(in: .whitespacesAndNewlines)
        if action == .reject {
            guard let reason, !reason.isEmpty else {
                throw DomainError(.validation, "A rejection needs a reason the owner can act on.", fields: [.init(field: "reason", message: "required")])
            }
            guard reason.count <= 1000 else {
                throw DomainError(.validation, "The reason is too long.", fields: [.init(field: "reason", message: "at most 1000 characters")])
            }
        }
        let number: Int = try pool.write { db in
            guard let state = try Self.state(db, id: id), Access.canSee(p, state, allowAnonymous: allowAnonymous) else { throw DomainError.notFound() }
            guard Access.may(p, action, state) else { throw DomainError.forbidden(Self.forbiddenMessage(action)) }
            if let expectedVersion, expectedVersion != state.currentVersion { throw Self.stale(expectedVersion, state.currentVersion) }
            guard Access.actions(from: state).contains(action) else {
                let allowed = Access.allowedActions(p, state)
                throw DomainError(
                    .conflict,
                    "A resource that is \(state.status.rawValue) cannot be \(Self.pastTense(action)). "
                        + (allowed.isEmpty ? "You cannot change its state now." : "Allowed now: \(allowed.map(\.rawValue).joined(separator: ", "))."),
                    extra: ["currentStatus": .string(state.status.rawValue), "allowedActions": .array(allowed.map { .string($0.rawValue) })])
            }
            try Self.apply(db, action, state: state, actor: p?.userId, reason: reason)
            return state.currentVersion
        }
        guard let view = try view(id: id, version: number) else { throw DomainError.notFound() }
        return view
    }

    static func forbiddenMessage(_ a: WorkflowAction) -> String {
        switch a {
        case .submit, .recall: "Only the resource's owner or an administrator may \(a.rawValue) it."
        case .approve, .reject, .publish: "Only a reviewer of the resource's organization or an administrator may \(a.rawValue) it."
        case .withdraw: "Only the owner, a reviewer of the resource's organization or an administrator may withdraw it."
        }
    }

    static func pastTense(_ a: WorkflowAction) -> String {
        switch a {
        case .submit: "submitted for review"
        case .recall: "recalled"
        case .approve: "approved"
        case .reject: "rejected"
        case .withdraw: "withdrawn"
        case .publish: "published"
        }
    }

    /// A resource in review cannot change (409) until its owner recalls it.
    public static func checkEditable(_ state: ResourceState) throws {
        if state.status == .inReview {
            throw DomainError(
                .conflict, "Version \(state.currentVersion) is being reviewed: recall it before changing the resource.",
                extra: ["currentStatus": .string(state.status.rawValue), "allowedActions": .array([.string(WorkflowAction.recall.rawValue)])])
        }
    }

    /// 412 for an edit or action based on a version that is no longer the newest.
    public static func stale(_ expected: Int, _ current: Int) -> DomainError {
        DomainError(
            .preconditionFailed,
            "The resource changed since you read it: you edited version \(expected), the latest is \(current). Reload and try again.",
            extra: ["currentVersion": .number(Double(current))])
    }

    /// The state change itself (legality already checked).
    static func apply(_ db: Database, _ action: WorkflowAction, state: ResourceState, actor: String?, reason: String?) throws {
        let now = Timestamp.now()
        let id = state.id
        let to: ResourceStatus
        switch action {
        case .submit:
            to = .inReview
            try db.cachedStatement(
                sql: """
                    UPDATE resources SET status = 'inReview', submitted_at = ?, submitted_by = ?, review_reason = NULL, updated_at = ? WHERE id = ?
                    """
            ).execute(arguments: [now, actor, now, id])
        case .recall:
            to = .draft
            try db.cachedStatement(sql: "UPDATE resources SET status = 'draft', submitted_at = NULL, submitted_by = NULL, updated_at = ? WHERE id = ?")
                .execute(arguments: [now, id])
        case .approve, .publish:
            to = .published
            try db.cachedStatement(
                sql: """
                    UPDATE resources SET status = 'published', published_version = current_version, published_at = ?, reviewed_at = ?,
                        reviewed_by = ?, review_reason = NULL, updated_at = ? WHERE id = ?
                    """
            ).execute(arguments: [now, now, actor, now, id])
            guard let v = try version(db, id: id, number: state.currentVersion) else { throw DomainError.notFound() }
            try denormalize(db, id: id, metadata: v.metadata)
            try recordPublication(db, id: id, version: state.currentVersion, at: now)
            try syncAfterPublish(db, id: id, version: state.currentVersion, metadata: v.metadata)
        case .reject:
            to = .rejected
            try db.cachedStatement(
                sql: """
                    UPDATE resources SET status = 'rejected', reviewed_at = ?, reviewed_by = ?, review_reason = ?, updated_at = ? WHERE id = ?
                    """
            ).execute(arguments: [now, actor, reason, now, id])
        case .withdraw:
            // A newer version still being drafted or reviewed keeps its own status; only the
            // published one goes.
            let pending = state.publishedVersion.map { $0 < state.currentVersion } ?? false
            to = pending ? state.status : .withdrawn
            try db.cachedStatement(sql: "UPDATE resources SET status = ?, published_version = NULL, updated_at = ? WHERE id = ?")
                .execute(arguments: [to.rawValue, now, id])
            try db.cachedStatement(sql: "UPDATE publications SET withdrawn_at = ? WHERE resource_id = ? AND withdrawn_at IS NULL").execute(arguments: [now, id])
            // Nothing is published now: the listing columns and the index follow the newest version.
            guard let v = try version(db, id: id, number: state.currentVersion) else { throw DomainError.notFound() }
            try denormalize(db, id: id, metadata: v.metadata)
            try syncAfterRemoval(db, id: id)
        }
        var details: [String: JSONValue] = ["from": .string(state.status.rawValue), "to": .string(to.rawValue)]
        if let reason, action == .reject { details["reason"] = .string(reason) }
        if action == .withdraw, let pub = state.publishedVersion { details["publishedVersion"] = .number(Double(pub)) }
        try audit(db, actor: actor, action: "resource.\(action.rawValue)", resourceId: id, version: state.currentVersion, details: details)
    }

    static func recordPublication(_ db: Database, id: String, version: Int, at now: String) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO publications (resource_id, version, published_at) VALUES (?, ?, ?)
                ON CONFLICT (resource_id, version) DO UPDATE SET published_at = excluded.published_at, withdrawn_at = NULL
                """
        ).execute(arguments: [id, version, now])
    }

    /// The versions readers may read: published and not withdrawn since.
    /// The versions published and not withdrawn, with the visibility each had when saved (a
    /// reader may read a version only under the stricter of that and the current visibility).
    public func readerVersions(id: String) throws -> [Int: Visibility] {
        try pool.read { db in
            var out: [Int: Visibility] = [:]
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT p.version, json_extract(v.metadata, '$.visibility') FROM publications p
                        JOIN versions v ON v.resource_id = p.resource_id AND v.number = p.version
                        WHERE p.resource_id = ? AND p.withdrawn_at IS NULL
                        """), arguments: [id])
            while let row = try rows.next() {
                // A snapshot without a readable visibility counts as private: never wider than stored.
                out[row[0]] = (row[1] as String?).flatMap(Visibility.init(rawValue:)) ?? .private
            }
            return out
        }
    }

    /// The review queue: resources in `status` (normally inReview) of one organization, or of
    /// all for admins (`organizationId` nil), oldest submission first.
    public func reviewQueue(organizationId: String?, status: ResourceStatus, page: Int, pageSize: Int) throws -> (items: [ResourceView], total: Int) {
        var whereSQL = "deleted_at IS NULL AND status = ?"
        var args: [any DatabaseValueConvertible] = [status.rawValue]
        if let organizationId {
            whereSQL += " AND organization_id = ?"
            args.append(organizationId)
        }
        return try pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM resources WHERE \(whereSQL)", arguments: StatementArguments(args)) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM resources WHERE \(whereSQL) ORDER BY coalesce(submitted_at, updated_at), id LIMIT ? OFFSET ?",
                arguments: StatementArguments(args + [pageSize, (page - 1) * pageSize]))
            let items = try rows.compactMap { row -> ResourceView? in
                let s = try ResourceState(row: row)
                return try Self.version(db, id: s.id, number: s.currentVersion, cache: versions).map { ResourceView(state: s, version: $0) }
            }
            return (items, total)
        }
    }

    // MARK: restore and diff

    /// Saves a new version equal to version `number` (metadata and files; no bytes copied).
    public func restoreVersion(
        id: String, number: Int, by author: Principal, expectedVersion: Int?, authorize: (ResourceState) throws -> Void
    ) throws -> ResourceView {
        try saveVersion(
            id: id, by: author, expectedVersion: expectedVersion, changeNote: "restored version \(number)", from: number,
            auditAction: "resource.restore", auditDetails: ["restoredFrom": .number(Double(number))],
            authorize: authorize, change: { old in (old.metadata, old.files.map(NewFile.init)) })
    }

    public func diff(id: String, from a: Int, to b: Int) throws -> VersionDiff? {
        try pool.read { db in
            guard let va = try Self.version(db, id: id, number: a, cache: versions), let vb = try Self.version(db, id: id, number: b, cache: versions) else {
                return nil
            }
            return try VersionDiff(from: va, to: vb)
        }
    }

    // MARK: soft delete

    /// Tombstones a resource: hidden everywhere at once, restorable by an admin.
    public func softDelete(id: String, by p: Principal, allowAnonymous: Bool) throws {
        try pool.write { db in
            guard let state = try Self.state(db, id: id), Access.canSee(p, state, allowAnonymous: allowAnonymous) else { throw DomainError.notFound() }
            guard p.role == .admin || p.userId == state.ownerId else {
                throw DomainError.forbidden("Only the resource's owner or an administrator may delete it.")
            }
            try db.cachedStatement(sql: "UPDATE resources SET deleted_at = ? WHERE id = ?").execute(arguments: [Timestamp.now(), id])
            try SearchIndex.update(db, resourceId: id)
            try Self.syncAfterRemoval(db, id: id)
            try Self.audit(
                db, actor: p.userId, action: "resource.delete", resourceId: id, version: state.currentVersion,
                details: ["status": .string(state.status.rawValue)])
        }
    }

    /// Soft-deleted resources, newest deletion first (admins).
    public func deletedResources(limit: Int = 100) throws -> [ResourceState] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM resources WHERE deleted_at IS NOT NULL ORDER BY deleted_at DESC, id LIMIT ?", arguments: [limit])
                .map(ResourceState.init(row:))
        }
    }

    /// Brings a soft-deleted resource back, within the retention period.
    public func undelete(id: String, by p: Principal, retentionDays: Int) throws -> ResourceState {
        try pool.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM resources WHERE id = ?", arguments: [id]) else { throw DomainError.notFound() }
            let state = try ResourceState(row: row)
            guard let deletedAt = state.deletedAt else { throw DomainError(.conflict, "The resource is not deleted.") }
            if let d = Timestamp.parse(deletedAt), Date().timeIntervalSince(d) > Double(retentionDays) * 86_400 {
                throw DomainError(.conflict, "The resource was deleted more than \(retentionDays) days ago; it can only be purged now.")
            }
            try db.execute(sql: "UPDATE resources SET deleted_at = NULL WHERE id = ?", arguments: [id])
            try SearchIndex.update(db, resourceId: id)
            // Back on the platform if it is still published there-worthy.
            if let published = state.publishedVersion, let v = try Self.version(db, id: id, number: published) {
                try Self.syncAfterPublish(db, id: id, version: published, metadata: v.metadata)
            }
            try Self.audit(db, actor: p.userId, action: "resource.undelete", resourceId: id, version: state.currentVersion)
            return try Self.state(db, id: id)!
        }
    }

    /// Removes a soft-deleted resource and its versions for good. Blobs stay for gc.
    public func purge(id: String, by p: Principal) throws {
        try pool.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM resources WHERE id = ?", arguments: [id]) else { throw DomainError.notFound() }
            let state = try ResourceState(row: row)
            guard state.deletedAt != nil else { throw DomainError(.conflict, "Only a deleted resource can be purged: delete it first.") }
            let versions = try Int.fetchOne(db, sql: "SELECT count(*) FROM versions WHERE resource_id = ?", arguments: [id]) ?? 0
            // The deferred foreign key from a resource to its current version is satisfied at
            // commit: resource, versions and files go together.
            try db.execute(sql: "DELETE FROM resource_search WHERE rowid = (SELECT rowid FROM resources WHERE id = ?)", arguments: [id])
            try db.execute(sql: "DELETE FROM resources WHERE id = ?", arguments: [id])
            try Self.audit(db, actor: p.userId, action: "resource.purge", resourceId: id, details: ["versions": .number(Double(versions))])
        }
    }
}
