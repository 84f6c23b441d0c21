import CSystemShim
import Crypto
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import ZiyuankuCore

#if canImport(Glibc)
    import Glibc
#endif

/// A stored blob: bytes named by their SHA-256.
public struct BlobInfo: Sendable, Equatable {
    public var sha256: String
    public var size: Int64
    /// The first bytes, for media-type sniffing.
    public var head: [UInt8]

    public init(sha256: String, size: Int64, head: [UInt8]) {
        self.sha256 = sha256
        self.size = size
        self.head = head
    }
}

/// Where blob bytes live. The embedded default is a folder on disk; an S3-compatible store is a
/// second conformance later, so callers never build paths themselves.
public protocol BlobStore: Sendable {
    /// Starts receiving a new upload into temporary space.
    func makeWriter(maxSize: Int64) throws -> BlobWriter
    /// A local path from which the blob can be streamed, or nil when it is absent.
    func localPath(of sha256: String) -> String?
    /// The first `count` bytes of a stored blob.
    func head(of sha256: String, count: Int) throws -> [UInt8]
}

/// Content-addressed blobs under `blobs/ab/cd/<sha256>`, received through `tmp/`.
public struct FileBlobStore: BlobStore {
    public let root: DataRoot

    public init(root: DataRoot) { self.root = root }

    /// `ab/cd/<sha256>` under `blobs/`.
    func relativePath(_ sha256: String) -> String {
        let u = Array(sha256.utf8)
        return "\(String(decoding: u[0..<2], as: UTF8.self))/\(String(decoding: u[2..<4], as: UTF8.self))/\(sha256)"
    }

    /// Where a blob's file is (or would be). For tests and tools that inspect the layout; the
    /// product goes through the methods below.
    public func path(of sha256: String) -> String { root.blobsPath + "/" + relativePath(sha256) }

    /// Where gc keeps a blob it took out of use, until the trash is purged.
    public func trashedPath(of sha256: String) -> String { root.trashPath + "/" + sha256 }

    public func localPath(of sha256: String) -> String? {
        guard Identifiers.isSHA256Hex(sha256) else { return nil }
        let p = path(of: sha256)
        return access(p, F_OK) == 0 ? p : nil
    }

    public func head(of sha256: String, count: Int) throws -> [UInt8] {
        guard let p = localPath(of: sha256) else { throw DomainError(.internal, "blob \(sha256) is missing from the store") }
        guard let head = BlobFiles.head(path: p, count: count) else { throw DomainError(.internal, "cannot open blob \(sha256): errno \(errno)") }
        return head
    }

    public func makeWriter(maxSize: Int64) throws -> BlobWriter {
        try BlobWriter(store: self, maxSize: maxSize)
    }

    // MARK: placing received bytes

    /// A fresh temporary name for one upload: `tmp/upload-<pid>-<uuid>`.
    func newUploadPath() -> String { root.tmpPath + "/upload-\(getpid())-\(Identifiers.uuidV7())" }

    /// Moves a complete, fsynced temporary file to `blobs/ab/cd/<sha256>` (read-only), or drops it
    /// when those bytes are already stored; then fsyncs the folders that changed. The one place
    /// bytes enter the store.
    func place(temporary tmp: String, as sha256: String) throws(DomainError) {
        let (leaf, made) = try makeFolders(for: sha256)
        let final = path(of: sha256)
        if access(final, F_OK) == 0 {
            unlink(tmp)  // identical bytes are stored once
            return
        }
        guard access(tmp, F_OK) == 0 else { return }  // placed already (a retry after a crash)
        chmod(tmp, 0o444)
        if rename(tmp, final) != 0 { throw BlobFiles.ioError(errno, "move the upload into the blob store") }
        BlobFiles.fsyncDirectory(leaf)
        if made { for d in [(leaf as NSString).deletingLastPathComponent, root.blobsPath] { BlobFiles.fsyncDirectory(d) } }
        BlobFiles.fsyncDirectory(root.tmpPath)
    }

    /// Creates `blobs/ab/` and `blobs/ab/cd/` for a digest if they are missing: the folder the
    /// blob goes in, and whether a folder was made (its parent then needs an fsync too).
    func makeFolders(for sha256: String) throws(DomainError) -> (leaf: String, made: Bool) {
        let rel = relativePath(sha256)
        let top = root.blobsPath + "/" + String(rel.prefix(2))
        let leaf = root.blobsPath + "/" + String(rel.prefix(5))
        var made = false
        for d in [top, leaf] {
            if mkdir(d, 0o755) == 0 {
                made = true
            } else if errno != EEXIST {
                throw BlobFiles.ioError(errno, "create a blob folder")
            }
        }
        return (leaf, made)
    }

