import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import _NIOFileSystem

/// Streams a version's file from disk: validators, conditional requests, single and multiple
/// ranges, RFC 6266 filenames, `Repr-Digest` (RFC 9530), and headers that keep browsers from
/// running what they download.
struct Downloads {
    let services: AppServices
    static let chunk: Int64 = 256 * 1024

    func serve(_ req: Request, _ ctx: ZykContext, view: ResourceView) async throws -> Response {
        let rawName = try ctx.parameters.require("name")
        let name = rawName.removingPercentEncoding ?? rawName
        let served = try services.downloads.file(named: name, in: view)
        let (file, path, publicResource, lastModified) = (served.file, served.path, served.isPublic, served.modified)
        let size = file.size
        let etag = "\"\(file.sha256)\""
        let lastModifiedText = HTTPDate.format(lastModified)

        var headers: HTTPFields = [
            .eTag: etag,
            .lastModified: lastModifiedText,
            .acceptRanges: "bytes",
            .cacheControl: publicResource ? "public, no-cache" : "private, no-cache",
            .xContentTypeOptions: "nosniff",
            .contentSecurityPolicy: "default-src 'none'; sandbox",
            .contentDisposition: Filenames.contentDisposition(file.name),
        ]
        // RFC 9530: the digest of the whole file (the selected representation), on every answer
        // about it: 200, 206 (single or multiple ranges), HEAD and 304.
        if let digest = DigestHeader.value(sha256Hex: file.sha256) { headers[.reprDigest] = digest }
        let contentType = MediaSniffer.isScriptCapable(file.mediaType) ? "application/octet-stream" : file.mediaType

        // RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since.
        if let inm = req.headers[.ifNoneMatch] {
            if Self.matches(inm, etag) { return Response(status: .notModified, headers: headers) }
        } else if let ims = req.headers[.ifModifiedSince], let since = HTTPDate.parse(ims),
            floor(lastModified.timeIntervalSince1970) <= since.timeIntervalSince1970
        {
            return Response(status: .notModified, headers: headers)
        }

        var rangeHeader = req.headers[.range]
        if let ifRange = req.headers[.ifRange], rangeHeader != nil {
            let trimmed = ifRange.trimmingCharacters(in: .whitespaces)
            let fresh =
                trimmed.hasPrefix("\"")
                ? trimmed == etag : HTTPDate.parse(trimmed).map { floor(lastModified.timeIntervalSince1970) <= $0.timeIntervalSince1970 } ?? false
            if !fresh { rangeHeader = nil }
        }
        let isHead = req.method == .head
        let parsedRange = ByteRangeRequest.parse(rangeHeader, size: size)
        // A download counts once per fetch from the start (players fetch the rest by ranges),
        // and once per client and file within 30 s. Any fetch of what is not public is audited
        // (once per client and file within 30 s, whatever the range).
        if !isHead {
            let fromStart: Bool
            switch parsedRange {
            case .full: fromStart = true
            case .ranges(let r): fromStart = r.first?.lowerBound == 0
            default: fromStart = false
            }
            try services.downloads.recordFetch(served, of: view, by: ctx.principal, client: ctx.clientKey, fromStart: fromStart)
        }
        switch parsedRange {
        case .full:
            headers[.contentType] = contentType
            headers[.contentLength] = String(size)
            services.metrics.downloadBytes.increment(by: isHead ? 0 : size)
            return Response(status: .ok, headers: headers, body: isHead ? ResponseBody() : body(path: path, ranges: [0...(max(size, 1) - 1)], size: size))
        case .unsatisfiable:
            throw DomainError(.rangeNotSatisfiable, "The requested range lies outside the file (\(size) bytes).")
                .with(headers: [("Content-Range", "bytes */\(size)"), ("Accept-Ranges", "bytes")])
        case .tooMany:
            throw DomainError(.rangeNotSatisfiable, "Too many ranges: at most \(ByteRangeRequest.defaultMaxRanges) per request.")
                .with(headers: [("Content-Range", "bytes */\(size)"), ("Accept-Ranges", "bytes")])
        case .ranges(let ranges) where ranges.count == 1:
            let r = ranges[0]
            headers[.contentType] = contentType
            headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(size)"
            headers[.contentLength] = String(r.count)
            services.metrics.downloadBytes.increment(by: isHead ? 0 : Int64(r.count))
            return Response(status: .partialContent, headers: headers, body: isHead ? ResponseBody() : body(path: path, ranges: [r], size: size))
        case .ranges(let ranges):
            let boundary = "zyk-" + Identifiers.uuidV7().replacingOccurrences(of: "-", with: "")
            let partHeads = ranges.map { r in
                Array("\r\n--\(boundary)\r\nContent-Type: \(contentType)\r\nContent-Range: bytes \(r.lowerBound)-\(r.upperBound)/\(size)\r\n\r\n".utf8)
            }
            let tail = Array("\r\n--\(boundary)--\r\n".utf8)
            let length = partHeads.reduce(0) { $0 + $1.count } + ranges.reduce(0) { $0 + $1.count } + tail.count
            headers[.contentType] = "multipart/byteranges; boundary=\(boundary)"
            headers[.contentLength] = String(length)
            services.metrics.downloadBytes.increment(by: isHead ? 0 : Int64(length))
            if isHead { return Response(status: .partialContent, headers: headers, body: ResponseBody()) }
            let body = ResponseBody(contentLength: length) { writer in
                try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                    for (i, r) in ranges.enumerated() {
                        try await writer.write(ByteBuffer(bytes: partHeads[i]))
                        for try await chunk in handle.readChunks(in: r, chunkLength: .bytes(Self.chunk)) {
                            try await writer.write(chunk)
                        }
                    }
                }
                try await writer.write(ByteBuffer(bytes: tail))
                try await writer.finish(nil)
            }
            return Response(status: .partialContent, headers: headers, body: body)
        }
    }

    /// Up to this many bytes are read in one `pread` on the request's own thread: for small
    /// files a thread hop per chunk costs more than the read.
    static let inlineLimit: Int64 = 256 * 1024

    func body(path: String, ranges: [ClosedRange<Int64>], size: Int64) -> ResponseBody {
        if size == 0 { return ResponseBody() }
        let r = ranges[0]
        if Int64(r.count) <= Self.inlineLimit, let buffer = Self.readInline(path: path, range: r) {
            return ResponseBody(byteBuffer: buffer)
        }
        return ResponseBody(contentLength: r.count) { writer in
            try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                for try await chunk in handle.readChunks(in: r, chunkLength: .bytes(Self.chunk)) {
                    try await writer.write(chunk)
                }
            }
            try await writer.finish(nil)
        }
    }

    static func readInline(path: String, range: ClosedRange<Int64>) -> ByteBuffer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: range.count)
        let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: range.count) { p in
            var done = 0
            while done < range.count {
                let k = pread(fd, p.baseAddress! + done, range.count - done, off_t(range.lowerBound) + off_t(done))
                if k < 0 && errno == EINTR { continue }
                if k <= 0 { break }
                done += k
            }
            return done
        }
        return n == range.count ? buffer : nil
    }

    /// `If-None-Match` list matching (weak comparison, `*`).
    static func matches(_ header: String, _ etag: String) -> Bool {
        for item in header.split(separator: ",") {
            var t = item.trimmingCharacters(in: .whitespaces)
            if t == "*" { return true }
            if t.hasPrefix("W/") { t = String(t.dropFirst(2)) }
            if t == etag { return true }
        }
        return false
    }
}
