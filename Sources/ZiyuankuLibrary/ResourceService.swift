import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// The rules for resources and their files, for every surface: what metadata is valid, which
/// role a file gets, what a manifest may hold, who may see and change a resource, and the
/// create and edit use cases on top of them. Nothing here knows about HTTP.
public struct ResourceService: Sendable {
    /// Resources and versions, and the majors vocabulary metadata is checked against.
    let catalog: any ResourceRepository & AccountRepository
    let blobs: FileBlobStore
    let allowAnonymous: Bool

    public init(catalog: any ResourceRepository & AccountRepository, blobs: FileBlobStore, allowAnonymous: Bool) {
        self.catalog = catalog
        self.blobs = blobs
        self.allowAnonymous = allowAnonymous
    }

    // MARK: visibility

    /// The resource if `principal` may see it; `notFound` otherwise (a draft's existence is not
    /// revealed), `unauthorized` for an anonymous caller when anonymous reading is off. Also
    /// says whether the caller is privileged on it (owner, its reviewers, admin).
    public func visible(id: String, by principal: Principal?) throws -> (state: ResourceState, privileged: Bool) {
        if principal == nil && !allowAnonymous { throw DomainError.unauthorized }
        guard Identifiers.isUUID(id), let state = try catalog.state(id: id), Access.canSee(principal, state, allowAnonymous: allowAnonymous)
        else { throw DomainError.notFound() }
        return (state, Access.isPrivileged(principal, state))
    }

    /// The resource and the version `pick` chooses, read in one transaction; `notFound` when
    /// the caller may not see it.
    public func visibleView(id: String, by principal: Principal?, pick: (ResourceState) throws -> Int) throws -> ResourceView {
        if principal == nil && !allowAnonymous { throw DomainError.unauthorized }
        guard Identifiers.isUUID(id),
            let view = try catalog.resolve(
                id: id,
                pick: { state in
                    guard Access.canSee(principal, state, allowAnonymous: allowAnonymous) else { return nil }
                    return try pick(state)
                })
        else { throw DomainError.notFound() }
        return view
    }

    /// The resource with the version `principal` reads by default: the newest published one for
    /// readers, the newest for the privileged.
    public func read(id: String, by principal: Principal?) throws -> ResourceView {
        try visibleView(id: id, by: principal) { Access.defaultVersion(principal, $0) }
    }

    /// The versions `principal` may read, newest first (all of them for the privileged).
    public func versions(id: String, by principal: Principal?) throws -> [VersionSummary] {
        let (state, privileged) = try visible(id: id, by: principal)
        let readable =
            privileged
            ? nil : Access.readableVersions(principal, state, published: try catalog.readerVersions(id: state.id), allowAnonymous: allowAnonymous)
        return try catalog.versionSummaries(id: state.id, readable: readable)
    }

    /// Version `n` of `id` (nil: not a version number), if `principal` may read it.
    public func version(id: String, number n: Int?, by principal: Principal?) throws -> ResourceView {
        let (state, _) = try visible(id: id, by: principal)
        let number = try readableVersion(n, of: state, by: principal, published: try catalog.readerVersions(id: state.id))
        guard let view = try catalog.view(id: state.id, version: number) else { throw DomainError.notFound("version") }
        return view
    }

    /// The resource with the version whose files a download serves: version `n` when one is
    /// named (`.some(nil)`: a number that is not one), else the one `principal` reads by default
    /// (the newest published for readers, the newest for the privileged).
    public func downloadView(id: String, version n: Int??, by principal: Principal?) throws -> ResourceView {
        guard let n else { return try read(id: id, by: principal) }
        // Read before the view's own transaction (GRDB reads do not nest).
        let published = try catalog.readerVersions(id: id)
        return try visibleView(id: id, by: principal) { try readableVersion(n, of: $0, by: principal, published: published) }
    }

    /// Version `n` if the caller may read it; `notFound("version")` otherwise.
    public func readableVersion(_ n: Int?, of state: ResourceState, by principal: Principal?, published: [Int: Visibility]) throws -> Int {
        guard let n, Access.canReadVersion(principal, state, n, published: published, allowAnonymous: allowAnonymous)
        else { throw DomainError.notFound("version") }
        return n
    }