    /// Removes temporary files left by processes that no longer run (a `kill -9` mid-upload).
    /// Temp names carry the writer's pid: `upload-<pid>-<uuid>`.
    @discardableResult
    public func removeStaleTemporaryFiles() -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.tmpPath) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix("upload-") && BlobFiles.ownerIsGone(name) {
            if unlink(root.tmpPath + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }

    /// Whether the storage takes a small durable write (for /readyz).
    public func checkWritable() throws(DomainError) {
        let probe = root.tmpPath + "/readyz-\(getpid())"
        defer { unlink(probe) }
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BlobFiles.ioError(errno, "create a file", whenFull: "the disk is full") }
        defer { close(fd) }
        if write(fd, "ok", 2) != 2 { throw BlobFiles.ioError(errno, "write a file", whenFull: "the disk is full") }
        if fsync(fd) != 0 { throw BlobFiles.ioError(errno, "flush a file", whenFull: "the disk is full") }
    }

    // MARK: scratch folders

    /// A fresh path under `tmp/` for work that unpacks files (`<kind>-<pid>-<uuid>`), not yet
    /// created: the caller creates it (0700) once it decides to write, and removes it after;
    /// `removeStaleScratchFolders` does if the process dies first.
    public func newScratchFolderPath(_ kind: String) -> String {
        root.tmpPath + "/\(kind)-\(getpid())-\(Identifiers.uuidV7())"
    }

    /// Scratch folders of `kind` whose process is gone (killed).
    public func removeStaleScratchFolders(_ kind: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root.tmpPath)) ?? [] where name.hasPrefix(kind + "-") && BlobFiles.ownerIsGone(name) {
            try? FileManager.default.removeItem(atPath: root.tmpPath + "/" + name)
        }
    }
}

// MARK: - resumable uploads

/// The file of one resumable (tus) upload, `tmp/tus-<id>`, open for writing at offsets.
public final class ResumableFile: Sendable {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Writes a received chunk at `offset`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(DomainError) {
        try BlobFiles.writeAll(fd: fd, bytes, at: offset, what: "write the upload", whenFull: "The disk is full; the chunk was not kept.")
    }

    /// Drops everything past `length` (a chunk that is not kept).
    public func truncate(to length: Int64) { _ = ftruncate(fd, off_t(length)) }

    public func sync() throws(DomainError) {
        if fsync(fd) != 0 { throw DomainError(.insufficientStorage, "Cannot flush the upload to disk (errno \(errno)).") }
    }
}

extension FileBlobStore {
    func resumablePath(_ id: String) -> String { root.tmpPath + "/tus-" + id }

    /// Creates the empty, durable file of a new resumable upload.
    public func createResumable(_ id: String) throws(DomainError) {
        let fd = open(resumablePath(id), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw DomainError(.conflict, "An upload with this id already has a file; start a new upload.") }
            throw BlobFiles.ioError(errno, "create the upload's file", whenFull: "Cannot create the upload's file: the disk is full.")
        }
        fsync(fd)
        close(fd)
        BlobFiles.fsyncDirectory(root.tmpPath)
    }

    /// The upload's file for writing; nil when its bytes are gone (expired, cleaned up).
    public func openResumable(_ id: String) -> ResumableFile? {
        let fd = open(resumablePath(id), O_WRONLY | O_CLOEXEC)
        return fd >= 0 ? ResumableFile(fd: fd) : nil
    }

    public func hasResumable(_ id: String) -> Bool { access(resumablePath(id), F_OK) == 0 }

    public func discardResumable(_ id: String) { unlink(resumablePath(id)) }

    /// SHA-256, first bytes and length of the upload's first `limit` bytes (all when nil); nil
    /// when the file is gone.
    public func digestResumable(_ id: String, upTo limit: Int64? = nil) throws(DomainError) -> (hasher: SHA256, head: [UInt8], bytes: Int64)? {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        guard let d = try BlobFiles.digest(path: resumablePath(id), upTo: limit, buffer: buffer) else { return nil }
        return (d.hasher, d.head, d.bytes)
    }

    /// The first bytes of the upload's file (empty when it is gone).
    public func resumableHead(_ id: String) -> [UInt8] { BlobFiles.head(path: resumablePath(id), count: MediaSniffer.headLength) ?? [] }

    /// Moves a finished upload's file into the store under its digest (or drops it when those
    /// bytes are stored already). Safe to repeat.
    public func commitResumable(_ id: String, as sha256: String) throws(DomainError) {
        try place(temporary: resumablePath(id), as: sha256)
    }
}

// MARK: - upkeep: fixity, gc, verify

public enum FixityRead: Sendable, Equatable {
    case missing
    case read(sha256: String, bytes: Int64)
}

extension FileBlobStore {
    /// Re-reads a stored blob through SHA-256; an unreadable file counts as missing.
    public func rehash(_ sha256: String, buffer: UnsafeMutableRawBufferPointer) -> FixityRead {
        guard let d = try? BlobFiles.digest(path: path(of: sha256), buffer: buffer) else { return .missing }
        return .read(sha256: Array(d.hasher.finalize()).hexString, bytes: d.bytes)
    }

    /// The size of a stored blob's file, nil when it is missing.
    public func storedSize(of sha256: String) -> Int64? { BlobFiles.status(path(of: sha256))?.size }

