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
    var allowAnonymous: Bool { services.config.allowAnonymous }

    func register(_ r: Routes) {
        r.on(.post, "/v1/resources") { req, ctx in try await create(req, ctx) }
        r.on(.get, "/v1/resources") { req, ctx in try await list(req, ctx) }
        r.on(.get, "/v1/resources/:id") { _, ctx in
            let view = try service.read(id: try ctx.parameters.require("id"), by: ctx.principal)
            return try ResourceDTO(
                view: view, privileged: Access.isPrivileged(ctx.principal, view.state),
                allowedActions: ctx.principal.map { Access.allowedActions($0, view.state) }
            ).response(headers: [.eTag: etag(view.version.number)])
        }
        r.on(.patch, "/v1/resources/:id") { req, ctx in try await patch(req, ctx) }
        r.on(.post, "/v1/resources/:id/files") { req, ctx in try await addFiles(req, ctx) }
        r.on(.get, "/v1/resources/:id/versions") { _, ctx in
            try JSONResponse.make(["items": try service.versions(id: try ctx.parameters.require("id"), by: ctx.principal)])
        }
        r.on(.get, "/v1/resources/:id/versions/:n") { _, ctx in
            let view = try service.version(id: try ctx.parameters.require("id"), number: versionParameter(ctx), by: ctx.principal)
            return try JSONResponse.make(VersionDTO(resourceId: view.state.id, version: view.version))
        }
        let downloads = Downloads(services: services)
        for method in [HTTPRequest.Method.get, .head] {
            r.on(method, "/v1/resources/:id/files/:name") { req, ctx in
                let view = try service.downloadView(id: try ctx.parameters.require("id"), version: nil, by: ctx.principal)
                return try await downloads.serve(req, ctx, view: view)
            }
            r.on(method, "/v1/resources/:id/versions/:n/files/:name") { req, ctx in
                let view = try service.downloadView(id: try ctx.parameters.require("id"), version: .some(versionParameter(ctx)), by: ctx.principal)
                return try await downloads.serve(req, ctx, view: view)
            }
        }
    }

    var service: ResourceService { services.library.resources }

    func etag(_ version: Int) -> String { ETag.version(version) }

    /// The `n` of the path, nil when it is not a number.
    func versionParameter(_ ctx: ZykContext) -> Int? { ctx.parameters.get("n").flatMap { Int($0) } }

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
        let edit = try service.beginEdit(
            id: try ctx.parameters.require("id"), by: try ctx.requireUser(), expected: { try expectedVersion(req) }, refuseStale: true)
        let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
        let view = try service.updateMetadata(edit, patch: body)
        return try ResourceDTO(view: view, privileged: true).response(headers: [.eTag: etag(view.version.number)])
    }

    func addFiles(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let edit = try service.beginEdit(
            id: try ctx.parameters.require("id"), by: try ctx.requireUser(), expected: { try expectedVersion(req) }, refuseStale: false)
        guard BodyReader.mediaType(req) == "multipart/form-data" else {
            throw DomainError(.unsupportedMediaType, "Send files as multipart/form-data: file parts and an optional 'changes' JSON part.")
        }
        let uploader = Uploader(services: services)
        var changes = ResourceService.FileChanges()
        let received = try await uploader.receiveMultipart(req, jsonParts: ["changes"]) { _, object in
            changes = try ResourceService.fileChanges(from: object)
        }
        do {
            try service.checkFileChanges(edit, received: received.map { ($0.name, $0.writer.count, $0.writer.head) }, changes: changes)
        } catch {
            for f in received { f.writer.abort() }
            throw error
        }
        let blobs = try await uploader.commit(received)
        let view = try service.saveFileChanges(edit, stored: blobs, changes: changes)
        return try ResourceDTO(view: view, privileged: true).response(headers: [.eTag: etag(view.version.number)])
    }

    // MARK: list

    func list(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        var q = QueryReader(
            req,
            allowed: ["q", "sort", "facets", "major", "type", "level", "organization", "status", "visibility", "owner", "updatedSince", "page", "pageSize"])
        var r = SearchService.Request()
        r.text = q.params["q"]
        r.sort = q.enumValue("sort")
        if let f = q.params["facets"] {
            switch f {
            case "true", "1": r.facets = true
            case "false", "0": r.facets = false
            default: q.errors.append(.init(field: "facets", message: "must be true or false"))
            }
        }
        r.major = q.string("major", maxLength: 7)
        r.filters.resourceType = q.enumValue("type")
        r.filters.educationLevel = q.enumValue("level")
        r.filters.organizationId = q.uuid("organization")
        r.filters.status = q.enumValue("status")
        r.filters.visibility = q.enumValue("visibility")
        r.owner = q.string("owner", maxLength: 36)
        r.updatedSince = q.string("updatedSince", maxLength: 40)
        r.filters.page = q.int("page", default: 1, range: 1...10_000)
        r.filters.pageSize = q.int("pageSize", default: 20, range: 1...100)
        let answer = try await services.library.search.search(r, by: ctx.principal, decodingErrors: q.errors)
        return try ResourcePage(
            items: answer.result.hits.map {
                ResourceDTO(
                    view: $0.view, privileged: Access.isPrivileged(ctx.principal, $0.view.state), titleHighlight: $0.titleHighlight,
                    descriptionSnippet: $0.descriptionSnippet)
            },
            total: answer.result.total, totalExact: answer.result.totalExact, page: answer.page, pageSize: answer.pageSize, sort: answer.sort.rawValue,
            query: answer.query?.terms, facets: answer.result.facets
        ).response()
    }
}