    /// Only the owner or an administrator changes a resource (others do not learn a draft exists).
    public func authorizeEdit(_ p: Principal) -> @Sendable (ResourceState) throws -> Void {
        { [allowAnonymous] state in
            guard Access.canSee(p, state, allowAnonymous: allowAnonymous) else { throw DomainError.notFound() }
            guard Access.canEdit(p, state) else { throw DomainError.forbidden("Only the resource's owner or an administrator may change it.") }
        }
    }

    /// May `p` change this resource, from the version it last saw? (The save re-checks both
    /// inside its transaction; this answers before a request body is read.)
    public func checkEdit(of state: ResourceState, by p: Principal, expected: Int?) throws {
        try authorizeEdit(p)(state)
        if let expected, expected != state.currentVersion { throw Catalog.stale(expected, state.currentVersion) }
    }

    /// An edit under way: the resource as its editor may change it, and the version the editor
    /// last saw (nil: whatever is newest).
    public struct Edit: Sendable {
        public let state: ResourceState
        public let editor: Principal
        public let expected: Int?
    }

    /// Starts an edit of `id` by `p`, before any request body is read: `notFound` unless `p`
    /// sees the resource, `forbidden` unless `p` may change it; only then is `expected` read
    /// (e.g. from `If-Match`, whose problems come after those), and with `refuseStale` a
    /// version other than the newest is refused at once.
    public func beginEdit(id: String, by p: Principal, expected: () throws -> Int?, refuseStale: Bool) throws -> Edit {
        let (state, _) = try visible(id: id, by: p)
        try authorizeEdit(p)(state)
        let version = try expected()
        if refuseStale { try checkEdit(of: state, by: p, expected: version) }
        return Edit(state: state, editor: p, expected: version)
    }

    // MARK: validation

    /// Splits the request-only members (`files`, `changeNote`) from the metadata object.
    public static func splitRequestMembers(_ object: [String: JSONValue]) -> (metadata: [String: JSONValue], files: JSONValue?, note: JSONValue?) {
        var m = object
        let files = m.removeValue(forKey: "files")
        let note = m.removeValue(forKey: "changeNote")
        return (m, files, note)
    }

    /// Metadata checked field by field (majors against the catalog's vocabulary); all problems
    /// at once, with `extraErrors` from the same request.
    public func validateMetadata(_ object: [String: JSONValue], extraErrors: [FieldError] = []) throws -> ResourceMetadata {
        var codes: [String] = []
        if case .array(let items)? = object["majorCodes"] {
            for case .string(let s) in items.prefix(20) where MetadataValidator.isMajorCodeShape(s) { codes.append(s) }
        }
        let majors = try catalog.majorInfo(codes: codes)
        switch MetadataValidator.validate(object, lookupMajor: { majors[$0] }) {
        case .success(let m):
            if !extraErrors.isEmpty { throw DomainError.validation(extraErrors) }
            return m
        case .failure(let e): throw DomainError.validation(e.errors + extraErrors)
        }
    }

    public static func changeNote(_ value: JSONValue?) throws -> String {
        switch value {
        case nil, .null?: return ""
        case .string(let s)?:
            var r = FieldReader(object: ["changeNote": .string(s)])
            guard let t = r.text("changeNote", required: false, max: 1000, multiline: true) else { throw DomainError.validation(r.errors) }
            return t
        case let v?: throw DomainError.validation([.init(field: "changeNote", message: "must be a string, not \(v.typeName)")])
        }
    }

