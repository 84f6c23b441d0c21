import Foundation

/// The headers of one `multipart/form-data` part.
public struct MultipartPartHeaders: Sendable, Equatable {
    public var name: String?
    public var filename: String?
    public var contentType: String?
}

public struct MultipartError: Error, Sendable, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// A streaming `multipart/form-data` parser (RFC 7578): bytes go in as they arrive, events come
/// out; a part body is never collected. Limits bound header size and part count, and a body that
/// ends before the closing delimiter is an error, so a truncated upload is never taken as whole.
public struct MultipartParser: Sendable {
    public enum Event: Sendable, Equatable {
        case begin(MultipartPartHeaders)
        case body([UInt8])
        case end
    }

    enum State: Sendable {
        case preamble
        case afterDelimiter  // just after "--boundary": expect CRLF or "--"
        case headers
        case body
        case done
    }

    private let delimiter: [UInt8]  // "\r\n--" + boundary
    private var buffer: [UInt8] = []
    private var state: State = .preamble
    private var parts = 0
    public let maxHeaderBytes: Int
    public let maxParts: Int

    public init(boundary: String, maxHeaderBytes: Int = 16 * 1024, maxParts: Int = 64) throws(MultipartError) {
        guard (1...70).contains(boundary.utf8.count), boundary.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F || $0 == 0x20 }) else {
            throw MultipartError("the multipart boundary must be 1 to 70 printable ASCII characters")
        }
        delimiter = Array("\r\n--\(boundary)".utf8)
        // The first delimiter may come without the leading CRLF.
        buffer = [0x0D, 0x0A]
        self.maxHeaderBytes = maxHeaderBytes
        self.maxParts = maxParts
    }

    public var isFinished: Bool { if case .done = state { true } else { false } }

    /// Extracts the boundary parameter from a `Content-Type: multipart/form-data; boundary=…` value.
    public static func boundary(fromContentType value: String) -> String? {
        let params = HeaderParameters.parse(value)
        guard params.value.lowercased() == "multipart/form-data" else { return nil }
        return params.parameters["boundary"]
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) throws(MultipartError) -> [Event] {
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        var cursor = 0
        loop: while true {
            switch state {
            case .done:
                cursor = buffer.count  // epilogue is ignored
                break loop
            case .preamble:
                if let i = find(delimiter, in: buffer, from: cursor) {
                    cursor = i + delimiter.count
                    state = .afterDelimiter
                } else {
                    // keep a tail that might hold the start of the delimiter
                    if buffer.count - cursor > 64 * 1024 { throw MultipartError("no multipart boundary found in the first 64 KiB") }
                    cursor = max(cursor, buffer.count - delimiter.count)
                    break loop
                }
            case .afterDelimiter:
                // Transport padding (spaces/tabs) may follow the delimiter before CRLF.
                var j = cursor
                while j < buffer.count, buffer[j] == 0x20 || buffer[j] == 0x09 { j += 1 }
                guard buffer.count - j >= 2 else { break loop }
                if buffer[j] == 0x2D && buffer[j + 1] == 0x2D {
                    state = .done
                    cursor = buffer.count
                    break loop
                }
                guard buffer[j] == 0x0D && buffer[j + 1] == 0x0A else { throw MultipartError("malformed multipart delimiter line") }
                cursor = j + 2
                parts += 1
                if parts > maxParts { throw MultipartError("too many parts: at most \(maxParts)") }
                state = .headers
            case .headers:
                // An empty header block is just CRLF. Checked first: a body that holds a blank
                // line must not be taken for the end of headers (whether it arrived yet or not).
                if buffer.count - cursor >= 2 && buffer[cursor] == 0x0D && buffer[cursor + 1] == 0x0A {
                    events.append(.begin(MultipartPartHeaders()))
                    cursor += 2
                    state = .body
                    continue loop
                }
                guard let end = find([0x0D, 0x0A, 0x0D, 0x0A], in: buffer, from: cursor) else {
                    if buffer.count - cursor > maxHeaderBytes { throw MultipartError("part headers exceed \(maxHeaderBytes) bytes") }
                    break loop
                }
                if end - cursor > maxHeaderBytes { throw MultipartError("part headers exceed \(maxHeaderBytes) bytes") }
                let headers = try Self.parseHeaders(Array(buffer[cursor..<end]))
                events.append(.begin(headers))
                cursor = end + 4
                state = .body
            case .body:
                if let i = find(delimiter, in: buffer, from: cursor) {
                    if i > cursor { events.append(.body(Array(buffer[cursor..<i]))) }
                    events.append(.end)
                    cursor = i + delimiter.count
                    state = .afterDelimiter
                } else {
                    // Everything except a possible partial delimiter at the end is body.
                    let safeEnd = max(cursor, buffer.count - (delimiter.count - 1))
                    let keepFrom = partialMatchStart(in: buffer, from: max(cursor, safeEnd))
                    if keepFrom > cursor { events.append(.body(Array(buffer[cursor..<keepFrom]))) }
                    cursor = keepFrom
                    break loop
                }
            }
        }
        if cursor > 0 { buffer.removeFirst(min(cursor, buffer.count)) }
        return events
    }

    /// Call when the body has ended; throws when the closing delimiter never came.
    public func finish() throws(MultipartError) {
        guard isFinished else {
            throw MultipartError(parts == 0 ? "the multipart body has no parts" : "the multipart body ended before its closing boundary")
        }
    }

    /// Index from which the buffer's tail could still be the start of the delimiter.
    private func partialMatchStart(in buf: [UInt8], from: Int) -> Int {
        var start = from
        while start < buf.count {
            let n = buf.count - start
            if n < delimiter.count && buf[start...].elementsEqual(delimiter.prefix(n)) { return start }
            start += 1
        }
        return buf.count
    }

    private func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard hay.count - from >= needle.count, let first = needle.first else { return nil }
        return hay.withUnsafeBufferPointer { h -> Int? in
            needle.withUnsafeBufferPointer { n -> Int? in
                var i = from
                let last = h.count - n.count
                while i <= last {
                    guard let p = memchr(h.baseAddress! + i, Int32(first), last - i + 1) else { return nil }
                    let idx = h.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
                    if memcmp(h.baseAddress! + idx, n.baseAddress!, n.count) == 0 { return idx }
                    i = idx + 1
                }
                return nil
            }
        }
    }

    static func parseHeaders(_ bytes: [UInt8]) throws(MultipartError) -> MultipartPartHeaders {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw MultipartError("part headers are not valid UTF-8") }
        var h = MultipartPartHeaders()
        for line in text.components(separatedBy: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw MultipartError("malformed part header line") }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-disposition":
                let p = HeaderParameters.parse(value)
                guard p.value.lowercased() == "form-data" else { throw MultipartError("part Content-Disposition must be form-data") }
                h.name = p.parameters["name"]
                if let star = p.parameters["filename*"], let decoded = HeaderParameters.decodeRFC8187(star) {
                    h.filename = decoded
                } else {
                    h.filename = p.parameters["filename"]
                }
            case "content-type": h.contentType = value
            default: continue
            }
        }
        return h
    }
}

