import CCurl
import Foundation
import Synchronization

/// One HTTP request for libcurl. Bodies are either small in-memory JSON or a file streamed from
/// disk by a read callback (never loaded whole).
public struct CurlRequest: Sendable {
    public enum Body: Sendable {
        case none
        case data(Data)
        case file(path: String, size: Int64)
    }

    public var method: String
    public var url: String
    /// `Name: value` lines.
    public var headers: [String]
    public var body: Body

    public init(method: String, url: String, headers: [String] = [], body: Body = .none) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct CurlResponse: Sendable {
    public var status: Int
    /// The first 64 KiB of the body (answers of this contract are small JSON documents).
    public var body: Data
    /// Seconds from `Retry-After` (libcurl parses both forms), nil when absent.
    public var retryAfter: Double?
    public var bytesSent: Int64
    /// Response headers by lower-cased name (the last block, after any `100 Continue`; at most
    /// 64 of them).
    public var headers: [String: String] = [:]
}

/// How transfers guard against a slow or dead peer: a connect timeout and a low-speed window
/// instead of a fixed total timeout (a 4 GiB video may take an hour and be perfectly healthy).
public struct TransferOptions: Sendable, Equatable {
    public var connectTimeoutSeconds = 10
    /// A transfer slower than `lowSpeedLimitBytes` per second for `lowSpeedTimeSeconds` is cut.
    public var lowSpeedLimitBytes = 1024
    public var lowSpeedTimeSeconds = 30
    /// A CA bundle (PEM) to trust instead of the system's (for a platform behind a private CA);
    /// TLS verification itself is always on.
    public var caFile: String?
    public var userAgent = "ziyuanku-sync/1"

    public init() {}
}

/// A libcurl failure with its code, classified for the retry policy.
public struct CurlError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The connection failed or broke: refused, reset, DNS, empty reply, cut short.
        case connection
        /// Connect timeout, or the low-speed window ran out (a stall or slow drip).
        case timeout
        /// The peer's certificate is not trusted, or the CA file cannot be used.
        case tls
        /// Our side: a bad URL or option, an unreadable file. Retrying does not help.
        case configuration
        /// We aborted (shutdown or cancellation).
        case aborted
        case other
    }

    public let code: Int
    public let message: String

    public var kind: Kind {
        switch CURLcode(UInt32(code)) {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
            CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_WEIRD_SERVER_REPLY,
            CURLE_UPLOAD_FAILED:
            .connection
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND:
            .tls
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_READ_ERROR, CURLE_BAD_FUNCTION_ARGUMENT, CURLE_UNKNOWN_OPTION,
            CURLE_NOT_BUILT_IN:
            .configuration
        case CURLE_ABORTED_BY_CALLBACK: .aborted
        default: .other
        }
    }

    public var description: String { "\(message) (curl error \(code))" }

    init(_ code: CURLcode, message: String? = nil) {
        self.code = Int(code.rawValue)
        let text = message.flatMap { $0.isEmpty ? nil : $0 } ?? String(cString: curl_easy_strerror(code))
        self.message = text
    }
}

/// Counts bytes as they go out, for progress bars; shared across threads.
public final class ByteCounter: Sendable {
    private let value = Atomic<Int64>(0)
    public init() {}
    public func add(_ n: Int64) { value.add(n, ordering: .relaxed) }
    public var total: Int64 { value.load(ordering: .relaxed) }
}

final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func cancel() { value.store(true, ordering: .relaxed) }
    var isCancelled: Bool { value.load(ordering: .relaxed) }
}

private enum CurlGlobal {
    /// `curl_global_init` is not thread-safe: done once, before any handle exists.
    static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
}

/// The state one transfer's callbacks see (passed to libcurl as an unretained pointer that
/// outlives the transfer).
private final class TransferContext {
    let cancel: CancelFlag
    let progress: ByteCounter?
    var fd: Int32 = -1
    var data: Data = Data()
    var offset = 0
    var response = Data()
    var readError: String?
    static let responseCap = 64 << 10

    init(cancel: CancelFlag, progress: ByteCounter?) {
        self.cancel = cancel
        self.progress = progress
    }

    deinit { if fd >= 0 { close(fd) } }

