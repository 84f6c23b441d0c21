/// Follows HTTP/1.1 request framing (RFC 9112 §6) on the raw bytes of a connection, so the
/// server can percent-encode raw UTF-8 in request lines (`curl '…?q=康复'` sends it unescaped,
/// and NIO's strict parser refuses bytes ≥ 0x80) without ever touching anything else: bodies
/// (by `Content-Length` or chunked), chunk sizes and trailers pass through byte for byte, and
/// the next request line is recognised only where this request's framing says it starts.
///
/// Anything it does not fully understand — both `Content-Length` and `Transfer-Encoding`,
/// conflicting lengths, a transfer coding other than chunked, obsolete line folding, an
/// `Upgrade` or `CONNECT`, an over-long line — switches it to pass-through for the rest of the connection:
/// no more rewriting at all, and NIO's parser answers the request as it sees fit.
public struct HTTPRequestFramer: Sendable {
    enum State: Sendable, Equatable {
        case start, requestLine, headerLine, body(Int64), chunkSize, chunkData(Int64), chunkEnd, trailerLine, passthrough
    }

    /// Longest header, chunk-size or trailer line followed; longer ones end the rewriting.
    public static let maxLine = 16 * 1024

    private var state = State.start
    private var line: [UInt8] = []
    private var contentLength: Int64?
    private var chunked = false
    private var unframeable = false
    /// The first bytes of the current request line (enough to see the method).
    private var method: [UInt8] = []

    public init() {}

    /// True once the framer has given up rewriting on this connection.
    public var isPassthrough: Bool { state == .passthrough }

    /// Reads the next bytes of the connection and returns the offsets (within `bytes`) of
    /// request-line bytes ≥ 0x80, which the caller percent-encodes.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Int] {
        var escapes: [Int] = []
        let n = bytes.count
        var i = 0
        while i < n {
            switch state {
            case .passthrough:
                return escapes
            case .start:
                let b = bytes[i]
                if b == 0x0D || b == 0x0A {
                    i += 1  // empty lines before a request line are allowed (RFC 9112 §2.2)
                } else {
                    state = .requestLine
                }
            case .requestLine:
                let b = bytes[i]
                if b == 0x0A {
                    state = .headerLine
                    line.removeAll(keepingCapacity: true)
                    contentLength = nil
                    chunked = false
                    // CONNECT turns the connection into a tunnel: nothing after it is framed.
                    unframeable = method.starts(with: Array("CONNECT ".utf8))
                    method.removeAll(keepingCapacity: true)
                } else {
                    if method.count < 8 { method.append(b) }
                    if b >= 0x80 { escapes.append(i) }
                }
                i += 1
            case .body(let remaining):
                let k = Int64(n - i) < remaining ? Int64(n - i) : remaining
                i += Int(k)
                state = remaining - k == 0 ? .start : .body(remaining - k)
            case .chunkData(let remaining):
                let k = Int64(n - i) < remaining ? Int64(n - i) : remaining
                i += Int(k)
                state = remaining - k == 0 ? .chunkEnd : .chunkData(remaining - k)
            case .headerLine, .chunkSize, .chunkEnd, .trailerLine:
                let b = bytes[i]
                i += 1
                guard b == 0x0A else {
                    line.append(b)
                    if line.count > Self.maxLine { state = .passthrough }
                    continue
                }
                if line.last == 0x0D { line.removeLast() }
                lineEnded()
                line.removeAll(keepingCapacity: true)
            }
        }
        return escapes
    }

    private mutating func lineEnded() {
        switch state {
        case .headerLine:
            if line.isEmpty { return headEnded() }
            header(line)
        case .chunkSize:
            let sizePart = line.split(separator: UInt8(ascii: ";"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
            let digits = sizePart.drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed().drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed()
            guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy({ Self.hexValue($0) != nil }) else {
                state = .passthrough
                return
            }
            var size: Int64 = 0
            for d in digits { size = size * 16 + Int64(Self.hexValue(d) ?? 0) }
            state = size == 0 ? .trailerLine : .chunkData(size)
        case .chunkEnd:
            state = line.isEmpty ? .chunkSize : .passthrough
        case .trailerLine:
            if line.isEmpty { state = .start }
        default:
            break
        }
    }

    private mutating func header(_ line: [UInt8]) {
        guard let first = line.first, first != 0x20, first != 0x09, let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            unframeable = true  // obsolete folding or no colon: NIO refuses it, we stop guessing
            return
        }
        let name = line[..<colon]
        guard !name.isEmpty, !name.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else {
            unframeable = true
            return
        }
        let value = Self.trimmed(line[(colon + 1)...])
        switch String(decoding: name, as: UTF8.self).lowercased() {
        case "content-length":
            guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                unframeable = true
                return
            }
            var v: Int64 = 0
            for d in value { v = v * 10 + Int64(d - 0x30) }
            if let contentLength, contentLength != v { unframeable = true }
            contentLength = v
        case "transfer-encoding":
            let codings = String(decoding: value, as: UTF8.self).lowercased().split(separator: ",").map { $0.trimmingSpaces }
            if codings.last == "chunked" && !chunked && codings.dropLast().allSatisfy({ $0 != "chunked" }) {
                chunked = true
            } else {
                unframeable = true
            }
        case "upgrade":
            unframeable = true
        default:
            break
        }
    }

    private mutating func headEnded() {
        if unframeable || (chunked && contentLength != nil) {
            state = .passthrough
        } else if chunked {
            state = .chunkSize
        } else if let contentLength, contentLength > 0 {
            state = .body(contentLength)
        } else {
            state = .start
        }
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }

    static func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, f == 0x20 || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s.removeLast() }
        return s
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