/// `value; key=token; key="quoted \" string"` as used by Content-Type and Content-Disposition.
public struct HeaderParameters: Sendable {
    public var value: String
    public var parameters: [String: String]

    public static func parse(_ header: String) -> HeaderParameters {
        var chars = Substring(header)
        func skipSpaces() { while let c = chars.first, c == " " || c == "\t" { chars.removeFirst() } }
        skipSpaces()
        var value = ""
        while let c = chars.first, c != ";" {
            value.append(c)
            chars.removeFirst()
        }
        var params: [String: String] = [:]
        while chars.first == ";" {
            chars.removeFirst()
            skipSpaces()
            var key = ""
            while let c = chars.first, c != "=" && c != ";" {
                key.append(c)
                chars.removeFirst()
            }
            key = key.trimmingCharacters(in: .whitespaces).lowercased()
            guard chars.first == "=" else { continue }
            chars.removeFirst()
            skipSpaces()
            var v = ""
            if chars.first == "\"" {
                chars.removeFirst()
                while let c = chars.first {
                    chars.removeFirst()
                    if c == "\\", let next = chars.first {
                        v.append(next)
                        chars.removeFirst()
                    } else if c == "\"" {
                        break
                    } else {
                        v.append(c)
                    }
                }
                while let c = chars.first, c != ";" { chars.removeFirst() }
            } else {
                while let c = chars.first, c != ";" {
                    v.append(c)
                    chars.removeFirst()
                }
                v = v.trimmingCharacters(in: .whitespaces)
            }
            if !key.isEmpty && params[key] == nil { params[key] = v }
        }
        return HeaderParameters(value: value.trimmingCharacters(in: .whitespaces), parameters: params)
    }

    /// `UTF-8''%E5%BA%B7…` (RFC 8187). Only UTF-8 is accepted.
    public static func decodeRFC8187(_ s: String) -> String? {
        let parts = s.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        var bytes: [UInt8] = []
        var it = Array(parts[2].utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
