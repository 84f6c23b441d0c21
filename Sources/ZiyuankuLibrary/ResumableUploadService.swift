import Crypto
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import ZiyuankuCore
import ZiyuankuStore

/// Resumable uploads (the rules behind tus at `/v1/uploads`, whatever protocol carries them):
/// an upload belongs to the user who created it, is limited by the per-user quotas, expires a
/// day after its last bytes, only advances its offset over bytes already fsynced, and when
/// complete becomes a blob (its SHA-256 computed while the bytes arrived) its uploader may attach
/// to a resource by digest.
///
/// One instance per process: it keeps which uploads a request is writing right now (a second
/// writer is refused) and the running SHA-256 of each upload's accepted bytes (rebuilt from the
/// file after a restart, so the whole file is never read twice in one process).
public final class ResumableUploadService: Sendable {
    public static let expiry: TimeInterval = 24 * 3600

    let catalog: any ResumableUploadRepository
    let blobs: FileBlobStore
    let limits: Limits
    private let writing = Mutex<Set<String>>([])
    private let hashers = Mutex<[String: Running]>([:])

    struct Limits: Sendable {
        var maxBytes: Int64
        var maxOpen: Int
        var maxOpenBytes: Int64
    }

    /// A value (the hash state is copied in and out under the lock).
    struct Running: @unchecked Sendable {
        var offset: Int64
        var hasher: SHA256
    }

    public init(library: Library) {
        catalog = library.catalog
        blobs = library.blobs
        limits = Limits(
            maxBytes: library.config.maxUploadBytes, maxOpen: library.config.maxOpenUploadsPerUser,
            maxOpenBytes: library.config.maxOpenUploadBytesPerUser)
    }

    /// What a finished write reports: the new offset, and the digest once the upload is complete.
    public struct Progress: Sendable {
        public var offset: Int64
        public var sha256: String?
        /// Bytes this call completed as a blob (0 unless it finished the upload).
        public var completedBytes: Int64
    }

    /// Starts an upload of `length` bytes for `p`; `metadata` is the client's raw
    /// `Upload-Metadata` (kept as sent, the filename read from it).
    public func create(by p: Principal, length: Int64, metadata: String) throws -> TusUpload {
        _ = try p.requireAuthor()
        if length > limits.maxBytes {
            throw DomainError(
                .payloadTooLarge, "Uploads are limited to \(limits.maxBytes) bytes; this one declares \(length).",
                extra: ["limit": .number(Double(limits.maxBytes))])
        }
        let filename = try TusHeaders.filename(fromMetadata: metadata)
        let upload = try catalog.createTusUpload(
            userId: p.userId, length: length, metadata: metadata, filename: filename, expiresIn: Self.expiry, maxOpen: limits.maxOpen,
            maxOpenBytes: limits.maxOpenBytes)
        do {
            try blobs.createResumable(upload.id)
        } catch {
            try? catalog.deleteTusUpload(id: upload.id)
            throw error
        }
        return upload
    }

    /// The upload `id` if `p` created it; `notFound` otherwise (others do not learn it exists),
    /// `gone` once it expired unfinished.
    public func owned(id: String, by p: Principal) throws -> TusUpload {
        guard Identifiers.isUUID(id), let upload = try catalog.tusUpload(id: id), upload.userId == p.userId else {
            throw DomainError.notFound("upload")
        }
        if upload.isExpired && upload.sha256 == nil { throw DomainError(.gone, "This upload expired; start a new one.") }
        return upload
    }