    func read(into buffer: UnsafeMutablePointer<CChar>, max: Int) -> Int {
        if cancel.isCancelled { return Int(CURL_READFUNC_ABORT) }
        if fd >= 0 {
            while true {
                let n = Glibc.read(fd, buffer, max)
                if n >= 0 {
                    progress?.add(Int64(n))
                    return n
                }
                if errno == EINTR { continue }
                readError = "cannot read the file being sent: \(String(cString: strerror(errno)))"
                return Int(CURL_READFUNC_ABORT)
            }
        }
        let n = min(max, data.count - offset)
        if n > 0 {
            data.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + offset, byteCount: n)
            }
            offset += n
        }
        return n
    }

    var headers: [String: String] = [:]

    func header(_ buffer: UnsafeMutablePointer<CChar>, count: Int) -> Int {
        let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: count), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            headers = [:]  // a new block (after 100 Continue)
        } else if let colon = line.firstIndex(of: ":"), headers.count < 64 {
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[name] = String(line[line.index(after: colon)...].prefix(1024)).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return count
    }

    func seek(to offset: Int64) -> Bool {
        if fd >= 0 { return lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) }
        guard offset >= 0, offset <= Int64(data.count) else { return false }
        self.offset = Int(offset)
        return true
    }

    func write(_ buffer: UnsafeMutablePointer<CChar>, count: Int) -> Int {
        let room = Self.responseCap - response.count
        if room > 0 { response.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: min(room, count)) }
        return count
    }
}

/// Owns one libcurl easy handle: freed in `deinit`, header lists kept alive for as long as the
/// handle may use them, and every option's result checked. Not thread-safe: one thread at a
/// time (each `CurlPool` thread owns one, reused so connections are kept alive).
public final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>

    public init() throws {
        guard CurlGlobal.initialized, let h = curl_easy_init() else { throw CurlError(CURLE_FAILED_INIT) }
        handle = h
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    /// A `Retry-After` longer than a day is read as a day: one odd answer must not park an entry
    /// for a year.
    static let retryAfterCap = 86_400.0

    private func check(_ rc: CURLcode, _ what: String) throws {
        guard rc == CURLE_OK else { throw CurlError(rc, message: "cannot set \(what): \(String(cString: curl_easy_strerror(rc)))") }
    }

    private func set(_ option: CURLoption, _ value: Int, _ what: String) throws {
        try check(zyk_curl_setopt_long(handle, option, value), what)
    }

    private func set(_ option: CURLoption, _ value: String, _ what: String) throws {
        try check(zyk_curl_setopt_string(handle, option, value), what)
    }

    private func setHeaders(_ lines: [String]) throws {
        var list: UnsafeMutablePointer<curl_slist>?
        for line in lines {
            guard let next = curl_slist_append(list, line) else {
                curl_slist_free_all(list)
                throw CurlError(CURLE_OUT_OF_MEMORY)
            }
            list = next
        }
        let rc = zyk_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        // The old list may be freed only now that the handle points at the new one.
        if let headerList { curl_slist_free_all(headerList) }
        headerList = list
        try check(rc, "headers")
    }

    /// Runs one transfer to completion on the calling thread (it blocks: never call it from
    /// the Swift concurrency pool).
    func perform(_ request: CurlRequest, options: TransferOptions, cancel: CancelFlag, progress: ByteCounter?) throws -> CurlResponse {
        curl_easy_reset(handle)  // options back to defaults; live connections and caches stay
        errorBuffer[0] = 0
        let ctx = TransferContext(cancel: cancel, progress: progress)
        return try withExtendedLifetime(ctx) {
            let me = Unmanaged.passUnretained(ctx).toOpaque()
            try check(zyk_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "error buffer")
            try set(CURLOPT_URL, request.url, "URL")
            try set(CURLOPT_PROTOCOLS_STR, "http,https", "protocols")
            try set(CURLOPT_NOSIGNAL, 1, "NOSIGNAL")
            try set(CURLOPT_CONNECTTIMEOUT, options.connectTimeoutSeconds, "connect timeout")
            try set(CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimitBytes, "low-speed limit")
            try set(CURLOPT_LOW_SPEED_TIME, options.lowSpeedTimeSeconds, "low-speed time")
            try set(CURLOPT_SSL_VERIFYPEER, 1, "TLS peer verification")
            try set(CURLOPT_SSL_VERIFYHOST, 2, "TLS host verification")
            if let ca = options.caFile { try set(CURLOPT_CAINFO, ca, "CA file") }
            try set(CURLOPT_FOLLOWLOCATION, 0, "redirects")
            try set(CURLOPT_USERAGENT, options.userAgent, "user agent")
            try set(CURLOPT_TCP_KEEPALIVE, 1, "TCP keepalive")
            switch request.method {
            case "HEAD": try set(CURLOPT_NOBODY, 1, "HEAD")
            case "GET": break
            default: try set(CURLOPT_CUSTOMREQUEST, request.method, "method")
            }
            switch request.body {
            case .none:
                break
            case .data(let data):
                ctx.data = data
                try set(CURLOPT_UPLOAD, 1, "upload")
                try check(zyk_curl_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(data.count)), "body size")
            case .file(let path, let size):
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw CurlError(CURLE_READ_ERROR, message: "cannot open \(path): \(String(cString: strerror(errno)))") }
                ctx.fd = fd
                var st = stat()
                guard fstat(fd, &st) == 0, Int64(st.st_size) == size else {
                    throw CurlError(CURLE_READ_ERROR, message: "\(path) is not \(size) bytes long")
                }
                posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
                try set(CURLOPT_UPLOAD, 1, "upload")
                try check(zyk_curl_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(size)), "body size")
            }
            if case .none = request.body {
            } else {
                // CURLOPT_UPLOAD sends PUT; CUSTOMREQUEST above keeps any other method.
                try check(
                    zyk_curl_setopt_data_callback(handle, CURLOPT_READFUNCTION) { buffer, size, count, user in
                        guard let buffer, let user else { return Int(CURL_READFUNC_ABORT) }
                        return Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue().read(into: buffer, max: size * count)
                    }, "read callback")
                try check(zyk_curl_setopt_pointer(handle, CURLOPT_READDATA, me), "read data")
                // Lets libcurl rewind the body to send it again (a reused connection that died).
                try check(
                    zyk_curl_setopt_seek_callback(handle) { user, offset, origin in
                        guard let user, origin == SEEK_SET else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
                        return Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue().seek(to: Int64(offset))
                            ? Int32(CURL_SEEKFUNC_OK) : Int32(CURL_SEEKFUNC_FAIL)
                    }, "seek callback")
                try check(zyk_curl_setopt_pointer(handle, CURLOPT_SEEKDATA, me), "seek data")
            }
            try setHeaders(request.headers)
            try check(
                zyk_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { buffer, size, count, user in
                    guard let buffer, let user else { return 0 }
                    return Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue().write(buffer, count: size * count)
                }, "write callback")
            try check(zyk_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, me), "write data")
            try check(
                zyk_curl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION) { buffer, size, count, user in
                    guard let buffer, let user else { return 0 }
                    return Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue().header(buffer, count: size * count)
                }, "header callback")
            try check(zyk_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, me), "header data")
            try set(CURLOPT_NOPROGRESS, 0, "progress")
            try check(
                zyk_curl_setopt_xferinfo_callback(handle) { user, _, _, _, _ in
                    guard let user else { return 0 }
                    return Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue().cancel.isCancelled ? 1 : 0
                }, "progress callback")
            try check(zyk_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, me), "progress data")

            let rc = curl_easy_perform(handle)
            guard rc == CURLE_OK else {
                if let readError = ctx.readError { throw CurlError(CURLE_READ_ERROR, message: readError) }
                throw CurlError(rc, message: String(cString: errorBuffer))
            }
            var status = 0
            _ = zyk_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            var retryAfter: curl_off_t = 0
            _ = zyk_curl_getinfo_off(handle, CURLINFO_RETRY_AFTER, &retryAfter)
            var sent: curl_off_t = 0
            _ = zyk_curl_getinfo_off(handle, CURLINFO_SIZE_UPLOAD_T, &sent)
            return CurlResponse(
                status: status, body: ctx.response, retryAfter: retryAfter > 0 ? min(Double(retryAfter), Self.retryAfterCap) : nil, bytesSent: Int64(sent),
                headers: ctx.headers)
        }
    }
}