    /// The files under each `blobs/ab/cd/` folder named like a digest, a folder at a time:
    /// (sha256, size, modification time).
    public func forEachBlobFolder(_ body: ([(sha256: String, size: Int64, modified: Date)]) throws -> Void) rethrows {
        let fm = FileManager.default
        let blobs = root.blobsPath
        for a in (try? fm.contentsOfDirectory(atPath: blobs)) ?? [] where a.utf8.count == 2 {
            for b in (try? fm.contentsOfDirectory(atPath: blobs + "/" + a)) ?? [] where b.utf8.count == 2 {
                let dir = blobs + "/" + a + "/" + b
                var out: [(sha256: String, size: Int64, modified: Date)] = []
                for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where Identifiers.isSHA256Hex(name) {
                    guard let st = BlobFiles.status(dir + "/" + name) else { continue }
                    out.append((name, st.size, st.modified))
                }
                try body(out)
            }
        }
    }

    /// gc's half of the trash protocol: moves a blob out of use (its trash clock starts now).
    /// A blob already gone is not an error.
    public func moveToTrash(_ sha256: String) throws(DomainError) {
        let trashed = trashedPath(of: sha256)
        if rename(path(of: sha256), trashed) == 0 {
            _ = utimes(trashed, nil)
        } else if errno != ENOENT {
            throw DomainError(.internal, "cannot move blob \(sha256) to the trash: errno \(errno)")
        }
    }

    /// Makes the trash moves so far durable.
    public func syncTrash() { BlobFiles.fsyncDirectory(root.trashPath) }

    public func prepareTrash() throws { try FileManager.default.createDirectory(atPath: root.trashPath, withIntermediateDirectories: true) }

    /// A save's half: the blob is in place, brought back from the trash if gc just took it.
    /// False when its bytes are gone for good.
    public func ensurePresent(_ sha256: String) -> Bool {
        let final = path(of: sha256)
        if access(final, F_OK) == 0 { return true }
        let trashed = trashedPath(of: sha256)
        guard access(trashed, F_OK) == 0 else { return false }
        guard let (leaf, _) = try? makeFolders(for: sha256), rename(trashed, final) == 0 else { return false }
        BlobFiles.fsyncDirectory(leaf)
        return true
    }

    /// Deletes trash older than `cutoff`, and temporary upload files older than it unless
    /// `stillResumable` says a tus upload still owns them. Returns how many of each went.
    public func purge(olderThan cutoff: Date, dryRun: Bool, stillResumable: (String) throws -> Bool) throws -> (trash: Int, tmp: Int) {
        var purged = (trash: 0, tmp: 0)
        let fm = FileManager.default
        for (folder, isTmp) in [(root.trashPath, false), (root.tmpPath, true)] {
            for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] where !isTmp || name.hasPrefix("upload-") || name.hasPrefix("tus-") {
                if isTmp, name.hasPrefix("tus-"), try stillResumable(String(name.dropFirst(4))) { continue }
                let path = folder + "/" + name
                guard let st = BlobFiles.status(path), st.modified.timeIntervalSince1970.rounded(.down) < cutoff.timeIntervalSince1970 else { continue }
                if !dryRun { unlink(path) }
                if isTmp { purged.tmp += 1 } else { purged.trash += 1 }
            }
        }
        return purged
    }
}

// MARK: - backup and restore

public enum BlobCopy: Sendable, Equatable { case alreadyThere, linked, copied, missing }

extension FileBlobStore {
    /// Brings one blob from `source` into this store (a backup folder, or a restored data root):
    /// a hard link where the filesystem allows, else a copy that is not fsynced (the caller
    /// flushes the whole filesystem once, see `syncAll`).
    ///
    /// - `orItsTrash`: take the source's trash copy if gc moved the blob meanwhile.
    /// - `regularFilesOnly`: a link in the source (to /etc/…, say) is never taken; it counts
    ///   as missing.
    public func adopt(_ sha256: String, size: Int64?, from source: FileBlobStore, orItsTrash: Bool, regularFilesOnly: Bool) throws -> BlobCopy {
        let dst = path(of: sha256)
        if let size, let st = BlobFiles.status(dst), st.size == size { return .alreadyThere }
        var candidates = [source.path(of: sha256)]
        if orItsTrash { candidates.append(source.trashedPath(of: sha256)) }
        let src = candidates.first { p in
            if regularFilesOnly {
                var st = Glibc.stat()
                guard lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
            }
            return access(p, R_OK) == 0
        }
        guard let src else { return .missing }
        try FileManager.default.createDirectory(atPath: (dst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        unlink(dst)
        if link(src, dst) == 0 { return .linked }
        try Upkeep.copyFile(src, dst, sync: false)
        return .copied
    }

    /// Flushes everything written under `blobs/` (one filesystem sync, not one per file).
    public func syncAll() throws {
        try Upkeep.syncFilesystem(of: root.blobsPath)
        BlobFiles.fsyncDirectory(root.blobsPath)
    }
}