    /// Declared roles by file name: `files: [{name, role}]`.
    public static func declaredRoles(_ value: JSONValue?, field: String = "files") throws -> [String: FileRole] {
        guard let value, value != .null else { return [:] }
        guard case .array(let items) = value else { throw DomainError.validation([.init(field: field, message: "must be an array of {name, role}")]) }
        var out: [String: FileRole] = [:]
        var errors: [FieldError] = []
        for (i, item) in items.enumerated() {
            guard case .object(let o) = item else {
                errors.append(.init(field: "\(field)[\(i)]", message: "must be an object with name and role"))
                continue
            }
            errors += FieldReader.unknownFields(in: o, allowed: ["name", "role"], prefix: "\(field)[\(i)].")
            var r = FieldReader(object: o)
            let name = r.text("name", required: true, max: 255)
            let role: FileRole? = r.enumValue("role", required: true)
            errors += r.errors.map { FieldError(field: "\(field)[\(i)].\($0.field)", message: $0.message) }
            if let name, let role { out[Filenames.clean(name) ?? name] = role }
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return out
    }

    /// Subtitles are subtitles; the first other file is the primary one, the rest attachments.
    public static func defaultRole(for name: String, hasPrimary: Bool) -> FileRole {
        let ext = Filenames.fileExtension(name)
        if ext == "vtt" || ext == "srt" { return .subtitle }
        return hasPrimary ? .attachment : .primary
    }

    /// Checks a manifest: unique names, exactly one primary file, media types allowed for the
    /// resource type. Errors name `files[i]`.
    public static func checkManifest(_ files: [NewFile], resourceType: ResourceType) throws {
        var errors: [FieldError] = []
        var seen = Set<String>()
        for (i, f) in files.enumerated() {
            if !seen.insert(f.name).inserted { errors.append(.init(field: "files[\(i)]", message: "duplicate file name \(f.name)")) }
            if let why = MediaSniffer.refusal(mediaType: f.mediaType, resourceType: resourceType, role: f.role) {
                errors.append(.init(field: "files[\(i)]", message: "\(f.name): \(why)"))
            }
        }
        let primaries = files.filter { $0.role == .primary }.count
        if files.isEmpty {
            errors.append(.init(field: "files", message: "a resource needs at least one file"))
        } else if primaries != 1 {
            errors.append(.init(field: "files", message: "exactly one file must have the role primary (found \(primaries))"))
        }
        if errors.isEmpty { return }
        let typeProblem = errors.contains { $0.message.contains("does not accept") || $0.message.contains("is not accepted") }
        if typeProblem {
            throw DomainError(.fileTypeNotAllowed, "A file's content is not allowed here; see errors.", fields: errors)
        }
        throw DomainError.validation(errors)
    }

    /// The manifest after adding or replacing `blobs`, applying declared roles and removals.
    public static func mergeFiles(
        _ latest: ResourceVersion, _ blobs: [(name: String, blob: BlobInfo)], roles: [String: FileRole], removals: [String]
    ) throws -> [NewFile] {
        var files = latest.files.map(NewFile.init)
        var errors: [FieldError] = []
        for name in removals {
            guard let i = files.firstIndex(where: { $0.name == name }) else {
                errors.append(.init(field: "changes.remove", message: "no file named \(name) in version \(latest.number)"))
                continue
            }
            files.remove(at: i)
        }
        for (name, blob) in blobs {
            let media = MediaSniffer.mediaType(head: blob.head, filename: name)
            if let i = files.firstIndex(where: { $0.name == name }) {
                files[i] = NewFile(name: name, sha256: blob.sha256, size: blob.size, mediaType: media, role: roles[name] ?? files[i].role)
            } else {
                let role = roles[name] ?? defaultRole(for: name, hasPrimary: files.contains { $0.role == .primary })
                files.append(NewFile(name: name, sha256: blob.sha256, size: blob.size, mediaType: media, role: role))
            }
        }
        for (name, role) in roles {
            guard let i = files.firstIndex(where: { $0.name == name }) else {
                errors.append(.init(field: "changes.files", message: "no file named \(name)"))
                continue
            }
            files[i].role = role
        }
        // A newly declared primary demotes the previous one.
        if let newPrimary = roles.first(where: { $0.value == .primary })?.key {
            for i in files.indices where files[i].role == .primary && files[i].name != newPrimary { files[i].role = .attachment }
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        try checkManifest(files, resourceType: latest.metadata.resourceType)
        return files
    }

    // MARK: create

    /// What a create request says besides its files: valid metadata, declared roles, a note.
    public struct Draft: Sendable {
        public var metadata: ResourceMetadata
        public var roles: [String: FileRole]
        public var note: String
    }

    /// Reads a create request's metadata object (`files` and `changeNote` members included).
    public func draft(from object: [String: JSONValue]) throws -> Draft {
        let (m, files, note) = Self.splitRequestMembers(object)
        let roles = try Self.declaredRoles(files)
        let noteText = try Self.changeNote(note)
        return Draft(metadata: try validateMetadata(m), roles: roles, note: noteText)
    }

    /// The manifest for files received with a create request (digests filled in once the bytes
    /// are stored), checked before any byte enters the store.
    public static func plan(received: [(name: String, size: Int64, head: [UInt8])], for draft: Draft) throws -> [NewFile] {
        var errors: [FieldError] = []
        for name in draft.roles.keys.sorted() where !received.contains(where: { $0.name == name }) {
            errors.append(.init(field: "metadata.files", message: "names a file that was not sent: \(name)"))
        }
        var hasPrimary = draft.roles.values.contains(.primary)
        var manifest: [NewFile] = []
        for f in received {
            let role = draft.roles[f.name] ?? defaultRole(for: f.name, hasPrimary: hasPrimary)
            if role == .primary { hasPrimary = true }
            manifest.append(NewFile(name: f.name, sha256: "", size: f.size, mediaType: MediaSniffer.mediaType(head: f.head, filename: f.name), role: role))
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        try checkManifest(manifest, resourceType: draft.metadata.resourceType)
        return manifest
    }

    /// Creates a resource (version 1, a draft) from a checked draft and manifest.
    public func create(owner: Principal, draft: Draft, files: [NewFile]) throws -> ResourceView {
        try catalog.createResource(owner: owner, metadata: draft.metadata, files: files, changeNote: draft.note)
    }

    /// Creates a resource from a JSON object whose `files` reference blobs the owner uploaded.
    public func createFromBlobs(owner: Principal, object: [String: JSONValue]) throws -> ResourceView {
        let (m, files, note) = Self.splitRequestMembers(object)
        var fileErrors: [FieldError] = []
        var refs: [BlobReference] = []
        do { refs = try blobReferences(files, userId: owner.userId) } catch let e as DomainError { fileErrors = e.fields }
        let metadata = try validateMetadata(m, extraErrors: fileErrors)
        let noteText = try Self.changeNote(note)
        let manifest = try manifest(from: refs)
        try Self.checkManifest(manifest, resourceType: metadata.resourceType)
        return try catalog.createResource(owner: owner, metadata: metadata, files: manifest, changeNote: noteText)
    }

    public struct BlobReference: Sendable {
        public var name: String
        public var sha256: String
        public var size: Int64
        public var role: FileRole?
    }

    /// `files: [{sha256, name, role?}]` referencing blobs the caller uploaded.
    func blobReferences(_ value: JSONValue?, userId: String) throws -> [BlobReference] {
        guard case .array(let items)? = value else {
            throw DomainError.validation([.init(field: "files", message: "is required: an array of {sha256, name, role} for blobs you uploaded")])
        }
        var errors: [FieldError] = []
        var out: [BlobReference] = []
        if items.count > 64 { errors.append(.init(field: "files", message: "at most 64 files")) }
        for (i, item) in items.prefix(64).enumerated() {
            let f = "files[\(i)]"
            guard case .object(let o) = item else {
                errors.append(.init(field: f, message: "must be an object with sha256, name and role"))
                continue
            }
            errors += FieldReader.unknownFields(in: o, allowed: ["sha256", "name", "role"], prefix: "\(f).")
            var r = FieldReader(object: o)
            let sha = r.text("sha256", required: true, max: 64)
            let name = r.text("name", required: true, max: 1000)
            let role: FileRole? = r.enumValue("role", required: false)
            errors += r.errors.map { FieldError(field: "\(f).\($0.field)", message: $0.message) }
            guard let sha, let name else { continue }
            guard Identifiers.isSHA256Hex(sha) else {
                errors.append(.init(field: "\(f).sha256", message: "must be 64 lower-case hex digits"))
                continue
            }
            guard let clean = Filenames.clean(name) else {
                errors.append(.init(field: "\(f).name", message: "the filename has no usable characters"))
                continue
            }
            guard let size = try catalog.blobUploaded(sha256: sha, by: userId), blobs.localPath(of: sha) != nil else {
                errors.append(.init(field: "\(f).sha256", message: "no blob with this digest was uploaded by you (POST /v1/blobs first)"))
                continue
            }
            out.append(BlobReference(name: clean, sha256: sha, size: size, role: role))
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return out
    }

    func manifest(from refs: [BlobReference]) throws -> [NewFile] {
        var hasPrimary = refs.contains { $0.role == .primary }
        return try refs.map { ref in
            let role = ref.role ?? Self.defaultRole(for: ref.name, hasPrimary: hasPrimary)
            if role == .primary { hasPrimary = true }
            let head = try blobs.head(of: ref.sha256, count: MediaSniffer.headLength)
            return NewFile(name: ref.name, sha256: ref.sha256, size: ref.size, mediaType: MediaSniffer.mediaType(head: head, filename: ref.name), role: role)
        }
    }

    // MARK: edit

    /// Changes metadata fields (`patch`, with an optional `changeNote`) into a new version.
    /// `expected` is the version the caller last saw (a stale one is refused).
    public func updateMetadata(_ edit: Edit, patch object: [String: JSONValue]) throws -> ResourceView {
        let (state, p, expected) = (edit.state, edit.editor, edit.expected)
        try checkEdit(of: state, by: p, expected: expected)
        var patch = object
        let note = try Self.changeNote(patch.removeValue(forKey: "changeNote"))
        if patch.isEmpty { throw DomainError.validation([.init(field: "", message: "send at least one metadata field to change")]) }
        // Validate against the newest metadata first, outside the transaction (needs the majors look-up).
        guard let current = try catalog.view(id: state.id, version: state.currentVersion) else { throw DomainError.notFound() }
        var merged = current.version.metadata.jsonObject
        for (k, v) in patch { merged[k] = v }
        let metadata = try validateMetadata(merged)
        return try catalog.saveVersion(
            id: state.id, by: p, expectedVersion: expected, changeNote: note, from: nil, auditAction: "resource.version", auditDetails: [:],
            authorize: authorizeEdit(p)
        ) { latest in
            if latest.number != current.version.number {
                // Someone saved between our read and this transaction; never overwrite silently.
                throw DomainError(
                    .conflict, "The resource changed while your edit was being saved (now version \(latest.number)); reload and retry.",
                    extra: ["currentVersion": .number(Double(latest.number))])
            }
            let files = latest.files.map(NewFile.init)
            try Self.checkManifest(files, resourceType: metadata.resourceType)
            return (metadata, files)
        }
    }

    /// What a file change request says besides its files.
    public struct FileChanges: Sendable {
        public var roles: [String: FileRole] = [:]
        public var removals: [String] = []
        public var note = ""
        public init() {}
    }

    /// Reads the `changes` object of a file change request.
    public static func fileChanges(from object: [String: JSONValue]) throws -> FileChanges {
        var errors = FieldReader.unknownFields(in: object, allowed: ["files", "remove", "changeNote"], prefix: "changes.")
        var r = FieldReader(object: object)
        var changes = FileChanges()
        changes.removals = r.textArray("remove", required: false, min: 0, max: 64, itemMax: 255) ?? []
        errors += r.errors
        if !errors.isEmpty { throw DomainError.validation(errors) }
        changes.roles = try declaredRoles(object["files"], field: "changes.files")
        changes.note = try changeNote(object["changeNote"])
        return changes
    }

    /// Checks a file change against the newest version before any byte is stored, so a refused
    /// request leaves nothing behind (the save re-checks inside its transaction).
    public func checkFileChanges(_ edit: Edit, received: [(name: String, size: Int64, head: [UInt8])], changes: FileChanges) throws {
        let (state, expected) = (edit.state, edit.expected)
        if received.isEmpty && changes.removals.isEmpty {
            throw DomainError.validation([.init(field: "file", message: "send at least one file part or a removal")])
        }
        if Set(received.map(\.name)).count != received.count {
            throw DomainError.validation([.init(field: "file", message: "two file parts have the same name")])
        }
        guard let now = try catalog.state(id: state.id) else { throw DomainError.notFound() }
        if let expected, expected != now.currentVersion { throw Catalog.stale(expected, now.currentVersion) }
        try Catalog.checkEditable(now)
        guard let latest = try catalog.view(id: state.id, version: now.currentVersion)?.version else { throw DomainError.notFound() }
        let pending = received.map { (name: $0.name, blob: BlobInfo(sha256: "", size: $0.size, head: $0.head)) }
        _ = try Self.mergeFiles(latest, pending, roles: changes.roles, removals: changes.removals)
    }

    /// Saves stored files and the other changes as a new version.
    public func saveFileChanges(_ edit: Edit, stored: [(name: String, blob: BlobInfo)], changes: FileChanges) throws -> ResourceView {
        try catalog.saveVersion(
            id: edit.state.id, by: edit.editor, expectedVersion: edit.expected, changeNote: changes.note, from: nil, auditAction: "resource.version",
            auditDetails: [:], authorize: authorizeEdit(edit.editor)
        ) { latest in
            (latest.metadata, try Self.mergeFiles(latest, stored, roles: changes.roles, removals: changes.removals))
        }
    }
}
