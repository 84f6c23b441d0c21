import Crypto
import Foundation
import ZiyuankuCore

#if canImport(Glibc)
    import Glibc
#endif

/// The few file routines every blob path shares: one write loop, one hashing loop, one way to
/// report an I/O failure, one folder fsync. Only `FileBlobStore` and `BlobWriter` use them.
enum BlobFiles {
    /// A disk that is full is the client's 507 (storage), anything else an internal failure.
    static func ioError(
        _ code: Int32, _ what: String, whenFull: String = "The server's storage is full; the upload was discarded. Try again later."
    )
        -> DomainError
    {
        if code == ENOSPC || code == EDQUOT { return DomainError(.insufficientStorage, whenFull) }
        return DomainError(.internal, "could not \(what): \(String(cString: strerror(code)))")
    }

    /// Writes all of `bytes` at `offset`, retrying short writes and interrupted calls.
    static func writeAll(
        fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64, what: String = "write the upload to disk", whenFull: String? = nil
    )
        throws(DomainError)
    {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw whenFull.map { ioError(code, what, whenFull: $0) } ?? ioError(code, what)
            }
            if n == 0 { throw ioError(EIO, what) }
            done += n
        }
    }

    struct Digest {
        var hasher = SHA256()
        var head: [UInt8] = []
        var bytes: Int64 = 0
    }

    /// Streams an open file through SHA-256 from its start, up to `limit` bytes or its end,
    /// keeping the first bytes for media-type sniffing. Throws when a read fails.
    static func digest(fd: Int32, upTo limit: Int64? = nil, buffer: UnsafeMutableRawBufferPointer) throws(DomainError) -> Digest {
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var d = Digest()
        while limit.map({ d.bytes < $0 }) ?? true {
            let want = limit.map { Int(min(Int64(buffer.count), $0 - d.bytes)) } ?? buffer.count
            let n = pread(fd, buffer.baseAddress, want, off_t(d.bytes))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError(errno, "read stored bytes back")
            }
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            if d.head.count < MediaSniffer.headLength { d.head.append(contentsOf: chunk.prefix(MediaSniffer.headLength - d.head.count)) }
            d.hasher.update(bufferPointer: chunk)
            d.bytes += Int64(n)
        }
        return d
    }

    /// The same for a file by path; nil when it cannot be opened.
    static func digest(path: String, upTo limit: Int64? = nil, buffer: UnsafeMutableRawBufferPointer) throws(DomainError) -> Digest? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return try digest(fd: fd, upTo: limit, buffer: buffer)
    }

    /// The first `count` bytes of a file (fewer when it is shorter); nil when it cannot be opened.
    static func head(path: String, count: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, count - got, off_t(got)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        return Array(buf.prefix(got))
    }

    static func fsyncDirectory(_ path: String) {
        let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    /// (size, modification time) of a path that is there, following links.
    static func status(_ path: String) -> (size: Int64, modified: Date)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (Int64(st.st_size), Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec)))
    }

    /// Whether the process named in a `<kind>-<pid>-…` file name is gone (so its leftovers are stale).
    static func ownerIsGone(_ name: String) -> Bool {
        let parts = name.split(separator: "-")
        guard parts.count >= 2, let pid = Int32(parts[1]) else { return true }
        if pid == getpid() { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}
