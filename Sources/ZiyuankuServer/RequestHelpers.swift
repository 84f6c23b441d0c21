import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ZiyuankuCore
import ZiyuankuLibrary

extension HTTPField.Name {
    static let contentDigest = HTTPField.Name("Content-Digest")!
    static let reprDigest = HTTPField.Name("Repr-Digest")!
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}

enum BodyReader {
    /// The declared Content-Length, when present and numeric.
    static func declaredLength(_ request: Request) throws -> Int64? {
        guard let v = request.headers[.contentLength] else { return nil }
        guard let n = Int64(v), n >= 0 else { throw DomainError(.badRequest, "Content-Length must be a non-negative integer.") }
        return n
    }

    /// The media type of the body, lower-cased, without parameters.
    static func mediaType(_ request: Request) -> String? {
        request.headers[.contentType].map { HeaderParameters.parse($0).value.lowercased() }
    }

    /// Reads a JSON object body: checks the content type, refuses oversized bodies before
    /// reading them when Content-Length says so, and while reading otherwise.
    static func jsonObject(_ request: Request, limit: Int) async throws -> [String: JSONValue] {
        guard let type = mediaType(request) else {
            throw DomainError(.unsupportedMediaType, "Send the body as application/json (Content-Type header missing).")
        }
        guard type == "application/json" || type.hasSuffix("+json") else {
            throw DomainError(.unsupportedMediaType, "Send the body as application/json, not \(type).")
        }
        if let n = try declaredLength(request), n > Int64(limit) {
            throw DomainError(.payloadTooLarge, "JSON bodies are limited to \(limit) bytes; this one declares \(n).", extra: ["limit": .number(Double(limit))])
        }
        var buffer = ByteBuffer()
        for try await chunk in request.body {
            if buffer.readableBytes + chunk.readableBytes > limit {
                throw DomainError(.payloadTooLarge, "JSON bodies are limited to \(limit) bytes.", extra: ["limit": .number(Double(limit))])
            }
            var c = chunk
            buffer.writeBuffer(&c)
        }
        return try parseObject(buffer.readableBytesView)
    }

    static func parseObject(_ bytes: some Collection<UInt8>) throws -> [String: JSONValue] { try JSONValue.parseObject(bytes) }

    /// The SHA-256 the client says the body has: the sha-256 member of `Content-Digest`, else of
    /// `Repr-Digest` (RFC 9530; the two agree, as uploads carry no content coding). Both fields
    /// are RFC 9651 dictionaries (`DigestHeader`); members for other algorithms are ignored.
    /// Nil when no sha-256 digest is sent; 400 when either field is not a valid dictionary or
    /// its sha-256 member is not a 32-byte byte sequence.
    static func expectedSHA256(_ request: Request) throws -> [UInt8]? {
        var found: [UInt8]?
        for name in [HTTPField.Name.contentDigest, .reprDigest] {
            guard let header = request.headers[name] else { continue }
            switch DigestHeader.sha256(header) {
            case .absent: continue
            case .sha256(let digest): if found == nil { found = digest }
            case .malformed:
                throw DomainError(
                    .badRequest, "\(name.rawName)'s sha-256 member must be a byte sequence of 32 bytes (sha-256=:<base64 of the SHA-256>:); nothing was kept.",
                    fields: [FieldError(field: name.rawName, message: "the sha-256 member is not :<base64 of 32 bytes>:")])
            case .notADictionary:
                throw DomainError(
                    .badRequest,
                    "\(name.rawName) is not a structured-field dictionary (RFC 9651), such as sha-256=:<base64 of the SHA-256>:; nothing was kept.",
                    fields: [FieldError(field: name.rawName, message: "not an RFC 9651 dictionary of at most \(DigestHeader.maxLength) bytes")])
            }
        }
        return found
    }
}

/// Query parameters with an allow-list: unknown names and bad values are named in one 400.
struct QueryReader {
    let params: [String: String]
    var errors: [FieldError] = []

    init(_ request: Request, allowed: Set<String>) {
        var p: [String: String] = [:]
        var errs: [FieldError] = []
        for (key, v) in Self.formDecoded(request.uri.query ?? "") {
            if !allowed.contains(key) {
                errs.append(.init(field: key, message: "unknown query parameter; allowed: \(allowed.sorted().joined(separator: ", "))"))
            } else if p[key] != nil {
                errs.append(.init(field: key, message: "given more than once"))
            } else {
                p[key] = v
            }
        }
        params = p
        errors = errs
    }

    /// `application/x-www-form-urlencoded` pairs: `+` is a space, then percent-decoding
    /// (invalid UTF-8 becomes U+FFFD, which the validators then refuse).
    static func formDecoded(_ query: String) -> [(String, String)] {
        func decode(_ s: Substring) -> String {
            var bytes: [UInt8] = []
            var it = Array(s.utf8)[...]
            while let b = it.popFirst() {
                if b == UInt8(ascii: "+") {
                    bytes.append(0x20)
                } else if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                    bytes.append(v)
                    it = it.dropFirst(2)
                } else {
                    bytes.append(b)
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
    }

    mutating func string(_ key: String, maxLength: Int = 200) -> String? {
        guard let v = params[key] else { return nil }
        if v.isEmpty || v.count > maxLength || TextCleaning.forbiddenCharacter(in: v, allowNewlines: false) != nil {
            errors.append(.init(field: key, message: "must be 1–\(maxLength) printable characters"))
            return nil
        }
        return v
    }

    mutating func int(_ key: String, default d: Int, range: ClosedRange<Int>) -> Int {
        guard let v = params[key] else { return d }
        guard let n = Int(v), range.contains(n) else {
            errors.append(.init(field: key, message: "must be an integer from \(range.lowerBound) to \(range.upperBound)"))
            return d
        }
        return n
    }

    mutating func enumValue<E: RawRepresentable & CaseIterable>(_ key: String) -> E? where E.RawValue == String {
        guard let v = params[key] else { return nil }
        guard let e = E(rawValue: v) else {
            errors.append(.init(field: key, message: "'\(v.prefix(50))' is not one of: \(E.allowedValues)"))
            return nil
        }
        return e
    }

    mutating func uuid(_ key: String) -> String? {
        guard let v = params[key] else { return nil }
        guard Identifiers.isUUID(v) else {
            errors.append(.init(field: key, message: "must be an id (a lower-case UUID)"))
            return nil
        }
        return v
    }

    func check() throws {
        if !errors.isEmpty { throw DomainError(.badRequest, "Invalid query: \(errors.map(\.field).joined(separator: ", ")).", fields: errors) }
    }
}

/// Versions as entity tags: version 3 is `"v3"`; `If-Match` names the version a change is based on.
enum ETag {
    static func version(_ n: Int) -> String { "\"v\(n)\"" }

    /// The version in `If-Match`, nil when absent or `*`; 412 when it is not one of ours.
    static func expectedVersion(_ req: Request) throws -> Int? {
        guard let v = req.headers[.ifMatch] else { return nil }
        var t = v.trimmingCharacters(in: .whitespaces)
        if t == "*" { return nil }
        if t.hasPrefix("W/") { t = String(t.dropFirst(2)) }
        guard t.hasPrefix("\"v"), t.hasSuffix("\""), let n = Int(t.dropFirst(2).dropLast()) else {
            throw DomainError(.preconditionFailed, "If-Match must be the ETag of a version, like \"v3\".")
        }
        return n
    }
}
