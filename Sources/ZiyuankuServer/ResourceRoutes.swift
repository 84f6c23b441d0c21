import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import ZiyuankuCore
import ZiyuankuLibrary
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
            let readable =
                privileged
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

    var service: ResourceService { services.library.resources }

    func etag(_ version: Int) -> String { ETag.version(version) }

    /// The resource named in the path if the caller may see it (else 404), and whether the
    /// caller is privileged on it.
    func visible(_ ctx: ZykContext) throws -> (ResourceState, Bool) {
        let v = try service.visible(id: try ctx.parameters.require("id"), by: ctx.principal)
        return (v.state, v.privileged)
    }

    /// The resource in the path and the version `pick` chooses, read in one transaction;
    /// 404 when the caller may not see it.
    func visibleView(_ ctx: ZykContext, pick: (ResourceState) throws -> Int) throws -> ResourceView {
        try service.visibleView(id: try ctx.parameters.require("id"), by: ctx.principal, pick: pick)
    }

    func versionNumber(_ ctx: ZykContext, _ state: ResourceState, published: [Int: Visibility]) throws -> Int {
        try service.readableVersion(ctx.parameters.get("n").flatMap { Int($0) }, of: state, by: ctx.principal, published: published)
    }

    // MARK: create

    func create(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireAuthor()
        let type = BodyReader.mediaType(req) ?? ""
        let view: ResourceView
        if type == "multipart/form-data" {
            view = try await createMultipart(req, p)
        } else if type == "application/json" || type.hasSuffix("+json") {
            let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
            view = try service.createFromBlobs(owner: p, object: body)
        } else {
            throw DomainError(
                .unsupportedMediaType,
                "Create resources with multipart/form-data (a metadata part and file parts) or application/json referencing uploaded blobs.")
        }
        return try ResourceDTO(view: view, privileged: true).response(
            status: .created,
            headers: [.location: "/v1/resources/\(view.state.id)", .eTag: etag(view.version.number)])
    }

    /// Files and metadata in one multipart request: the metadata part is read and checked as it
    /// arrives, the files are planned before their bytes enter the store.
    func createMultipart(_ req: Request, _ p: Principal) async throws -> ResourceView {
        let uploader = Uploader(services: services)
        let service = self.service
        var draft: ResourceService.Draft?
        let received = try await uploader.receiveMultipart(req, jsonParts: ["metadata"]) { _, object in
            draft = try service.draft(from: object)
        }
        let checked: ResourceService.Draft
        var manifest: [NewFile]
        do {
            guard let draft else { throw DomainError.validation([.init(field: "metadata", message: "the metadata part is required")]) }
            checked = draft
            manifest = try ResourceService.plan(received: received.map { ($0.name, $0.writer.count, $0.writer.head) }, for: draft)
        } catch {
            for f in received { f.writer.abort() }
            throw error
        }
        let blobs = try await uploader.commit(received)
        for i in manifest.indices { manifest[i].sha256 = blobs[i].blob.sha256 }
        return try service.create(owner: p, draft: checked, files: manifest)
    }

    // MARK: edit

    func expectedVersion(_ req: Request) throws -> Int? { try ETag.expectedVersion(req) }

    func patch(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireUser()
        let (state, _) = try visible(ctx)
        try service.authorizeEdit(p)(state)
        let expected = try expectedVersion(req)
        try service.checkEdit(of: state, by: p, expected: expected)
        let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
        let view = try service.updateMetadata(of: state, by: p, expected: expected, patch: body)
        return try ResourceDTO(view: view, privileged: true).response(headers: [.eTag: etag(view.version.number)])
    }

    func addFiles(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireUser()
        let (state, _) = try visible(ctx)
        try service.authorizeEdit(p)(state)
        let expected = try expectedVersion(req)
        guard BodyReader.mediaType(req) == "multipart/form-data" else {
            throw DomainError(.unsupportedMediaType, "Send files as multipart/form-data: file parts and an optional 'changes' JSON part.")
        }
        let uploader = Uploader(services: services)
        var changes = ResourceService.FileChanges()
        let received = try await uploader.receiveMultipart(req, jsonParts: ["changes"]) { _, object in
            changes = try ResourceService.fileChanges(from: object)
        }
        do {
            try service.checkFileChanges(of: state, expected: expected, received: received.map { ($0.name, $0.writer.count, $0.writer.head) }, changes: changes)
        } catch {
            for f in received { f.writer.abort() }
            throw error
        }
        let blobs = try await uploader.commit(received)
        let view = try service.saveFileChanges(of: state, by: p, expected: expected, stored: blobs, changes: changes)
        return try ResourceDTO(view: view, privileged: true).response(headers: [.eTag: etag(view.version.number)])
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
            if let d = Timestamp.parse(since) {
                query.updatedSince = Timestamp.format(d)
            } else {
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
            total: result.total, totalExact: result.totalExact, page: query.page, pageSize: query.pageSize, sort: sort.rawValue, query: text?.terms,
            facets: result.facets
        ).response()
    }
}
