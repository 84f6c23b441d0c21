import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// Bytes coming in: what an upload may be, instant upload (秒传) of bytes the library already
/// holds, and recording who sent which bytes.
public struct UploadService: Sendable {
    let catalog: any ResourceRepository
    let blobs: FileBlobStore
    let maxUploadBytes: Int64
    let allowAnonymous: Bool

    /// Whether `{sha256, size}` names bytes the caller may attach without sending them: bytes
    /// the caller may already read. Unknown bytes and bytes only others may read get the same
    /// answer (false), so nobody learns what others stored.
    public func lookup(by p: Principal, _ object: [String: JSONValue]) throws -> (sha256: String, size: Int64, available: Bool) {
        _ = try p.requireAuthor()
        var f = FieldReader(object: object)
        var errors = FieldReader.unknownFields(in: object, allowed: ["sha256", "size"])
        let sha = f.text("sha256", required: true, max: 64)?.lowercased()
        let size = f.integer("size", required: true, range: 0...Int(clamping: maxUploadBytes))
        errors += f.errors
        if let sha, !Identifiers.isSHA256Hex(sha) { errors.append(.init(field: "sha256", message: "must be 64 hex digits")) }
        guard errors.isEmpty, let sha, let size else { throw DomainError.validation(errors) }
        let available = try catalog.claimBlob(sha256: sha, size: Int64(size), by: p, allowAnonymous: allowAnonymous)
        return (sha, Int64(size), available)
    }

    /// A writer for one file's bytes, limited to the largest upload allowed.
    public func writer() throws -> BlobWriter { try blobs.makeWriter(maxSize: maxUploadBytes) }

    /// Records that `p` sent these bytes (so a resource may name them by digest).
    public func recordUpload(_ blob: BlobInfo, by p: Principal) throws {
        try catalog.recordBlobUpload(blob, userId: p.userId)
    }
}

extension Library {
    public var uploads: UploadService {
        UploadService(catalog: catalog, blobs: blobs, maxUploadBytes: config.maxUploadBytes, allowAnonymous: config.allowAnonymous)
    }
}
