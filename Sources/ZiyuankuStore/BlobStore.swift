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

    public func relativePath(_ sha256: String) -> String {
        let u = Array(sha256)
        return "\(String(u[0..<2]))/\(String(u[2..<4]))/\(sha256)"
    }

    public func path(of sha256: String) -> String { root.blobsPath + "/" + relativePath(sha256) }

    public func localPath(of sha256: String) -> String? {
        guard Identifiers.isSHA256Hex(sha256) else { return nil }
        let p = path(of: sha256)
        return access(p, F_OK) == 0 ? p : nil
    }

    public func head(of sha256: String, count: Int) throws -> [UInt8] {
        guard let p = localPath(of: sha256) else { throw DomainError(.internal, "blob \(sha256) is missing from the store") }
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DomainError(.internal, "cannot open blob \(sha256): errno \(errno)") }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }
        return n > 0 ? Array(buf.prefix(n)) : []
    }

    public func makeWriter(maxSize: Int64) throws -> BlobWriter {
        try BlobWriter(store: self, maxSize: maxSize)
    }

    /// Removes temporary files left by processes that no longer run (a `kill -9` mid-upload).
    /// Temp names carry the writer's pid: `upload-<pid>-<uuid>`.
    @discardableResult
    public func removeStaleTemporaryFiles() -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.tmpPath) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix("upload-") {
            let parts = name.split(separator: "-")
            if parts.count >= 2, let pid = Int32(parts[1]), pid != getpid(), kill(pid, 0) == 0 { continue }
            if parts.count >= 2, let pid = Int32(parts[1]), pid == getpid() { continue }
            if unlink(root.tmpPath + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }
}

/// Receives one upload: hashes and counts while writing to a temp file, enforces the size
/// limit as bytes arrive, and on `finish` fsyncs, renames into place and fsyncs the folders.
/// Anything not finished is removed (explicitly by `abort`, or at the latest in `deinit`).
///
/// Receiving overlaps with hashing and writing: every 1 MiB the received buffers go to a
/// thread-pool job that hashes them, writes them with `pwritev` and starts their write-back;
/// the next batch is received meanwhile (at most one job in flight, so memory stays bounded).
public final class BlobWriter {
    let store: FileBlobStore
    let maxSize: Int64
    let tmpPath: String
    private var fd: Int32
    private let hash = HashBox()
    private(set) public var count: Int64 = 0
    private(set) public var head: [UInt8] = []
    private var batch: [ByteBuffer] = []
    private var batchBytes = 0
    private var written: Int64 = 0
    private var inFlight: EventLoopFuture<Void>?
    private var done = false
    static let batchSize = 1 << 20

    /// Temporary files open at once, in the whole process, at most half the open-file limit:
    /// a multipart request may hold dozens, and connections alone do not bound them. Past it a
    /// new upload is answered 503 with Retry-After at once, rather than failing deep inside
    /// with "too many open files" while downloads and the catalog run short too.
    static let openFiles = Atomic<Int>(0)
    static let maxOpenFiles: Int = {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0, rl.rlim_cur != rlim_t.max else { return 1 << 20 }
        return max(32, Int(clamping: rl.rlim_cur) / 2)
    }()
    private var holdsSlot = false