    /// Appends `body` at `offset`: streamed to the file, checked against `checksum` when one is
    /// given (a mismatch discards the chunk), fsynced, then recorded. Without a checksum, bytes
    /// of a body cut short are kept (fsynced and recorded) so the client resumes after them, and
    /// the body's error is rethrown. A write that completes the upload finishes it.
    public func append<Body: AsyncSequence>(
        to upload: TusUpload, at offset: Int64, checksum: TusHeaders.Checksum?, body: Body
    ) async throws -> Progress where Body.Element == ByteBuffer {
        guard upload.sha256 == nil else {
            throw DomainError(.conflict, "This upload is already complete.", extra: ["offset": .number(Double(upload.received))])
        }
        guard offset == upload.received else {
            throw DomainError(
                .conflict, "Upload-Offset \(offset) does not match the bytes received so far (\(upload.received)).",
                extra: ["offset": .number(Double(upload.received))])
        }
        guard lock(upload.id) else { throw DomainError(.locked, "Another request is writing to this upload; retry after it ends.") }
        defer { unlock(upload.id) }
        // Re-read under the lock: another request may have finished just before. Extending the
        // expiry now keeps gc from taking the upload while this request writes.
        guard let current = try catalog.tusUpload(id: upload.id), current.received == offset, current.sha256 == nil,
            try catalog.advanceTusUpload(id: upload.id, from: offset, to: offset, expiresIn: Self.expiry)
        else {
            throw DomainError(.conflict, "The upload moved on meanwhile; ask HEAD for the offset.")
        }
        guard let file = blobs.openResumable(upload.id) else {
            throw DomainError(.gone, "The upload's bytes are gone (expired or cleaned up); start a new one.")
        }
        var hasher = try hasher(upload.id, at: offset) ?? rebuildHasher(upload.id, upTo: offset)
        var sha1 = Insecure.SHA1()
        var sha256 = SHA256()
        var written: Int64 = 0
        var cutShort: (any Error)?
        do {
            for try await chunk in body {
                guard chunk.readableBytes <= upload.length - offset - written else {
                    throw DomainError(.payloadTooLarge, "The bytes sent go past Upload-Length (\(upload.length)).")
                }
                try chunk.withUnsafeReadableBytes { bytes in
                    try file.write(bytes, at: offset + written)
                    hasher.update(bufferPointer: bytes)
                    switch checksum?.algorithm {
                    case "sha1": sha1.update(bufferPointer: bytes)
                    case .some: sha256.update(bufferPointer: bytes)
                    case nil: break
                    }
                }
                written += Int64(chunk.readableBytes)
            }
        } catch let e as DomainError {
            file.truncate(to: offset)
            throw e
        } catch {
            cutShort = error  // the client went away: keep what arrived, unless it was checksummed
        }
        if let checksum {
            if let cutShort {
                file.truncate(to: offset)
                throw cutShort
            }
            let actual = checksum.algorithm == "sha1" ? Array(sha1.finalize()) : Array(sha256.finalize())
            if actual != checksum.digest {
                file.truncate(to: offset)
                throw DomainError(.checksumMismatch, "The chunk's \(checksum.algorithm) does not match Upload-Checksum; it was discarded. Send it again.")
            }
        }
        try await NIOThreadPool.singleton.runIfActive { try file.sync() }
        let newOffset = offset + written
        guard try catalog.advanceTusUpload(id: upload.id, from: offset, to: newOffset, expiresIn: Self.expiry) else {
            throw DomainError(.conflict, "The upload moved on meanwhile; ask HEAD for the offset.")
        }
        store(upload.id, Running(offset: newOffset, hasher: hasher))
        if let cutShort { throw cutShort }
        guard newOffset == upload.length else { return Progress(offset: newOffset, sha256: nil, completedBytes: 0) }
        return Progress(offset: newOffset, sha256: try await finish(upload, hasher: hasher), completedBytes: upload.length)
    }

    /// Finishes an upload of zero bytes at once (there is no write to finish it).
    public func finishEmpty(_ upload: TusUpload) async throws -> String? {
        guard upload.length == 0, upload.sha256 == nil else { return upload.sha256 }
        return try await finish(upload, hasher: SHA256())
    }

    /// An upload with all its bytes but no digest (its completion failed, e.g. the database was
    /// busy) is completed when its owner next asks about it. Returns the upload as it now is,
    /// and whether this call completed it.
    public func completeIfDue(_ upload: TusUpload) async throws -> (upload: TusUpload, completed: Bool) {
        guard upload.sha256 == nil, upload.received == upload.length, lock(upload.id) else { return (upload, false) }
        defer { unlock(upload.id) }
        guard let current = try catalog.tusUpload(id: upload.id), current.sha256 == nil, current.received == current.length else {
            return (upload, false)
        }
        let hasher = try hasher(upload.id, at: current.received) ?? rebuildHasher(upload.id, upTo: current.received)
        try await finish(current, hasher: hasher)
        return (try catalog.tusUpload(id: upload.id) ?? upload, true)
    }

    /// Removes an upload and its bytes (refused while a request writes to it).
    public func discard(_ upload: TusUpload) throws {
        guard lock(upload.id) else { throw DomainError(.locked, "A request is still writing to this upload.") }
        defer { unlock(upload.id) }
        blobs.discardResumable(upload.id)
        store(upload.id, nil)
        try catalog.deleteTusUpload(id: upload.id)
    }

    // MARK: the steps

    /// Records the finished upload as a blob, then moves its file into the blob store under its
    /// digest. Recording first means a crash in between leaves a row that says where the bytes
    /// belong; `Library.recoverInterruptedUploads` at the next start moves them (or finishes an
    /// upload whose last bytes were recorded but whose digest was not).
    @discardableResult
    func finish(_ upload: TusUpload, hasher: SHA256) async throws -> String {
        let sha = Array(hasher.finalize()).hexString
        let blobs = self.blobs
        let head = try await NIOThreadPool.singleton.runIfActive { blobs.resumableHead(upload.id) }
        try catalog.completeTusUpload(id: upload.id, blob: BlobInfo(sha256: sha, size: upload.length, head: head), userId: upload.userId)
        try await NIOThreadPool.singleton.runIfActive { try blobs.commitResumable(upload.id, as: sha) }
        store(upload.id, nil)
        return sha
    }

    /// After a restart the running digest is rebuilt once from the bytes already received.
    func rebuildHasher(_ id: String, upTo offset: Int64) throws -> SHA256 {
        guard offset > 0 else { return SHA256() }
        guard let d = try blobs.digestResumable(id, upTo: offset) else { throw DomainError(.gone, "The upload's bytes are gone; start a new one.") }
        guard d.bytes == offset else { throw DomainError(.internal, "Cannot read the upload back: \(d.bytes) of \(offset) bytes are there.") }
        return d.hasher
    }

    func lock(_ id: String) -> Bool { writing.withLock { $0.insert(id).inserted } }
    func unlock(_ id: String) { _ = writing.withLock { $0.remove(id) } }
    func hasher(_ id: String, at offset: Int64) -> SHA256? { hashers.withLock { $0[id].flatMap { $0.offset == offset ? $0.hasher : nil } } }
    func store(_ id: String, _ r: Running?) { hashers.withLock { $0[id] = r } }
}
