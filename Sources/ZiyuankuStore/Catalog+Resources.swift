import Foundation
import GRDB
import ZiyuankuCore

/// A file about to be recorded in a new version; its blob is already on disk.
public struct NewFile: Sendable, Equatable {
    public var name: String
    public var sha256: String
    public var size: Int64
    public var mediaType: String
    public var role: FileRole

    public init(name: String, sha256: String, size: Int64, mediaType: String, role: FileRole) {
        self.name = name
        self.sha256 = sha256
        self.size = size
        self.mediaType = mediaType
        self.role = role
    }

    /// The same file carried into a new version (no bytes copied).
    public init(_ f: VersionFile) {
        self.init(name: f.name, sha256: f.sha256, size: f.size, mediaType: f.mediaType, role: f.role)
    }
}

/// A resource as one caller sees it: its state and the version shown to them.
public struct ResourceView: Sendable {
    public var state: ResourceState
    public var version: ResourceVersion
}

public struct VersionSummary: Sendable, Codable, Equatable {
    public var number: Int
    public var authorId: String
    public var changeNote: String
    public var createdAt: String
    public var fileCount: Int
    public var published: Bool
}

/// Filters for listing; visibility is added from the caller, never from the query string.
public struct ResourceQuery: Sendable {
    public var majorCode: String?
    public var resourceType: ResourceType?
    public var educationLevel: EducationLevel?
    public var organizationId: String?
    public var status: ResourceStatus?
    public var visibility: Visibility?
    public var ownerId: String?
    /// RFC 3339 lower bound for `updatedAt`.
    public var updatedSince: String?
    public var page = 1
    public var pageSize = 20
    public init() {}
}

extension Catalog {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func encodeMetadata(_ m: ResourceMetadata) throws -> String {
        String(decoding: try encoder.encode(m), as: UTF8.self)
    }

    // MARK: writes

    /// Creates a resource as a `draft` at version 1.
    public func createResource(owner: Principal, metadata: ResourceMetadata, files: [NewFile], changeNote: String) throws -> ResourceView {
        let id = try pool.write { db in
            try ensureBlobs(files)
            return try Self.insertResource(db, owner: owner, metadata: metadata, files: files, changeNote: changeNote)
        }
        guard let view = try view(id: id, version: 1) else { throw DomainError(.internal, "resource vanished after creation") }
        return view
    }

    /// Creates many resources (drafts at version 1, or published when `publish`) in one
    /// transaction, index included: the bulk path for imports. Returns their ids in order.
    public func createResources(
        _ items: [(owner: Principal, metadata: ResourceMetadata, files: [NewFile])], changeNote: String, publish: Bool
    ) throws -> [String] {
        try pool.write { db in
            var distinct: [String: NewFile] = [:]
            for item in items { for f in item.files { distinct[f.sha256] = f } }
            try ensureBlobs(Array(distinct.values))
            let ids = try items.map { item in
                let id = try Self.insertResource(db, owner: item.owner, metadata: item.metadata, files: item.files, changeNote: changeNote, index: false)
                if publish {
                    let now = Timestamp.now()
                    try db.cachedStatement(sql: "UPDATE resources SET status = 'published', published_version = 1, published_at = ? WHERE id = ?").execute(
                        arguments: [now, id])
                    try Self.recordPublication(db, id: id, version: 1, at: now)
                    try Self.audit(
                        db, actor: item.owner.userId, action: "resource.publish", resourceId: id, version: 1,
                        details: ["from": .string("draft"), "to": .string("published"), "bulk": .bool(true)])
                }
                return id
            }
            try SearchIndex.insert(db, resourceIds: ids)
            return ids
        }
    }

