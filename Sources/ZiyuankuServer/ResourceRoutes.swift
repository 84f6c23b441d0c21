import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import ZiyuankuCore
import ZiyuankuStore

/// Create, read, list, edit, add files, publish, and versions.
struct ResourceRoutes {
    let services: AppServices
    var catalog: Catalog { services.catalog }
    var allowAnonymous: Bool { services.config.allowAnonymous }

    func register(_ r: Routes) {
        r.on(.post, "/v1/resources") { req, ctx in try await create(req, ctx) }
        r.on(.get, "/v1/resources") { req, ctx in try await list(req, ctx) }
        r.on(.get, "/v1/resources/:id") { _, ctx in
            let view = try visibleView(ctx) { Access.defaultVersion(ctx.principal, $0) }
            return try ResourceDTO(
                view: view, privileged: Access.isPrivileged(ctx.principal, view.state),
                allowedActions: ctx.principal.map { Access.allowedActions($0, view.state) }
            ).response(headers: [.eTag: etag(view.version.number)])
        }
        r.on(.patch, "/v1/resources/:id") { req, ctx in try await patch(req, ctx) }
        r.on(.post, "/v1/resources/:id/files") { req, ctx in try await addFiles(req, ctx) }
        r.on(.get, "/v1/resources/:id/versions") { _, ctx in
            let (state, privileged) = try visible(ctx)
            let readable = privileged
                ? nil
                : Access.readableVersions(ctx.principal, state, published: try catalog.readerVersions(id: state.id), allowAnonymous: allowAnonymous)
            return try JSONResponse.make(["items": try catalog.versionSummaries(id: state.id, readable: readable)])
        }
        r.on(.get, "/v1/resources/:id/versions/:n") { _, ctx in
            let (state, _) = try visible(ctx)
            let n = try versionNumber(ctx, state, published: try catalog.readerVersions(id: state.id))
            guard let view = try catalog.view(id: state.id, version: n) else { throw DomainError.notFound("version") }
            return try JSONResponse.make(VersionDTO(resourceId: state.id, version: view.version))
        }
        let downloads = Downloads(services: services)
        for method in [HTTPRequest.Method.get, .head] {
            r.on(method, "/v1/resources/:id/files/:name") { req, ctx in
                let view = try visibleView(ctx) { Access.defaultVersion(ctx.principal, $0) }
                return try await downloads.serve(req, ctx, view: view)
            }
            r.on(method, "/v1/resources/:id/versions/:n/files/:name") { req, ctx in
                // Read before the view's own transaction (GRDB reads do not nest).
                let published = try catalog.readerVersions(id: try ctx.parameters.require("id"))
                let view = try visibleView(ctx) { try versionNumber(ctx, $0, published: published) }
                return try await downloads.serve(req, ctx, view: view)
            }
        }
    }

    func etag(_ version: Int) -> String { "\"v\(version)\"" }

    /// The resource named in the path if the caller may see it (else 404), and whether the
    /// caller is privileged on it.
    func visible(_ ctx: ZykContext) throws -> (ResourceState, Bool) {
        if ctx.principal == nil && !allowAnonymous { throw DomainError.unauthorized }
        let id = try ctx.parameters.require("id")
        guard Identifiers.isUUID(id), let state = try catalog.state(id: id),
            Access.canSee(ctx.principal, state, allowAnonymous: allowAnonymous)
        else { throw DomainError.notFound() }
        return (state, Access.isPrivileged(ctx.principal, state))
    }

    /// The resource in the path and the version `pick` chooses, read in one transaction;
    /// 404 when the caller may not see it.
    func visibleView(_ ctx: ZykContext, pick: (ResourceState) throws -> Int) throws -> ResourceView {
        if ctx.principal == nil && !allowAnonymous { throw DomainError.unauthorized }
        let id = try ctx.parameters.require("id")
        guard Identifiers.isUUID(id),
            let view = try catalog.resolve(id: id, pick: { state in
                guard Access.canSee(ctx.principal, state, allowAnonymous: allowAnonymous) else { return nil }
                return try pick(state)
            })
        else { throw DomainError.notFound() }
        return view
    }

