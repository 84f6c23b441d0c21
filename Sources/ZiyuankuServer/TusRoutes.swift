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

/// The in-memory side of resumable uploads: which uploads a PATCH is writing right now (a second
/// one answers 423), and the running SHA-256 of each upload's accepted bytes (rebuilt from the
/// file after a restart, so the whole file is never read twice in one process).
final class TusState: Sendable {
    /// A value (the hash state is copied in and out under the lock).
    struct Running: @unchecked Sendable {
        var offset: Int64
        var hasher: SHA256
    }
    private let locked = Mutex<Set<String>>([])
    private let hashers = Mutex<[String: Running]>([:])

    func lock(_ id: String) -> Bool { locked.withLock { $0.insert(id).inserted } }
    func unlock(_ id: String) { _ = locked.withLock { $0.remove(id) } }
    func hasher(_ id: String, at offset: Int64) -> SHA256? { hashers.withLock { $0[id].flatMap { $0.offset == offset ? $0.hasher : nil } } }
    func store(_ id: String, _ r: Running?) { hashers.withLock { $0[id] = r } }
}

/// tus 1.0.0 at `/v1/uploads` (https://tus.io/protocols/resumable-upload): core, creation,
/// creation-with-upload, expiration, checksum (sha1, sha256) and termination. Every request is
/// authenticated; an upload belongs to the user who created it (others get 404). The offset only
/// advances over bytes already fsynced; a finished upload becomes a blob (its SHA-256 computed
/// while the bytes arrived) that its uploader can attach to a resource by digest.
struct TusRoutes {
    let services: AppServices
    static let version = "1.0.0"
    static let expiry: TimeInterval = 24 * 3600
    static let offsetType = "application/offset+octet-stream"

