import Foundation
import Logging
import ZiyuankuCore
import ZiyuankuStore

#if canImport(Glibc)
    import Glibc
#endif

/// The library itself, whatever surface reaches it (the HTTP API, the CLI, later web pages and
/// OAI-PMH): its configuration, catalog and blob store, and the use cases that hold the rules.
/// Surfaces decode a request, call one use case, and encode its answer.
public struct Library: Sendable {
    public let config: ServerConfig
    public let root: DataRoot
    public let catalog: Catalog
    public let blobs: FileBlobStore

    public init(config: ServerConfig, catalog: Catalog) {
        self.config = config
        self.root = DataRoot(path: config.dataRoot)
        self.catalog = catalog
        self.blobs = FileBlobStore(root: root)
    }

    /// Creating, reading and changing resources and their files.
    public var resources: ResourceService { ResourceService(catalog: catalog, blobs: blobs, allowAnonymous: config.allowAnonymous) }

    /// Opens (and migrates) the data root, tidies what an interrupted process left (temporary
    /// files, runs marked running, resumable uploads cut off at their last step) and creates the
    /// first admin when the root is new (its token goes to `admin-token`, readable by this user).
    public static func open(config: ServerConfig, logger: Logger) throws -> Library {
        let root = DataRoot(path: config.dataRoot)
        let catalog = try Catalog.open(root: root)
        SearchText.prepare()
        let library = Library(config: config, catalog: catalog)
        let removed = library.blobs.removeStaleTemporaryFiles()
        if removed > 0 { logger.notice("removed \(removed) temporary upload file(s) left by an interrupted process") }
        library.blobs.removeStaleScratchFolders("import")
        // A run still marked running was cut short (a CLI run that is in fact still going records
        // its real outcome when it ends).
        try catalog.markInterruptedRuns()
        try catalog.markInterruptedImports()
        let repaired = try library.recoverInterruptedUploads()
        if repaired > 0 { logger.notice("finished \(repaired) resumable upload(s) a stop had interrupted at their last step") }
        if let token = try catalog.bootstrapAdminIfNeeded() {
            try writeSecretFile(path: root.adminTokenPath, contents: token.secret + "\n")
            logger.notice("created the first admin user; its token is in \(root.adminTokenPath) (readable by this user only)")
        }
        return library
    }

    /// Whether the library can take writes now: the catalog commits and the blob store accepts
    /// a file (what a readiness probe asks). Each check that fails says why.
    public func readiness() -> (ok: Bool, checks: [String: String]) {
        var checks: [String: String] = [:]
        var ok = true
        do {
            try catalog.checkWritable()
            checks["database"] = "ok"
        } catch {
            ok = false
            checks["database"] = "not writable: \(error)"
        }
        do {
            try blobs.checkWritable()
            checks["storage"] = "ok"
        } catch {
            ok = false
            checks["storage"] = "not writable: \(error.message)"
        }
        return (ok, checks)
    }

    /// Finishes resumable uploads a crash left between their last chunk and their blob: a
    /// recorded digest whose file is still in temporary space is moved into place; all bytes
    /// received but no digest yet: the file is hashed once and recorded. Returns how many.
    public func recoverInterruptedUploads() throws -> Int {
        var repaired = 0
        for upload in try catalog.unfinishedTusCompletions() {
            guard blobs.hasResumable(upload.id) else { continue }
            if let sha = upload.sha256 {
                try blobs.commitResumable(upload.id, as: sha)
                repaired += 1
                continue
            }
            guard let d = try? blobs.digestResumable(upload.id, upTo: upload.length), d.bytes == upload.length else { continue }
            let sha = Array(d.hasher.finalize()).hexString
            try catalog.completeTusUpload(id: upload.id, blob: BlobInfo(sha256: sha, size: upload.length, head: d.head), userId: upload.userId)
            try blobs.commitResumable(upload.id, as: sha)
            repaired += 1
        }
        return repaired
    }
}

/// Writes a file readable by its owner only (0600), atomically.
public func writeSecretFile(path: String, contents: String) throws {
    let tmp = path + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw DomainError(.internal, "cannot create \(path): errno \(errno)") }
    let bytes = Array(contents.utf8)
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    fchmod(fd, 0o600)
    fsync(fd)
    close(fd)
    guard n == bytes.count, rename(tmp, path) == 0 else {
        unlink(tmp)
        throw DomainError(.internal, "cannot write \(path)")
    }
}