    /// `index: false` leaves the search index to the caller (bulk paths index a batch at once).
    static func insertResource(
        _ db: Database, owner: Principal, metadata: ResourceMetadata, files: [NewFile], changeNote: String, index: Bool = true
    ) throws -> String {
        let id = Identifiers.uuidV7()
        let now = Timestamp.now()
        let json = try encodeMetadata(metadata)
        try db.cachedStatement(
            sql: """
                INSERT INTO resources (id, owner_id, organization_id, status, current_version, published_version, title,
                    resource_type, education_level, visibility, created_at, updated_at)
                VALUES (?, ?, ?, 'draft', 1, NULL, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            id, owner.userId, owner.organizationId, metadata.title, metadata.resourceType.rawValue,
            metadata.educationLevel.rawValue, metadata.visibility.rawValue, now, now,
        ])
        try insertVersion(db, resourceId: id, number: 1, metadata: json, files: files, authorId: owner.userId, note: changeNote, now: now)
        try replaceMajors(db, resourceId: id, codes: metadata.majorCodes)
        if index { try SearchIndex.update(db, resourceId: id) }
        try audit(db, actor: owner.userId, action: "resource.create", resourceId: id, version: 1, details: ["files": .number(Double(files.count))])
        return id
    }

    static func insertVersion(
        _ db: Database, resourceId: String, number: Int, metadata: String, files: [NewFile], authorId: String, note: String, now: String
    ) throws {
        try db.cachedStatement(sql: "INSERT INTO versions (resource_id, number, metadata, author_id, change_note, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .execute(arguments: [resourceId, number, metadata, authorId, note, now])
        for (i, f) in files.enumerated() {
            try insertBlob(db, sha256: f.sha256, size: f.size)
            try db.cachedStatement(
                sql: """
                    INSERT INTO version_files (resource_id, version, name, sha256, size, media_type, role, position)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [resourceId, number, f.name, f.sha256, f.size, f.mediaType, f.role.rawValue, i])
        }
    }

    static func replaceMajors(_ db: Database, resourceId: String, codes: [String]) throws {
        try db.cachedStatement(sql: "DELETE FROM resource_majors WHERE resource_id = ?").execute(arguments: [resourceId])
        for c in Set(codes) {
            try db.cachedStatement(sql: "INSERT INTO resource_majors (resource_id, major_code) VALUES (?, ?)").execute(arguments: [resourceId, c])
        }
    }

    /// Saves version n+1 from the current version (or from version `source`, for a restore).
    /// `authorize` sees the state inside the transaction (so permission and precondition checks
    /// cannot race a concurrent save); `change` returns the new metadata and manifest.
    /// Metadata-only changes reuse the blobs. The newest version becomes a draft (readers keep
    /// the published one); a version in review must be recalled first.
    public func saveVersion(
        id: String, by author: Principal, expectedVersion: Int?, changeNote: String, from source: Int? = nil,
        auditAction: String = "resource.version", auditDetails: [String: JSONValue] = [:],
        authorize: (ResourceState) throws -> Void,
        change: (ResourceVersion) throws -> (ResourceMetadata, [NewFile])
    ) throws -> ResourceView {
        let now = Timestamp.now()
        let number: Int = try pool.write { db in
            guard let state = try Self.state(db, id: id) else { throw DomainError.notFound() }
            try authorize(state)
            if let expectedVersion, expectedVersion != state.currentVersion { throw Self.stale(expectedVersion, state.currentVersion) }
            try Self.checkEditable(state)
            guard let base = try Self.version(db, id: id, number: source ?? state.currentVersion) else { throw DomainError.notFound("version") }
            let (metadata, files) = try change(base)
            try ensureBlobs(files)
            let n = state.currentVersion + 1
            try Self.insertVersion(
                db, resourceId: id, number: n, metadata: try Self.encodeMetadata(metadata), files: files, authorId: author.userId,
                note: changeNote, now: now)
            try db.cachedStatement(sql: "UPDATE resources SET current_version = ?, status = 'draft', updated_at = ? WHERE id = ?").execute(arguments: [
                n, now, id,
            ])
            if state.publishedVersion == nil {
                // Not yet visible to readers: the listing columns follow the newest version.
                try Self.denormalize(db, id: id, metadata: metadata)
            }
            var details = auditDetails
            details["from"] = .string(state.status.rawValue)
            if !changeNote.isEmpty { details["changeNote"] = .string(changeNote) }
            details["files"] = .number(Double(files.count))
            try Self.audit(db, actor: author.userId, action: auditAction, resourceId: id, version: n, details: details)
            return n
        }
        guard let view = try view(id: id, version: number) else { throw DomainError.notFound() }
        return view
    }

    static func denormalize(_ db: Database, id: String, metadata: ResourceMetadata) throws {
        try db.cachedStatement(sql: "UPDATE resources SET title = ?, resource_type = ?, education_level = ?, visibility = ? WHERE id = ?").execute(arguments: [
            metadata.title, metadata.resourceType.rawValue, metadata.educationLevel.rawValue, metadata.visibility.rawValue, id,
        ])
        try replaceMajors(db, resourceId: id, codes: metadata.majorCodes)
        try SearchIndex.update(db, resourceId: id)
    }

    /// Publishes the newest version directly (reviewer/admin, or tools): `authorize` sees the
    /// state inside the transaction. Audited as `resource.publish`.
    public func publish(id: String, actor: String? = nil, authorize: (ResourceState) throws -> Void) throws -> ResourceView {
        let number: Int = try pool.write { db in
            guard let state = try Self.state(db, id: id) else { throw DomainError.notFound() }
            try authorize(state)
            guard Access.actions(from: state).contains(.publish) else {
                throw DomainError(.conflict, "Version \(state.currentVersion) is already published.", extra: ["currentStatus": .string(state.status.rawValue)])
            }
            try Self.apply(db, .publish, state: state, actor: actor, reason: nil)
            return state.currentVersion
        }
        guard let view = try view(id: id, version: number) else { throw DomainError.notFound() }
        return view
    }

    // MARK: reads

    static func state(_ db: Database, id: String) throws -> ResourceState? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM resources WHERE id = ? AND deleted_at IS NULL"), arguments: [id]).map(ResourceState.init(row:))
    }

    static func version(_ db: Database, id: String, number: Int, cache: VersionCache? = nil) throws -> ResourceVersion? {
        if let hit = cache?.get(VersionCache.versionKey(id, number)) { return hit }
        guard
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM versions WHERE resource_id = ? AND number = ?"), arguments: [id, number])
        else { return nil }
        let metadata = try JSONDecoder().decode(ResourceMetadata.self, from: Data((row["metadata"] as String).utf8))
        let files = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM version_files WHERE resource_id = ? AND version = ? ORDER BY position"), arguments: [id, number]
        ).map { f in
            VersionFile(
                name: f["name"], size: f["size"], mediaType: f["media_type"], sha256: f["sha256"],
                role: try f.decode(FileRole.self, "role"))
        }
        let v = ResourceVersion(
            number: number, metadata: metadata, files: files, authorId: row["author_id"], changeNote: row["change_note"],
            createdAt: row["created_at"])
        cache?.put(VersionCache.versionKey(id, number), v)
        return v
    }

    /// The resource and the version `pick` chooses for it, in one read transaction; nil when
    /// the resource does not exist or `pick` returns nil.
    public func resolve(id: String, pick: (ResourceState) throws -> Int?) throws -> ResourceView? {
        try pool.read { db in
            guard let s = try Self.state(db, id: id), let n = try pick(s), let v = try Self.version(db, id: id, number: n, cache: versions) else {
                return nil
            }
            return ResourceView(state: s, version: v)
        }
    }

    public func state(id: String) throws -> ResourceState? {
        try pool.read { try Self.state($0, id: id) }
    }

    public func view(id: String, version: Int) throws -> ResourceView? {
        try pool.read { db in
            guard let s = try Self.state(db, id: id), let v = try Self.version(db, id: id, number: version, cache: versions) else { return nil }
            return ResourceView(state: s, version: v)
        }
    }

    /// The history: every version for privileged callers (`readable` nil), else only those in `readable`.
    public func versionSummaries(id: String, readable: Set<Int>?) throws -> [VersionSummary] {
        try versionSummaries(id: id, upTo: Int.max).filter { readable?.contains($0.number) ?? true }
    }

    public func versionSummaries(id: String, upTo: Int) throws -> [VersionSummary] {
        try pool.read { db in
            let published = try Self.state(db, id: id)?.publishedVersion
            return try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT v.number, v.author_id, v.change_note, v.created_at,
                               (SELECT count(*) FROM version_files f WHERE f.resource_id = v.resource_id AND f.version = v.number) AS file_count
                        FROM versions v WHERE v.resource_id = ? AND v.number <= ? ORDER BY v.number
                        """), arguments: [id, upTo]
            ).map { r in
                VersionSummary(
                    number: r["number"], authorId: r["author_id"], changeNote: r["change_note"], createdAt: r["created_at"],
                    fileCount: r["file_count"], published: published == (r["number"] as Int))
            }
        }
    }

    /// The WHERE clause for what `viewer` may see under the filters of `q`. Visibility is part
    /// of the SQL, so totals and facets never count what the caller may not see.
    static func whereClause(_ q: ResourceQuery, viewer: Principal?, allowAnonymous: Bool) -> (String, [any DatabaseValueConvertible]) {
        var clauses = ["r.deleted_at IS NULL"]
        var args: [any DatabaseValueConvertible] = []
        if let p = viewer {
            if p.role != .admin {
                var v =
                    "(r.published_version IS NOT NULL AND (r.visibility = 'public' OR (r.visibility = 'organization' AND r.organization_id = ?))) OR r.owner_id = ?"
                args += [p.organizationId, p.userId]
                if p.role == .reviewer {
                    v += " OR r.organization_id = ?"
                    args.append(p.organizationId)
                }
                clauses.append("(\(v))")
            }
        } else {
            clauses.append(allowAnonymous ? "(r.published_version IS NOT NULL AND r.visibility = 'public')" : "0")
        }
        if let m = q.majorCode {
            clauses.append("EXISTS (SELECT 1 FROM resource_majors m WHERE m.resource_id = r.id AND substr(m.major_code, 1, ?) = ?)")
            args += [m.count, m]
        }
        let equals: [(String, String?)] = [
            ("r.resource_type", q.resourceType?.rawValue), ("r.education_level", q.educationLevel?.rawValue),
            ("r.organization_id", q.organizationId), ("r.status", q.status == .published ? nil : q.status?.rawValue), ("r.visibility", q.visibility?.rawValue),
            ("r.owner_id", q.ownerId),
        ]
        for case let (column, value?) in equals {
            clauses.append("\(column) = ?")
            args.append(value)
        }
        // "published" means live: readers see the published version while a newer one is drafted.
        // Any other status is the newest version's, which only privileged callers may know about.
        if q.status == .published { clauses.append("r.published_version IS NOT NULL") }
        if let status = q.status, status != .published {
            if let p = viewer {
                if p.role != .admin {
                    clauses.append(p.role == .reviewer ? "(r.owner_id = ? OR r.organization_id = ?)" : "r.owner_id = ?")
                    args += p.role == .reviewer ? [p.userId, p.organizationId] : [p.userId]
                }
            } else {
                clauses.append("0")
            }
        }
        if let since = q.updatedSince {
            clauses.append("r.updated_at >= ?")
            args.append(since)
        }
        return (clauses.joined(separator: " AND "), args)
    }

    /// One page of resources the caller may see, newest first.
    public func listResources(_ q: ResourceQuery, viewer: Principal?, allowAnonymous: Bool) throws -> (items: [ResourceView], total: Int) {
        let result = try searchResources(q, text: nil, sort: .newest, viewer: viewer, allowAnonymous: allowAnonymous, facets: false)
        return (result.hits.map(\.view), result.total)
    }
}