/// A bounded pool of threads, each owning one easy handle, that runs blocking libcurl
/// transfers off the Swift concurrency pool. `perform` suspends the calling task until a
/// thread has finished its transfer; cancelling the task aborts the transfer.
public final class CurlPool: @unchecked Sendable {
    private struct Job {
        let request: CurlRequest
        let cancel: CancelFlag
        let progress: ByteCounter?
        let continuation: CheckedContinuation<CurlResponse, any Error>
    }

    public let options: TransferOptions
    public let size: Int
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var stopped = false
    private var running = 0

    public init(size: Int, options: TransferOptions) {
        self.size = max(1, size)
        self.options = options
        for i in 0..<self.size {
            let t = Thread { [self] in work() }
            t.name = "zyk-curl-\(i)"
            t.stackSize = 1 << 20
            running += 1
            t.start()
        }
    }

    private func work() {
        let easy = try? CurlEasy()
        while true {
            condition.lock()
            while head == jobs.count && !stopped { condition.wait() }
            if head == jobs.count {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            if job.cancel.isCancelled {
                job.continuation.resume(throwing: CancellationError())
                continue
            }
            guard let easy else {
                job.continuation.resume(throwing: CurlError(CURLE_FAILED_INIT))
                continue
            }
            do {
                job.continuation.resume(returning: try easy.perform(job.request, options: options, cancel: job.cancel, progress: job.progress))
            } catch {
                job.continuation.resume(throwing: error)
            }
        }
    }

    public func perform(_ request: CurlRequest, progress: ByteCounter? = nil) async throws -> CurlResponse {
        let cancel = CancelFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<CurlResponse, any Error>) in
                condition.lock()
                if stopped {
                    condition.unlock()
                    c.resume(throwing: CancellationError())
                    return
                }
                jobs.append(Job(request: request, cancel: cancel, progress: progress, continuation: c))
                condition.signal()
                condition.unlock()
            }
        } onCancel: {
            cancel.cancel()
        }
    }

    /// Lets queued and running transfers finish, then stops the threads and waits for them.
    public func shutdown() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }
}