    var catalog: Catalog { services.catalog }
    var state: TusState { services.tus }

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
                return try await receive(req, upload: upload, offset: offset, status: .noContent)
            }
        }
        r.on(.delete, "/v1/uploads/:id") { req, ctx in
            try await tus {
                let upload = try owned(req, ctx)
                guard state.lock(upload.id) else { throw DomainError(.locked, "A request is still writing to this upload.") }
                defer { state.unlock(upload.id) }
                services.blobs.discardResumable(upload.id)
                state.store(upload.id, nil)
                try catalog.deleteTusUpload(id: upload.id)
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

    /// The upload in the path, if the caller created it; 404 otherwise, 410 once expired.
    func owned(_ req: Request, _ ctx: ZykContext, requireTus: Bool = true) throws -> TusUpload {
        let p = try ctx.requireUser()
        if requireTus { try checkVersion(req) }
        let id = try ctx.parameters.require("id")
        guard Identifiers.isUUID(id), let upload = try catalog.tusUpload(id: id), upload.userId == p.userId else { throw DomainError.notFound("upload") }
        if upload.isExpired && upload.sha256 == nil { throw DomainError(.gone, "This upload expired; start a new one.") }
        return upload
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
        if length > services.config.maxUploadBytes {
            throw DomainError(
                .payloadTooLarge, "Uploads are limited to \(services.config.maxUploadBytes) bytes; this one declares \(length).",
                extra: ["limit": .number(Double(services.config.maxUploadBytes))])
        }
        let metadata = req.headers[.uploadMetadata] ?? ""
        let filename = try TusHeaders.filename(fromMetadata: metadata)
        let upload = try catalog.createTusUpload(
            userId: p.userId, length: length, metadata: metadata, filename: filename, expiresIn: Self.expiry,
            maxOpen: services.config.maxOpenUploadsPerUser, maxOpenBytes: services.config.maxOpenUploadBytesPerUser)
        try services.blobs.createResumable(upload.id)
        var response: Response
        if BodyReader.mediaType(req) == Self.offsetType {
            response = try await receive(req, upload: upload, offset: 0, status: .created)
        } else {
            response = Response(status: .created, headers: commonHeaders())
            response.headers[.uploadOffset] = "0"
            if length == 0 { response.headers[.uploadSHA256] = try await finish(upload, hasher: SHA256()) }
        }
        response.headers[.location] = "/v1/uploads/\(upload.id)"
        response.headers[.uploadExpires] = HTTPDate.format(Date().addingTimeInterval(Self.expiry))
        return response
    }

    /// Appends the body at `offset`: streamed to the file, checksummed when `Upload-Checksum`
    /// is sent (a mismatch discards the chunk: 460), fsynced, then recorded. Without a checksum,
    /// bytes of a body cut short are kept (fsynced and recorded) so the client resumes after them.
    func receive(_ req: Request, upload: TusUpload, offset: Int64, status: HTTPResponse.Status) async throws -> Response {
        guard upload.sha256 == nil else {
            throw DomainError(.conflict, "This upload is already complete.", extra: ["offset": .number(Double(upload.received))])
        }
        guard offset == upload.received else {
            throw DomainError(
                .conflict, "Upload-Offset \(offset) does not match the bytes received so far (\(upload.received)).",
                extra: ["offset": .number(Double(upload.received))])
        }
        let checksum = try req.headers[.uploadChecksum].map { header throws(DomainError) in try TusHeaders.checksum(header) }
        guard state.lock(upload.id) else { throw DomainError(.locked, "Another request is writing to this upload; retry after it ends.") }
        defer { state.unlock(upload.id) }
        // Re-read under the lock: another request may have finished just before. Extending the
        // expiry now keeps gc from taking the upload while this PATCH writes.
        guard let current = try catalog.tusUpload(id: upload.id), current.received == offset, current.sha256 == nil,
            try catalog.advanceTusUpload(id: upload.id, from: offset, to: offset, expiresIn: Self.expiry)
        else {
            throw DomainError(.conflict, "The upload moved on meanwhile; ask HEAD for the offset.")
        }
        guard let file = services.blobs.openResumable(upload.id) else {
            throw DomainError(.gone, "The upload's bytes are gone (expired or cleaned up); start a new one.")
        }
        var hasher = try state.hasher(upload.id, at: offset) ?? rebuildHasher(upload.id, upTo: offset)
        var sha1 = Insecure.SHA1()
        var sha256 = SHA256()
        var written: Int64 = 0
        var cutShort: Error?
        do {
            for try await chunk in req.body {
                guard offset + written + Int64(chunk.readableBytes) <= upload.length else {
                    throw DomainError(.payloadTooLarge, "The bytes sent go past Upload-Length (\(upload.length)).")
                }
                try chunk.withUnsafeReadableBytes { bytes in
                    try file.write(bytes, at: offset + written)
                    hasher.update(bufferPointer: bytes)
                    if checksum?.algorithm == "sha1" { sha1.update(bufferPointer: bytes) } else if checksum != nil { sha256.update(bufferPointer: bytes) }
                }
                written += Int64(chunk.readableBytes)
            }
        } catch let e as DomainError {
            file.truncate(to: offset)
            throw e
        } catch {
            cutShort = error  // the client went away: keep what arrived, unless it was checksummed
        }
        if let checksum, cutShort == nil {
            let actual = checksum.algorithm == "sha1" ? Array(sha1.finalize()) : Array(sha256.finalize())
            if actual != checksum.digest {
                file.truncate(to: offset)
                throw DomainError(.checksumMismatch, "The chunk's \(checksum.algorithm) does not match Upload-Checksum; it was discarded. Send it again.")
            }
        }
        if cutShort != nil && checksum != nil {
            file.truncate(to: offset)
            throw cutShort!
        }
        try await NIOThreadPool.singleton.runIfActive { try file.sync() }
        let newOffset = offset + written
        guard try catalog.advanceTusUpload(id: upload.id, from: offset, to: newOffset, expiresIn: Self.expiry) else {
            throw DomainError(.conflict, "The upload moved on meanwhile; ask HEAD for the offset.")
        }
        state.store(upload.id, TusState.Running(offset: newOffset, hasher: hasher))
        if let cutShort { throw cutShort }
        var h = commonHeaders()
        h[.uploadOffset] = String(newOffset)
        h[.uploadExpires] = HTTPDate.format(Date().addingTimeInterval(Self.expiry))
        if newOffset == upload.length {
            let sha = try await finish(upload, hasher: hasher)
            h[.uploadSHA256] = sha
        }
        return Response(status: status, headers: h)
    }

    /// An upload with all its bytes but no digest (its completion failed, e.g. the database was
    /// busy) is completed when its owner next asks about it.
    func completeIfDue(_ upload: TusUpload) async throws -> TusUpload {
        guard upload.sha256 == nil, upload.received == upload.length, state.lock(upload.id) else { return upload }
        defer { state.unlock(upload.id) }
        guard let current = try catalog.tusUpload(id: upload.id), current.sha256 == nil, current.received == current.length else { return upload }
        let hasher = try state.hasher(upload.id, at: current.received) ?? rebuildHasher(upload.id, upTo: current.received)
        try await finish(current, hasher: hasher)
        return try catalog.tusUpload(id: upload.id) ?? upload
    }

    /// After a restart the running digest is rebuilt once from the bytes already received.
    func rebuildHasher(_ id: String, upTo offset: Int64) throws -> SHA256 {
        guard offset > 0 else { return SHA256() }
        guard let d = try services.blobs.digestResumable(id, upTo: offset) else { throw DomainError(.gone, "The upload's bytes are gone; start a new one.") }
        guard d.bytes == offset else { throw DomainError(.internal, "Cannot read the upload back: \(d.bytes) of \(offset) bytes are there.") }
        return d.hasher
    }

    /// Records the finished upload as a blob, then moves its file into the blob store under its
    /// digest. Recording first means a crash in between leaves a row that says where the bytes
    /// belong; `recoverInterruptedUploads` at the next start moves them (or finishes an upload
    /// whose last bytes were recorded but whose digest was not).
    @discardableResult
    func finish(_ upload: TusUpload, hasher: SHA256) async throws -> String {
        let sha = Array(hasher.finalize()).hexString
        let blobs = services.blobs
        let head = try await NIOThreadPool.singleton.runIfActive { blobs.resumableHead(upload.id) }
        try catalog.completeTusUpload(id: upload.id, blob: BlobInfo(sha256: sha, size: upload.length, head: head), userId: upload.userId)
        try await NIOThreadPool.singleton.runIfActive { try blobs.commitResumable(upload.id, as: sha) }
        state.store(upload.id, nil)
        services.metrics.uploadBytes.increment(by: upload.length)
        services.metrics.uploadsCompleted.increment()
        return sha
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var out = self
        for f in other { out[f.name] = f.value }
        return out
    }
}
