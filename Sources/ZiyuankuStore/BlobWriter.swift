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
        self.tmpPath = store.newUploadPath()
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
            throw BlobFiles.ioError(code, "create a temporary file")
        }
    }

    private func releaseSlot() {
        if holdsSlot {
            holdsSlot = false
            Self.openFiles.subtract(1, ordering: .relaxed)
        }
    }

    deinit { abort() }

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
            var at = offset
            for b in buffers {
                try b.withUnsafeReadableBytes { try BlobFiles.writeAll(fd: fd, $0, at: at) }
                at += Int64(b.readableBytes)
            }
            // Start write-back now, so the final fsync has little left to do.
            _ = zyk_start_writeback(fd, offset, Int64(length))
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
        let store = self.store
        do {
            try await NIOThreadPool.singleton.runIfActive {
                defer { close(fd) }
                if fsync(fd) != 0 { throw BlobFiles.ioError(errno, "flush the upload to disk") }
                try store.place(temporary: tmp, as: sha)
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
}

/// The running SHA-256 of an upload. Touched by one thread-pool job at a time (the writer
/// awaits each job before starting the next), which is what makes the unchecked Sendable sound.
final class HashBox: @unchecked Sendable {
    private var hasher = SHA256()
    func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    func finalize() -> [UInt8] { Array(hasher.finalize()) }
}
