import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

extension HTTPField.Name {
    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let tusVersion = HTTPField.Name("Tus-Version")!
    static let tusExtension = HTTPField.Name("Tus-Extension")!
    static let tusMaxSize = HTTPField.Name("Tus-Max-Size")!
    static let tusChecksumAlgorithm = HTTPField.Name("Tus-Checksum-Algorithm")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!
    static let uploadChecksum = HTTPField.Name("Upload-Checksum")!
    static let uploadDeferLength = HTTPField.Name("Upload-Defer-Length")!
    static let uploadSHA256 = HTTPField.Name("Upload-Sha256")!
}

/// tus 1.0.0 at `/v1/uploads` (https://tus.io/protocols/resumable-upload): core, creation,
/// creation-with-upload, expiration, checksum (sha1, sha256) and termination. Every request is
/// authenticated; an upload belongs to the user who created it (others get 404). The offset only
/// advances over bytes already fsynced; a finished upload becomes a blob (its SHA-256 computed
/// while the bytes arrived) that its uploader can attach to a resource by digest.
struct TusRoutes {
    let services: AppServices
    static let version = "1.0.0"
    static let offsetType = "application/offset+octet-stream"

    var uploads: ResumableUploadService { services.resumable }

    func register(_ r: Routes) {
        r.on(.options, "/v1/uploads") { _, _ in
            Response(
                status: .noContent,
                headers: commonHeaders().merging([
                    .tusVersion: Self.version, .tusExtension: "creation,creation-with-upload,expiration,checksum,termination",
                    .tusMaxSize: String(services.config.maxUploadBytes), .tusChecksumAlgorithm: "sha1,sha256",
                ]))
        }
        r.on(.post, "/v1/uploads") { req, ctx in try await tus { try await create(req, ctx) } }
        r.on(.head, "/v1/uploads/:id") { req, ctx in
            try await tus {
                let upload = try await completeIfDue(try owned(req, ctx))
                var h = commonHeaders()
                h[.uploadOffset] = String(upload.received)
                h[.uploadLength] = String(upload.length)
                h[.cacheControl] = "no-store"
                h[.uploadExpires] = HTTPDate.format(Timestamp.parse(upload.expiresAt) ?? Date())
                if !upload.metadata.isEmpty { h[.uploadMetadata] = upload.metadata }
                if let sha = upload.sha256 { h[.uploadSHA256] = sha }
                return Response(status: .ok, headers: h)
            }
        }
        r.on(.get, "/v1/uploads/:id") { req, ctx in
            let upload = try await completeIfDue(try owned(req, ctx, requireTus: false))
            var body: [String: JSONValue] = [
                "id": .string(upload.id), "length": .number(Double(upload.length)), "offset": .number(Double(upload.received)),
                "expiresAt": .string(upload.expiresAt), "complete": .bool(upload.sha256 != nil),
            ]
            if let f = upload.filename { body["filename"] = .string(f) }
            if let sha = upload.sha256 { body["sha256"] = .string(sha) }
            return try JSONResponse.make(body, headers: [.cacheControl: "no-store"])
        }
        r.on(.patch, "/v1/uploads/:id") { req, ctx in
            try await tus {
                let upload = try owned(req, ctx)
                guard BodyReader.mediaType(req) == Self.offsetType else {
                    throw DomainError(.unsupportedMediaType, "PATCH takes the bytes as \(Self.offsetType).")
                }
                guard let raw = req.headers[.uploadOffset], let offset = TusHeaders.byteCount(raw) else {
                    throw DomainError(.badRequest, "Upload-Offset must be the number of bytes already received.")
                }
                return try await append(req, upload: upload, offset: offset, status: .noContent)
            }
        }
        r.on(.delete, "/v1/uploads/:id") { req, ctx in
            try await tus {
                try uploads.discard(try owned(req, ctx))
                return Response(status: .noContent, headers: commonHeaders())
            }
        }
    }

    func commonHeaders() -> HTTPFields { [.tusResumable: Self.version] }

    /// tus answers carry Tus-Resumable, problem documents included.
    func tus(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch let e as HTTPProblem {
            throw e.adding("Tus-Resumable", Self.version)
        } catch let e as DomainError {
            throw e.with(headers: [("Tus-Resumable", Self.version)])
        }
    }

    func checkVersion(_ req: Request) throws {
        guard req.headers[.tusResumable] == Self.version else {
            throw DomainError(.preconditionFailed, "Send Tus-Resumable: \(Self.version) (the tus protocol version this server speaks).")
                .with(headers: [("Tus-Version", Self.version)])
        }
    }

    /// The upload in the path, if the caller created it.
    func owned(_ req: Request, _ ctx: ZykContext, requireTus: Bool = true) throws -> TusUpload {
        let p = try ctx.requireUser()
        if requireTus { try checkVersion(req) }
        return try uploads.owned(id: try ctx.parameters.require("id"), by: p)
    }

    func create(_ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireAuthor()
        try checkVersion(req)
        if req.headers[.uploadDeferLength] != nil {
            throw DomainError(.badRequest, "Upload-Defer-Length is not supported: send Upload-Length.")
        }
        guard let raw = req.headers[.uploadLength], let length = TusHeaders.byteCount(raw) else {
            throw DomainError(.badRequest, "Upload-Length must be the file's size in bytes.")
        }
        let upload = try uploads.create(by: p, length: length, metadata: req.headers[.uploadMetadata] ?? "")
        var response: Response
        if BodyReader.mediaType(req) == Self.offsetType {
            response = try await append(req, upload: upload, offset: 0, status: .created)
        } else {
            response = Response(status: .created, headers: commonHeaders())
            response.headers[.uploadOffset] = "0"
            if let sha = try await uploads.finishEmpty(upload) {
                response.headers[.uploadSHA256] = sha
                countCompleted(upload.length)
            }
        }
        response.headers[.location] = "/v1/uploads/\(upload.id)"
        response.headers[.uploadExpires] = HTTPDate.format(Date().addingTimeInterval(ResumableUploadService.expiry))
        return response
    }

    /// Appends the request body at `offset` (see `ResumableUploadService.append`).
    func append(_ req: Request, upload: TusUpload, offset: Int64, status: HTTPResponse.Status) async throws -> Response {
        let checksum = try req.headers[.uploadChecksum].map { header throws(DomainError) in try TusHeaders.checksum(header) }
        let progress = try await uploads.append(to: upload, at: offset, checksum: checksum, body: req.body)
        var h = commonHeaders()
        h[.uploadOffset] = String(progress.offset)
        h[.uploadExpires] = HTTPDate.format(Date().addingTimeInterval(ResumableUploadService.expiry))
        if let sha = progress.sha256 {
            h[.uploadSHA256] = sha
            countCompleted(progress.completedBytes)
        }
        return Response(status: status, headers: h)
    }

    func completeIfDue(_ upload: TusUpload) async throws -> TusUpload {
        let (now, completed) = try await uploads.completeIfDue(upload)
        if completed { countCompleted(now.length) }
        return now
    }

    func countCompleted(_ bytes: Int64) {
        services.metrics.uploadBytes.increment(by: bytes)
        services.metrics.uploadsCompleted.increment()
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var out = self
        for f in other { out[f.name] = f.value }
        return out
    }
}