    func versionNumber(_ ctx: ZykContext, _ state: ResourceState, published: [Int: Visibility]) throws -> Int {
        guard let raw = ctx.parameters.get("n"), let n = Int(raw),
            Access.canReadVersion(ctx.principal, state, n, published: published, allowAnonymous: allowAnonymous)
        else { throw DomainError.notFound("version") }
        return n
    }

    // MARK: create

    /// Splits the request-only members (`files`, `changeNote`) from the metadata object.
    func splitRequestMembers(_ object: [String: JSONValue]) -> (metadata: [String: JSONValue], files: JSONValue?, note: JSONValue?) {
        var m = object
        let files = m.removeValue(forKey: "files")
        let note = m.removeValue(forKey: "changeNote")
        return (m, files, note)
    }

    func validateMetadata(_ object: [String: JSONValue], extraErrors: [FieldError] = []) throws -> ResourceMetadata {
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

    func changeNote(_ value: JSONValue?) throws -> String {
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
    func declaredRoles(_ value: JSONValue?, field: String = "files") throws -> [String: FileRole] {
        guard let value, value != .null else { return [:] }
        guard case .array(let items) = value else { throw DomainError.validation([.init(field: field, message: "must be an array of {name, role}")]) }
        var out: [String: FileRole] = [:]
        var errors: [FieldError] = []
        for (i, item) in items.enumerated() {
            guard case .object(let o) = item else {
                errors.append(.init(field: "\(field)[\(i)]", message: "must be an object with name and role"))
                continue
            }
            for k in o.keys.sorted() where !["name", "role"].contains(k) { errors.append(.init(field: "\(field)[\(i)].\(k)", message: "unknown field")) }
            var r = FieldReader(object: o)
            let name = r.text("name", required: true, max: 255)
            let role: FileRole? = r.enumValue("role", required: true)
            errors += r.errors.map { FieldError(field: "\(field)[\(i)].\($0.field)", message: $0.message) }
            if let name, let role { out[Filenames.clean(name) ?? name] = role }
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return out
    }

    static func defaultRole(for name: String, hasPrimary: Bool) -> FileRole {
        let ext = Filenames.fileExtension(name)
        if ext == "vtt" || ext == "srt" { return .subtitle }
        return hasPrimary ? .attachment : .primary
    }

    /// Checks a manifest: unique names, exactly one primary file, media types allowed for the
    /// resource type. Errors name `files[i]`.
    static func checkManifest(_ files: [NewFile], resourceType: ResourceType) throws {
        var errors: [FieldError] = []
        var seen = Set<String>()
        for (i, f) in files.enumerated() {
            if !seen.insert(f.name).inserted { errors.append(.init(field: "files[\(i)]", message: "duplicate file name \(f.name)")) }
            if let why = MediaSniffer.refusal(mediaType: f.mediaType, resourceType: resourceType, role: f.role) {
                errors.append(.init(field: "files[\(i)]", message: "\(f.name): \(why)"))
            }
        }
        let primaries = files.filter { $0.role == .primary }.count
        if files.isEmpty { errors.append(.init(field: "files", message: "a resource needs at least one file")) }
        else if primaries != 1 { errors.append(.init(field: "files", message: "exactly one file must have the role primary (found \(primaries))")) }
        if errors.isEmpty { return }
        let typeProblem = errors.contains { $0.message.contains("does not accept") || $0.message.contains("is not accepted") }
        if typeProblem {
            throw DomainError(.fileTypeNotAllowed, "A file's content is not allowed here; see errors.", fields: errors)
        }
        throw DomainError.validation(errors)
    }

    func create(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireAuthor()
        let type = BodyReader.mediaType(req) ?? ""
        let view: ResourceView
        if type == "multipart/form-data" {
            view = try await createMultipart(req, p)
        } else if type == "application/json" || type.hasSuffix("+json") {
            view = try await createFromBlobs(req, p)
        } else {
            throw DomainError(
                .unsupportedMediaType,
                "Create resources with multipart/form-data (a metadata part and file parts) or application/json referencing uploaded blobs.")
        }
        return try ResourceDTO(view: view, privileged: true).response(
            status: .created,
            headers: [.location: "/v1/resources/\(view.state.id)", .eTag: etag(view.version.number)])
    }

    func createMultipart(_ req: Request, _ p: Principal) async throws -> ResourceView {
        let uploader = Uploader(services: services)
        var parsed: (ResourceMetadata, [String: FileRole], String)?
        let received = try await uploader.receiveMultipart(req, jsonParts: ["metadata"]) { _, object in
            let (m, files, note) = splitRequestMembers(object)
            let roles = try declaredRoles(files)
            let noteText = try changeNote(note)
            parsed = (try validateMetadata(m), roles, noteText)
        }
        guard let (metadata, roles, note) = parsed else {
            for f in received { f.writer.abort() }
            throw DomainError.validation([.init(field: "metadata", message: "the metadata part is required")])
        }
        var manifest: [NewFile] = []
        var hasPrimary = roles.values.contains(.primary)
        var errors: [FieldError] = []
        for name in roles.keys where !received.contains(where: { $0.name == name }) {
            errors.append(.init(field: "metadata.files", message: "names a file that was not sent: \(name)"))
        }
        for f in received {
            let role = roles[f.name] ?? Self.defaultRole(for: f.name, hasPrimary: hasPrimary)
            if role == .primary { hasPrimary = true }
            manifest.append(
                NewFile(
                    name: f.name, sha256: "", size: f.writer.count, mediaType: MediaSniffer.mediaType(head: f.writer.head, filename: f.name),
                    role: role))
        }
        do {
            if !errors.isEmpty { throw DomainError.validation(errors) }
            try Self.checkManifest(manifest, resourceType: metadata.resourceType)
        } catch {
            for f in received { f.writer.abort() }
            throw error
        }
        let blobs = try await uploader.commit(received)
        for i in manifest.indices { manifest[i].sha256 = blobs[i].blob.sha256 }
        return try catalog.createResource(owner: p, metadata: metadata, files: manifest, changeNote: note)
    }

    /// `files: [{sha256, name, role?}]` referencing blobs the caller uploaded with POST /v1/blobs.
    func blobReferences(_ value: JSONValue?, userId: String) throws -> [(name: String, sha256: String, size: Int64, role: FileRole?)] {
        guard case .array(let items)? = value else {
            throw DomainError.validation([.init(field: "files", message: "is required: an array of {sha256, name, role} for blobs you uploaded")])
        }
        var errors: [FieldError] = []
        var out: [(String, String, Int64, FileRole?)] = []
        if items.count > 64 { errors.append(.init(field: "files", message: "at most 64 files")) }
        for (i, item) in items.prefix(64).enumerated() {
            let f = "files[\(i)]"
            guard case .object(let o) = item else {
                errors.append(.init(field: f, message: "must be an object with sha256, name and role"))
                continue
            }
            for k in o.keys.sorted() where !["sha256", "name", "role"].contains(k) { errors.append(.init(field: "\(f).\(k)", message: "unknown field")) }
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
            guard let size = try catalog.blobUploaded(sha256: sha, by: userId), services.blobs.localPath(of: sha) != nil else {
                errors.append(.init(field: "\(f).sha256", message: "no blob with this digest was uploaded by you (POST /v1/blobs first)"))
                continue
            }
            out.append((clean, sha, size, role))
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return out
    }

    func manifest(from refs: [(name: String, sha256: String, size: Int64, role: FileRole?)]) throws -> [NewFile] {
        var hasPrimary = refs.contains { $0.role == .primary }
        return try refs.map { ref in
            let role = ref.role ?? Self.defaultRole(for: ref.name, hasPrimary: hasPrimary)
            if role == .primary { hasPrimary = true }
            let head = try services.blobs.head(of: ref.sha256, count: MediaSniffer.headLength)
            return NewFile(name: ref.name, sha256: ref.sha256, size: ref.size, mediaType: MediaSniffer.mediaType(head: head, filename: ref.name), role: role)
        }
    }

    func createFromBlobs(_ req: Request, _ p: Principal) async throws -> ResourceView {
        let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
        let (m, files, note) = splitRequestMembers(body)
        var fileErrors: [FieldError] = []
        var refs: [(name: String, sha256: String, size: Int64, role: FileRole?)] = []
        do { refs = try blobReferences(files, userId: p.userId) } catch let e as DomainError { fileErrors = e.fields }
        let metadata = try validateMetadata(m, extraErrors: fileErrors)
        let noteText = try changeNote(note)
        let manifest = try manifest(from: refs)
        try Self.checkManifest(manifest, resourceType: metadata.resourceType)
        return try catalog.createResource(owner: p, metadata: metadata, files: manifest, changeNote: noteText)
    }

    // MARK: edit

    func expectedVersion(_ req: Request) throws -> Int? {
        guard let v = req.headers[.ifMatch] else { return nil }
        var t = v.trimmingCharacters(in: .whitespaces)
        if t == "*" { return nil }
        if t.hasPrefix("W/") { t = String(t.dropFirst(2)) }
        guard t.hasPrefix("\"v"), t.hasSuffix("\""), let n = Int(t.dropFirst(2).dropLast()) else {
            throw DomainError(.preconditionFailed, "If-Match must be the ETag of a version, like \"v3\".")
        }
        return n
    }

    func authorizeEdit(_ p: Principal) -> (ResourceState) throws -> Void {
        { state in
            guard Access.canSee(p, state, allowAnonymous: allowAnonymous) else { throw DomainError.notFound() }
            guard Access.canEdit(p, state) else { throw DomainError.forbidden("Only the resource's owner or an administrator may change it.") }
        }
    }

    func patch(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireUser()
        let (state, _) = try visible(ctx)
        try authorizeEdit(p)(state)
        let expected = try expectedVersion(req)
        if let expected, expected != state.currentVersion { throw Catalog.stale(expected, state.currentVersion) }
        let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
        var patch = body
        let note = try changeNote(patch.removeValue(forKey: "changeNote"))
        if patch.isEmpty { throw DomainError.validation([.init(field: "", message: "send at least one metadata field to change")]) }
        // Validate against the newest metadata first, outside the transaction (needs the majors look-up).
        guard let current = try catalog.view(id: state.id, version: state.currentVersion) else { throw DomainError.notFound() }
        var merged = current.version.metadata.jsonObject
        for (k, v) in patch { merged[k] = v }
        let metadata = try validateMetadata(merged)
        let view = try catalog.saveVersion(
            id: state.id, by: p, expectedVersion: expected, changeNote: note, authorize: authorizeEdit(p)
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
        return try ResourceDTO(view: view, privileged: true).response(headers: [.eTag: etag(view.version.number)])
    }

    func addFiles(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireUser()
        let (state, _) = try visible(ctx)
        try authorizeEdit(p)(state)
        let expected = try expectedVersion(req)
        guard BodyReader.mediaType(req) == "multipart/form-data" else {
            throw DomainError(.unsupportedMediaType, "Send files as multipart/form-data: file parts and an optional 'changes' JSON part.")
        }
        let uploader = Uploader(services: services)
        var roles: [String: FileRole] = [:]
        var removals: [String] = []
        var note = ""
        let received = try await uploader.receiveMultipart(req, jsonParts: ["changes"]) { _, object in
            var errors: [FieldError] = object.keys.filter { !["files", "remove", "changeNote"].contains($0) }.sorted().map {
                FieldError(field: "changes.\($0)", message: "unknown field")
            }
            var r = FieldReader(object: object)
            removals = r.textArray("remove", required: false, min: 0, max: 64, itemMax: 255) ?? []
            errors += r.errors
            if !errors.isEmpty { throw DomainError.validation(errors) }
            roles = try declaredRoles(object["files"], field: "changes.files")
            note = try changeNote(object["changeNote"])
        }
        if received.isEmpty && removals.isEmpty {
            throw DomainError.validation([.init(field: "file", message: "send at least one file part or a removal")])
        }
        // Everything that can be checked is checked before the bytes enter the blob store, so a
        // rejected request leaves nothing behind; the transaction re-checks against the newest version.
        do {
            let names = Set(received.map(\.name))
            if names.count != received.count { throw DomainError.validation([.init(field: "file", message: "two file parts have the same name")]) }
            guard let now = try catalog.state(id: state.id) else { throw DomainError.notFound() }
            if let expected, expected != now.currentVersion { throw Catalog.stale(expected, now.currentVersion) }
            try Catalog.checkEditable(now)
            guard let latest = try catalog.view(id: state.id, version: now.currentVersion)?.version else { throw DomainError.notFound() }
            let pending = received.map { (name: $0.name, blob: BlobInfo(sha256: "", size: $0.writer.count, head: $0.writer.head)) }
            _ = try Self.mergeFiles(latest, pending, roles: roles, removals: removals)
        } catch {
            for f in received { f.writer.abort() }
            throw error
        }
        let blobs = try await uploader.commit(received)
        let view = try catalog.saveVersion(id: state.id, by: p, expectedVersion: expected, changeNote: note, authorize: authorizeEdit(p)) { latest in
            (latest.metadata, try Self.mergeFiles(latest, blobs, roles: roles, removals: removals))
        }
        return try ResourceDTO(view: view, privileged: true).response(headers: [.eTag: etag(view.version.number)])
    }

    /// The manifest after adding/replacing `blobs`, applying declared roles and removals.
    static func mergeFiles(
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
                    let role = roles[name] ?? Self.defaultRole(for: name, hasPrimary: files.contains { $0.role == .primary })
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
            try Self.checkManifest(files, resourceType: latest.metadata.resourceType)
            return files
    }

    // MARK: list

    /// Threads for searches and listings, one per core, for the life of the process.
    static let searchThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount))
        pool.start()
        return pool
    }()

    func list(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        if ctx.principal == nil && !allowAnonymous { throw DomainError.unauthorized }
        var q = QueryReader(
            req,
            allowed: ["q", "sort", "facets", "major", "type", "level", "organization", "status", "visibility", "owner", "updatedSince", "page", "pageSize"])
        var query = ResourceQuery()
        let text = q.params["q"].map { SearchQuery($0) }
        let sort: SearchSort = q.enumValue("sort") ?? (text == nil ? .newest : .relevance)
        if sort == .relevance && text == nil { q.errors.append(.init(field: "sort", message: "relevance needs a search text (q)")) }
        var wantFacets = true
        if let f = q.params["facets"] {
            switch f {
            case "true", "1": wantFacets = true
            case "false", "0": wantFacets = false
            default: q.errors.append(.init(field: "facets", message: "must be true or false"))
            }
        }
        if let major = q.string("major", maxLength: 7) {
            if MetadataValidator.isMajorCodeOrPrefix(major) {
                query.majorCode = major
            } else {
                q.errors.append(.init(field: "major", message: "must be a major code or its 2- or 4-digit 大类/类 prefix"))
            }
        }
        query.resourceType = q.enumValue("type")
        query.educationLevel = q.enumValue("level")
        query.organizationId = q.uuid("organization")
        query.status = q.enumValue("status")
        query.visibility = q.enumValue("visibility")
        if let owner = q.string("owner", maxLength: 36) {
            if owner == "me" {
                if let p = ctx.principal { query.ownerId = p.userId } else { q.errors.append(.init(field: "owner", message: "'me' needs a token")) }
            } else if Identifiers.isUUID(owner) {
                query.ownerId = owner
            } else {
                q.errors.append(.init(field: "owner", message: "must be a user id or 'me'"))
            }
        }
        if let since = q.string("updatedSince", maxLength: 40) {
            if let d = Timestamp.parse(since) { query.updatedSince = Timestamp.format(d) } else {
                q.errors.append(.init(field: "updatedSince", message: "must be an RFC 3339 time such as 2026-09-01T00:00:00Z"))
            }
        }
        query.page = q.int("page", default: 1, range: 1...10_000)
        query.pageSize = q.int("pageSize", default: 20, range: 1...100)
        try q.check()
        // On threads of its own, not the Swift concurrency pool: a search that counts facets over
        // 100,000 resources must not hold up every other request while it runs (nor the upload
        // writes and fsyncs on NIO's shared pool).
        let (catalog, viewer, allowAnonymous, frozen, facets) = (self.catalog, ctx.principal, self.allowAnonymous, query, wantFacets)
        let result = try await Self.searchThreads.runIfActive {
            try catalog.searchResources(frozen, text: text, sort: sort, viewer: viewer, allowAnonymous: allowAnonymous, facets: facets)
        }
        return try ResourcePage(
            items: result.hits.map {
                ResourceDTO(
                    view: $0.view, privileged: Access.isPrivileged(ctx.principal, $0.view.state), titleHighlight: $0.titleHighlight,
                    descriptionSnippet: $0.descriptionSnippet)
            },
            total: result.total, totalExact: result.totalExact, page: query.page, pageSize: query.pageSize, sort: sort.rawValue, query: text?.terms, facets: result.facets
        ).response()
    }
}
