import Crypto
import Foundation
import GRDB
import Logging
import Synchronization
import ZiyuankuCore
import ZiyuankuSchema

/// The catalog: SQLite in WAL mode through a GRDB `DatabasePool`. Writes are transactions
/// named for what they do; no raw writer leaves this type.
public final class Catalog: Sendable {
    let pool: DatabasePool
    public let path: String
    /// Versions are immutable, so decoded ones are kept (bounded) and never re-read.
    let versions = VersionCache(capacity: 20_000)

    /// The data root, when opened through one: saves then check that their blobs are in place.
    let dataRoot: DataRoot?

    public init(path: String, root: DataRoot? = nil) throws {
        dataRoot = root
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(15)
        config.journalMode = .wal
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA cache_size = -16384")
            db.add(tokenizer: ZykTokenizer.self)
        }
        self.path = path
        pool = try DatabasePool(path: path, configuration: config)
        // GRDB's WAL set-up runs after `prepareDatabase` and sets the writer to NORMAL (commits
        // not fsynced; a power cut can lose the last ones). An answer we gave must survive a
        // power cut: the writer, the only connection that commits, goes back to FULL.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
    }

    /// `PRAGMA synchronous` on the writer (2 = FULL).
    public func writerSynchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Opens the catalog of a data root and applies pending migrations.
    public static func open(root: DataRoot) throws -> Catalog {
        try root.prepare()
        let catalog = try Catalog(path: root.catalogPath, root: root)
        try catalog.migrate()
        try catalog.reindexIfTokenizerChanged()
        return catalog
    }

    // MARK: migrations

    /// The `.sql` files under `schema/migrations`, in name order. Names never change once shipped.
    public static func migrationFiles() throws -> [(name: String, sql: String)] {
        guard let dir = ZiyuankuSchemaBundle.migrationsURL else { throw DomainError(.internal, "schema migrations are missing from the build") }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        return try names.map { ($0.replacingOccurrences(of: ".sql", with: ""), try String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8)) }
    }

    /// Applies migrations not yet applied; returns their names.
    @discardableResult
    public func migrate() throws -> [String] {
        var migrator = DatabaseMigrator()
        for file in try Self.migrationFiles() {
            migrator.registerMigration(file.name) { db in try db.execute(sql: file.sql) }
        }
        let before = try pool.read { try migrator.appliedIdentifiers($0) }
        try migrator.migrate(pool)
        return migrator.migrations.filter { !before.contains($0) }
    }

    public func appliedMigrations() throws -> [String] {
        try pool.read { db in
            guard try db.tableExists("grdb_migrations") else { return [] }
            return try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
        }
    }

    /// For `/readyz`: the database answers and accepts a write transaction.
    public func checkWritable() throws {
        try pool.write { db in _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM grdb_migrations") }
    }

    // MARK: organizations and users

    public func createOrganization(name: String, kind: OrganizationKind, actor: String? = nil) throws -> Organization {
        let org = Organization(id: Identifiers.uuidV7(), name: name, kind: kind, createdAt: Timestamp.now())
        try pool.write { db in
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM organizations WHERE name = ?"), arguments: [name]) == true {
                throw DomainError(.conflict, "An organization named \(name) already exists.")
            }
            try db.cachedStatement(sql: "INSERT INTO organizations (id, name, kind, created_at) VALUES (?, ?, ?, ?)").execute(arguments: [
                org.id, org.name, org.kind.rawValue, org.createdAt,
            ])
            try Self.audit(db, actor: actor, action: "organization.create", details: ["organizationId": .string(org.id), "name": .string(name)])
        }
        return org
    }

    public func organizations() throws -> [Organization] {
        try pool.read { try Organization.fetchAll($0, sql: "SELECT * FROM organizations ORDER BY created_at, id") }
    }

    public func organization(id: String) throws -> Organization? {
        try pool.read { try Organization.fetchOne($0.cachedStatement(sql: "SELECT * FROM organizations WHERE id = ?"), arguments: [id]) }
    }

    public func organization(named name: String) throws -> Organization? {
        try pool.read { try Organization.fetchOne($0.cachedStatement(sql: "SELECT * FROM organizations WHERE name = ?"), arguments: [name]) }
    }

    /// Creates a user and their first token, in one transaction.
    public func createUser(organizationId: String, name: String, role: Role, tokenLabel: String = "initial", actor: String? = nil) throws -> (User, IssuedToken)
    {
        try pool.write { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM organizations WHERE id = ?"), arguments: [organizationId]) == true else {
                throw DomainError(
                    .validation, "No organization has id \(organizationId).", fields: [.init(field: "organizationId", message: "unknown organization")])
            }
            let id = Identifiers.uuidV7()
            try db.cachedStatement(sql: "INSERT INTO users (id, organization_id, name, role, created_at) VALUES (?, ?, ?, ?, ?)").execute(arguments: [
                id, organizationId, name, role.rawValue, Timestamp.now(),
            ])
            let user = try User.fetchOne(db.cachedStatement(sql: "SELECT * FROM users WHERE id = ?"), arguments: [id])!
            try Self.audit(
                db, actor: actor, action: "user.create",
                details: ["userId": .string(id), "role": .string(role.rawValue), "organizationId": .string(organizationId)])
            let token = try Self.insertToken(db, userId: id, label: tokenLabel, expiresAt: nil, actor: actor)
            return (user, token)
        }
    }

    public func users(organizationId: String? = nil) throws -> [User] {
        try pool.read { db in
            if let organizationId {
                return try User.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM users WHERE organization_id = ? ORDER BY created_at, id"), arguments: [organizationId])
            }
            return try User.fetchAll(db, sql: "SELECT * FROM users ORDER BY created_at, id")
        }
    }

    public func user(id: String) throws -> User? {
        try pool.read { try User.fetchOne($0.cachedStatement(sql: "SELECT * FROM users WHERE id = ?"), arguments: [id]) }
    }

    /// On first start: the platform organization and an admin with a token, once.
    /// Returns the new token, or nil when an admin already exists.
    public func bootstrapAdminIfNeeded() throws -> IssuedToken? {
        try pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE role = 'admin' LIMIT 1") == true { return nil }
            var orgId = try String.fetchOne(db, sql: "SELECT id FROM organizations WHERE kind = 'platform' ORDER BY created_at LIMIT 1")
            if orgId == nil {
                let id = Identifiers.uuidV7()
                try db.cachedStatement(sql: "INSERT INTO organizations (id, name, kind, created_at) VALUES (?, ?, 'platform', ?)").execute(arguments: [
                    id, "资源库管理中心", Timestamp.now(),
                ])
                orgId = id
            }
            let uid = Identifiers.uuidV7()
            try db.cachedStatement(sql: "INSERT INTO users (id, organization_id, name, role, created_at) VALUES (?, ?, ?, 'admin', ?)").execute(arguments: [
                uid, orgId!, "admin", Timestamp.now(),
            ])
            try Self.audit(db, actor: nil, action: "user.create", details: ["userId": .string(uid), "role": .string("admin"), "bootstrap": .bool(true)])
            return try Self.insertToken(db, userId: uid, label: "bootstrap admin", expiresAt: nil, actor: nil)
        }
    }

    // MARK: tokens

    static func insertToken(_ db: Database, userId: String, label: String, expiresAt: String?, actor: String?) throws -> IssuedToken {
        let secret = Tokens.generate()
        let id = Identifiers.uuidV7()
        try db.cachedStatement(sql: "INSERT INTO tokens (id, user_id, digest, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)").execute(arguments: [
            id, userId, Data(Tokens.digest(secret)!), label, Timestamp.now(), expiresAt,
        ])
        let info = try TokenInfo.fetchOne(db.cachedStatement(sql: "SELECT * FROM tokens WHERE id = ?"), arguments: [id])!
        try audit(db, actor: actor, action: "token.issue", details: ["tokenId": .string(id), "userId": .string(userId), "label": .string(label)])
        return IssuedToken(info: info, secret: secret)
    }

    /// Issues a token. `maxLive` bounds the user's live (unrevoked, unexpired) tokens.
    public func issueToken(userId: String, label: String, expiresAt: Date?, actor: String? = nil, maxLive: Int? = nil) throws -> IssuedToken {
        try pool.write { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM users WHERE id = ?"), arguments: [userId]) == true else {
                throw DomainError.notFound("user")
            }
            if let maxLive {
                let live =
                    try Int.fetchOne(
                        db.cachedStatement(
                            sql: "SELECT count(*) FROM tokens WHERE user_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"),
                        arguments: [userId, Timestamp.now()]) ?? 0
                if live >= maxLive {
                    throw DomainError(
                        .quotaExceeded, "This user already has \(live) live tokens (at most \(maxLive)); revoke one (DELETE /v1/tokens/{id}) first.",
                        extra: ["limit": .number(Double(maxLive))])
                }
            }
            return try Self.insertToken(db, userId: userId, label: label, expiresAt: expiresAt.map(Timestamp.format), actor: actor)
        }
    }

    /// Revokes a token; returns false when it was already revoked.
    public func revokeToken(id: String, actor: String? = nil) throws -> Bool {
        try pool.write { db in
            try db.cachedStatement(sql: "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").execute(arguments: [Timestamp.now(), id])
            guard db.changesCount == 1 else { return false }
            try Self.audit(db, actor: actor, action: "token.revoke", details: ["tokenId": .string(id)])
            return true
        }
    }

    public func token(id: String) throws -> TokenInfo? {
        try pool.read { try TokenInfo.fetchOne($0.cachedStatement(sql: "SELECT * FROM tokens WHERE id = ?"), arguments: [id]) }
    }

    public func tokens(userId: String?) throws -> [TokenInfo] {
        try pool.read { db in
            if let userId {
                return try TokenInfo.fetchAll(db.cachedStatement(sql: "SELECT * FROM tokens WHERE user_id = ? ORDER BY created_at, id"), arguments: [userId])
            }
            return try TokenInfo.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY created_at, id")
        }
    }

    /// The principal a bearer token stands for, or nil for unknown, expired, revoked or
    /// disabled. The digest is looked up by index and then compared in constant time.
    public func authenticate(token: String, now: Date = Date()) throws -> Principal? {
        guard let digest = Tokens.digest(token) else { return nil }
        return try pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT t.id AS token_id, t.digest, t.expires_at, t.revoked_at, u.id AS user_id, u.name, u.role,
                                   u.organization_id, u.disabled
                            FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = ?
                            """), arguments: [Data(digest)])
            else { return nil }
            let stored: Data = row["digest"]
            guard Tokens.equal(Array(stored), digest) else { return nil }
            if (row["revoked_at"] as String?) != nil { return nil }
            if row["disabled"] as Bool { return nil }
            if let exp: String = row["expires_at"], let d = Timestamp.parse(exp), d <= now { return nil }
            guard let role = Role(rawValue: row["role"]) else { return nil }
            return Principal(userId: row["user_id"], name: row["name"], role: role, organizationId: row["organization_id"], tokenId: row["token_id"])
        }
    }

    // MARK: majors

    public func majorInfo(codes: [String]) throws -> [String: MajorInfo] {
        guard !codes.isEmpty else { return [:] }
        return try pool.read { db in
            var out: [String: MajorInfo] = [:]
            let rows = try Row.fetchAll(
                db, sql: "SELECT code, education_level, item_level FROM majors WHERE code IN (\(databaseQuestionMarks(count: codes.count)))",
                arguments: StatementArguments(codes))
            for row in rows {
                let code: String = row["code"]
                out[code] = MajorInfo(
                    code: code, educationLevel: try row.decode(EducationLevel.self, "education_level"),
                    isMajor: (row["item_level"] as String) == "major")
            }
            return out
        }
    }

    public func majors(level: EducationLevel?, prefix: String?, itemLevel: String?, limit: Int, offset: Int) throws -> (items: [Major], total: Int) {
        try pool.read { db in
            var clauses: [String] = []
            var args: [any DatabaseValueConvertible] = []
            if let level {
                clauses.append("education_level = ?")
                args.append(level.rawValue)
            }
            if let prefix {
                clauses.append("substr(code, 1, ?) = ?")
                args.append(prefix.count)
                args.append(prefix)
            }
            if let itemLevel {
                clauses.append("item_level = ?")
                args.append(itemLevel)
            }
            let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM majors \(whereSQL)", arguments: StatementArguments(args)) ?? 0
            let items = try Major.fetchAll(
                db, sql: "SELECT * FROM majors \(whereSQL) ORDER BY code LIMIT ? OFFSET ?", arguments: StatementArguments(args + [limit, offset]))
            return (items, total)
        }
    }

    public struct MajorImportResult: Sendable, Codable, Equatable {
        public var inserted = 0
        public var updated = 0
        public var unchanged = 0
        public var vocabularyVersionRecorded = false
        public init() {}
    }

    /// Inserts or updates majors (parents before children) in one transaction, and records the
    /// vocabulary version once per distinct file content.
    public func importMajors(_ majors: [Major], catalog: String, source: String, digest: String) throws -> MajorImportResult {
        try pool.write { db in
            var result = MajorImportResult()
            try db.cachedStatement(
                sql: """
                    INSERT INTO vocabulary_versions (vocabulary, version, source, digest, imported_at) VALUES ('majors', ?, ?, ?, ?)
                    ON CONFLICT (vocabulary, version, digest) DO NOTHING
                    """
            ).execute(arguments: [catalog, source, digest, Timestamp.now()])
            result.vocabularyVersionRecorded = db.changesCount == 1
            let versionId = try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM vocabulary_versions WHERE vocabulary = 'majors' AND version = ? AND digest = ?"),
                arguments: [catalog, digest])
            for m in majors {
                if let existing = try Major.fetchOne(db.cachedStatement(sql: "SELECT * FROM majors WHERE code = ?"), arguments: [m.code]) {
                    if existing == m {
                        result.unchanged += 1
                        continue
                    }
                    try db.cachedStatement(
                        sql:
                            "UPDATE majors SET education_level = ?, name = ?, item_level = ?, parent_code = ?, catalog = ?, vocabulary_version_id = ? WHERE code = ?"
                    ).execute(arguments: [m.educationLevel.rawValue, m.name, m.itemLevel, m.parentCode, catalog, versionId, m.code])
                    result.updated += 1
                } else {
                    try db.cachedStatement(
                        sql:
                            "INSERT INTO majors (code, education_level, name, item_level, parent_code, catalog, vocabulary_version_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ).execute(arguments: [m.code, m.educationLevel.rawValue, m.name, m.itemLevel, m.parentCode, catalog, versionId])
                    result.inserted += 1
                }
            }
            return result
        }
    }

    public func countMajors(itemLevel: String? = nil) throws -> Int {
        try pool.read { db in
            if let itemLevel {
                return try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM majors WHERE item_level = ?"), arguments: [itemLevel]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM majors") ?? 0
        }
    }

    // MARK: blobs

    /// Records that `userId` uploaded these bytes (the blob file is already in place).
    public func recordBlobUpload(_ blob: BlobInfo, userId: String) throws {
        try pool.write { db in
            // The upload may have found these bytes already stored and kept no copy of its own;
            // if gc moved that file to the trash since, it comes back now (or the upload fails).
            try ensureBlobFiles([(blob.sha256, "the uploaded file")])
            try Self.insertBlob(db, sha256: blob.sha256, size: blob.size)
            try db.cachedStatement(
                sql: "INSERT INTO blob_uploads (sha256, user_id, uploaded_at) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET uploaded_at = excluded.uploaded_at"
            ).execute(arguments: [blob.sha256, userId, Timestamp.now()])
            try Self.audit(db, actor: userId, action: "blob.upload", details: ["sha256": .string(blob.sha256), "size": .number(Double(blob.size))])
        }
    }

    /// Records a blob; an existing row's time is refreshed, so gc's grace period runs from the
    /// newest upload or use of these bytes.
    static func insertBlob(_ db: Database, sha256: String, size: Int64) throws {
        try db.cachedStatement(
            sql: "INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET created_at = excluded.created_at"
        ).execute(arguments: [sha256, size, Timestamp.now()])
    }

    /// Instant upload (秒传): whether `p` may attach these bytes without sending them. Yes only
    /// when a version the caller may read already uses a blob with this digest and size (a
    /// known digest alone must not reveal a private file); the caller is then recorded as
    /// having the bytes, so a save may reference them.
    public func claimBlob(sha256: String, size: Int64, by p: Principal, allowAnonymous: Bool) throws -> Bool {
        let (visible, visibleArgs) = Self.whereClause(ResourceQuery(), viewer: p, allowAnonymous: allowAnonymous)
        // Readers may read exactly the versions published and not withdrawn since.
        var versionRule = "EXISTS (SELECT 1 FROM publications pb WHERE pb.resource_id = f.resource_id AND pb.version = f.version AND pb.withdrawn_at IS NULL)"
        var ruleArgs: [any DatabaseValueConvertible] = []
        switch p.role {
        case .admin: versionRule = "1"
        case .reviewer:
            versionRule += " OR r.owner_id = ? OR r.organization_id = ?"
            ruleArgs = [p.userId, p.organizationId]
        default:
            versionRule += " OR r.owner_id = ?"
            ruleArgs = [p.userId]
        }
        return try pool.write { db in
            let readable =
                try Bool.fetchOne(
                    db,
                    sql: """
                        SELECT 1 FROM version_files f JOIN resources r ON r.id = f.resource_id
                        WHERE f.sha256 = ? AND f.size = ? AND \(visible) AND (\(versionRule)) LIMIT 1
                        """, arguments: StatementArguments([sha256, size] + visibleArgs + ruleArgs)) ?? false
            guard readable else { return false }
            try db.cachedStatement(sql: "INSERT INTO blob_uploads (sha256, user_id, uploaded_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING").execute(arguments: [
                sha256, p.userId, Timestamp.now(),
            ])
            try Self.audit(
                db, actor: p.userId, action: "blob.upload", details: ["sha256": .string(sha256), "size": .number(Double(size)), "instant": .bool(true)])
            return true
        }
    }

    /// Whether the catalog has a row for these bytes (uploaded or used by some resource).
    public func blobKnown(sha256: String) throws -> Bool {
        try pool.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM blobs WHERE sha256 = ?", arguments: [sha256]) ?? false }
    }

    /// The size of a blob this user uploaded, or nil.
    public func blobUploaded(sha256: String, by userId: String) throws -> Int64? {
        try pool.read { db in
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT b.size FROM blobs b JOIN blob_uploads u ON u.sha256 = b.sha256 WHERE b.sha256 = ? AND u.user_id = ?"),
                arguments: [sha256, userId])
        }
    }
}

/// Where the bundled schema lives.
enum ZiyuankuSchemaBundle {
    static var migrationsURL: URL? { ZiyuankuSchema.bundle.url(forResource: "migrations", withExtension: nil) }
}

extension Catalog {
    public struct MajorCatalogImport: Sendable, Codable {
        public var rows: Int
        public var byItemLevel: [String: Int]
        public var result: MajorImportResult
        public var majorsInCatalog: Int
    }

    /// Checks a major-catalog CSV (the official layout) and, unless `dryRun`, imports it in
    /// batches of `batchSize` rows (each one transaction; the import is idempotent, so a
    /// re-run completes an interrupted one). Row errors are thrown all together and nothing
    /// is imported.
    public func importMajorCatalog(
        csv bytes: [UInt8], source: String, dryRun: Bool = false, batchSize: Int = 200, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> MajorCatalogImport {
        let existing = Set(try majors(level: nil, prefix: nil, itemLevel: nil, limit: 1_000_000, offset: 0).items.map(\.code))
        let rows: [MajorCatalogRow]
        switch MajorCatalogCSV.parse(bytes, knownParent: { existing.contains($0) }) {
        case .failure(let f): throw f
        case .success(let r): rows = r
        }
        let counts = Dictionary(grouping: rows, by: \.itemLevel).mapValues(\.count)
        var total = MajorImportResult()
        if !dryRun, let first = rows.first {
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            let majors = rows.map { Major(code: $0.code, educationLevel: $0.educationLevel, name: $0.name, itemLevel: $0.itemLevel, parentCode: $0.parentCode) }
            var i = 0
            while i < majors.count {
                let slice = Array(majors[i..<min(i + batchSize, majors.count)])
                let r = try importMajors(slice, catalog: first.catalog, source: source, digest: digest)
                total.inserted += r.inserted
                total.updated += r.updated
                total.unchanged += r.unchanged
                total.vocabularyVersionRecorded = total.vocabularyVersionRecorded || r.vocabularyVersionRecorded
                i += slice.count
                progress(i, majors.count)
            }
        }
        return MajorCatalogImport(rows: rows.count, byItemLevel: counts, result: total, majorsInCatalog: try countMajors(itemLevel: "major"))
    }
}

/// A thread-safe cache that empties itself when full: for values derived from immutable
/// versions (decoded versions here, their wire fragments in the server).
public final class BoundedCache<Value: Sendable>: Sendable {
    private let entries = Mutex<[String: Value]>([:])
    let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    public func get(_ key: String) -> Value? { entries.withLock { $0[key] } }

    public func put(_ key: String, _ value: Value) {
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }
            e[key] = value
        }
    }

    /// The key of a resource's version.
    public static func versionKey(_ resourceId: String, _ number: Int) -> String { "\(resourceId)#\(number)" }
}

/// Decoded versions; safe to keep because versions never change once written.
typealias VersionCache = BoundedCache<ResourceVersion>