    init(store: FileBlobStore, maxSize: Int64) throws {
        self.store = store
        self.maxSize = maxSize
        self.tmpPath = store.root.tmpPath + "/upload-\(getpid())-\(Identifiers.uuidV7())"
        let (open, _) = Self.openFiles.add(1, ordering: .relaxed)
        guard open <= Self.maxOpenFiles else {
            Self.openFiles.subtract(1, ordering: .relaxed)
            fd = -1
            done = true
            throw DomainError(.unavailable, "The server is receiving as many files as it can at once; try again in a few seconds.", retryAfterSeconds: 5)
        }
        holdsSlot = true
        fd = Glibc.open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            releaseSlot()
            done = true
            throw BlobWriter.ioError(code, "create a temporary file")
        }
    }

    private func releaseSlot() {
        if holdsSlot {
            holdsSlot = false
            Self.openFiles.subtract(1, ordering: .relaxed)
        }
    }

    deinit { abort() }

    static func ioError(_ code: Int32, _ what: String) -> DomainError {
        if code == ENOSPC || code == EDQUOT {
            return DomainError(.insufficientStorage, "The server's storage is full; the upload was discarded. Try again later.")
        }
        return DomainError(.internal, "could not \(what): \(String(cString: strerror(code)))")
    }

    /// Appends bytes; throws `payloadTooLarge` as soon as the limit is passed.
    public func write(_ bytes: some Collection<UInt8>) async throws {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await write(buffer)
    }

    /// Appends a received buffer without copying it.
    public func write(_ buffer: ByteBuffer) async throws {
        precondition(!done)
        count += Int64(buffer.readableBytes)
        if count > maxSize {
            throw DomainError(
                .payloadTooLarge, "The file is larger than the limit of \(maxSize) bytes.", extra: ["limit": .number(Double(maxSize))])
        }
        if head.count < MediaSniffer.headLength {
            head.append(contentsOf: buffer.readableBytesView.prefix(MediaSniffer.headLength - head.count))
        }
        batch.append(buffer)
        batchBytes += buffer.readableBytes
        if batchBytes >= Self.batchSize { try await dispatch() }
    }

    /// Hands the current batch to the thread pool after the previous job finished.
    private func dispatch() async throws {
        if let previous = inFlight {
            inFlight = nil
            try await previous.get()
        }
        guard !batch.isEmpty else { return }
        let buffers = batch
        let offset = written
        let length = batchBytes
        batch.removeAll(keepingCapacity: true)
        batchBytes = 0
        written += Int64(length)
        let fd = self.fd
        let hash = self.hash
        inFlight = NIOThreadPool.singleton.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            for b in buffers { b.withUnsafeReadableBytes { hash.update($0) } }
            try BlobWriter.writeAll(fd: fd, buffers, at: offset)
            // Start write-back now, so the final fsync has little left to do.
            _ = zyk_start_writeback(fd, offset, Int64(length))
        }
    }

    static func writeAll(fd: Int32, _ buffers: [ByteBuffer], at start: Int64) throws {
        var offset = start
        for b in buffers {
            try b.withUnsafeReadableBytes { buf in
                var done = 0
                while done < buf.count {
                    let n = pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(offset) + off_t(done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw ioError(errno, "write the upload to disk")
                    }
                    done += n
                }
                offset += Int64(buf.count)
            }
        }
    }

    /// Makes the bytes durable under their digest. When `expectedSHA256` is given and differs,
    /// nothing is kept and `digestMismatch` is thrown.
    public func finish(expectedSHA256: [UInt8]? = nil) async throws -> BlobInfo {
        do {
            try await dispatch()
            if let last = inFlight {
                inFlight = nil
                try await last.get()
            }
        } catch {
            abort()
            throw error
        }
        let digest = hash.finalize()
        if let expectedSHA256, expectedSHA256 != digest {
            abort()
            throw DomainError(
                .digestMismatch,
                "The body's SHA-256 (\(digest.hexString)) does not match the digest sent (\(expectedSHA256.hexString)); nothing was kept."
            )
        }
        let sha = digest.hexString
        let fd = self.fd
        let tmp = tmpPath
        let final = store.path(of: sha)
        let blobs = store.root.blobsPath
        let rel = store.relativePath(sha)
        do {
            try await NIOThreadPool.singleton.runIfActive {
                defer { close(fd) }
                if fsync(fd) != 0 { throw BlobWriter.ioError(errno, "flush the upload to disk") }
                let dir1 = blobs + "/" + String(rel.prefix(2))
                let dir2 = blobs + "/" + String(rel.prefix(5))
                for d in [dir1, dir2] where mkdir(d, 0o755) != 0 && errno != EEXIST {
                    throw BlobWriter.ioError(errno, "create a blob folder")
                }
                if access(final, F_OK) == 0 {
                    // Identical bytes are stored once.
                    unlink(tmp)
                    return
                }
                chmod(tmp, 0o444)
                if rename(tmp, final) != 0 { throw BlobWriter.ioError(errno, "move the upload into the blob store") }
                for d in [dir2, dir1, blobs] { BlobWriter.fsyncDirectory(d) }
            }
            self.fd = -1
            done = true
            releaseSlot()
        } catch {
            self.fd = -1
            abort()
            throw error
        }
        return BlobInfo(sha256: sha, size: count, head: head)
    }

    /// Discards everything received. Never blocks: the temporary file is unlinked at once; a
    /// write job still running holds its own copy of the descriptor number, so the descriptor
    /// is closed when that job ends (never while it could still write into a reused number).
    public func abort() {
        releaseSlot()
        guard !done else { return }
        done = true
        unlink(tmpPath)
        let fd = self.fd
        self.fd = -1
        guard fd >= 0 else { return }
        if let job = inFlight {
            inFlight = nil
            job.whenComplete { _ in close(fd) }
        } else {
            close(fd)
        }
    }

    public static func fsyncDirectory(_ path: String) {
        let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// The running SHA-256 of an upload. Touched by one thread-pool job at a time (the writer
/// awaits each job before starting the next), which is what makes the unchecked Sendable sound.
final class HashBox: @unchecked Sendable {
    private var hasher = SHA256()
    func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    func finalize() -> [UInt8] { Array(hasher.finalize()) }
}
