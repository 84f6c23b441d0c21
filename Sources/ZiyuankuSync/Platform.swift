import Crypto
import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// What went wrong talking to the platform, and what the outbox does about it.
public struct PlatformFailure: Error, Sendable, CustomStringConvertible {
    public enum Disposition: String, Sendable {
        /// Connection errors, timeouts, 408/425/429/5xx: try again later.
        case retry
        /// Any other 4xx, or a configuration problem: an admin must look.
        case dead
        /// We stopped it (shutdown).
        case cancelled
    }

    public var disposition: Disposition
    public var message: String
    public var status: Int?
    public var retryAfter: Double?

    public var description: String { message }

    /// An HTTP answer that is not a success, classified by the contract's table.
    public static func http(_ r: CurlResponse, request: String) -> PlatformFailure {
        let detail = platformMessage(r.body) ?? r.headers["x-zyk-error-code"]
        let retry = r.status == 408 || r.status == 425 || r.status == 429 || (500...599).contains(r.status)
        return PlatformFailure(
            disposition: retry ? .retry : .dead,
            message: "\(request): HTTP \(r.status)" + (detail.map { ": \($0)" } ?? ""),
            status: r.status, retryAfter: retry ? r.retryAfter : nil)
    }

    public static func transport(_ e: CurlError, request: String) -> PlatformFailure {
        let d: Disposition
        switch e.kind {
        case .connection, .timeout, .other: d = .retry
        case .tls, .configuration: d = .dead
        case .aborted: d = .cancelled
        }
        let what = e.kind == .timeout ? "timed out or stalled (\(e.message))" : e.message
        return PlatformFailure(disposition: d, message: "\(request): \(what)", status: nil, retryAfter: nil)
    }

    /// The `message` (and `code`) of the platform's JSON error document, else a short text body.
    static func platformMessage(_ body: Data) -> String? {
        guard !body.isEmpty else { return nil }
        if let v = try? JSONValue.parse(Array(body)), case .object(let o) = v {
            let code: String? = if case .string(let s) = o["code"] { s } else { nil }
            let message: String? = if case .string(let s) = o["message"] { s } else { nil }
            switch (code, message) {
            case (let c?, let m?): return "\(m) (\(c))"
            case (nil, let m?): return m
            case (let c?, nil): return c
            default: break
            }
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

/// A platform the outbox can push to. The outbox knows only this; another contract is another
/// conforming type.
public protocol PlatformAdapter: Sendable {
    /// Whether the platform already holds these bytes.
    func hasFile(sha256: String) async throws(PlatformFailure) -> Bool
    /// Streams a file from disk.
    func putFile(sha256: String, path: String, size: Int64, progress: ByteCounter?) async throws(PlatformFailure)
    /// Sends a version's record; returns the platform's id for the resource and the HTTP status.
    func putResource(id: String, version: Int, record: Data) async throws(PlatformFailure) -> (remoteId: String?, status: Int)
    /// Takes a resource off the platform (gone already counts as done); returns the HTTP status.
    func deleteResource(id: String) async throws(PlatformFailure) -> Int
}

/// Where the platform is and how we sign for it.
public struct PlatformConfig: Sendable, Equatable {
    public var baseURL: String
    public var appKey: String
    public var appSecret: String
    public var transfer = TransferOptions()

    public init(baseURL: String, appKey: String, appSecret: String) {
        self.baseURL = baseURL
        self.appKey = appKey
        self.appSecret = appSecret
    }

    /// Plain-words problems with the settings (empty when usable).
    public var problems: [String] {
        var p: [String] = []
        if let u = URLComponents(string: baseURL), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host?.isEmpty == false,
            u.query == nil, u.fragment == nil
        {
        } else {
            p.append("platform_url must be an http(s) URL without query, like https://platform.example.cn/api/v1 (got '\(baseURL)')")
        }
        if appKey.isEmpty { p.append("platform_app_key is not set") }
        if appSecret.isEmpty { p.append("platform_app_secret is not set") }
        if let ca = transfer.caFile, !FileManager.default.isReadableFile(atPath: ca) { p.append("platform_ca_file \(ca) cannot be read") }
        return p
    }
}

/// HMAC-SHA256 request signing, contract v1 (schema/platform-v1.md, "Signing").
public struct RequestSigner: Sendable {
    public static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    let key: String
    let secret: Data

    public init(key: String, secret: String) {
        self.key = key
        self.secret = Data(secret.utf8)
    }

    public static func stringToSign(method: String, path: String, timestamp: String, nonce: String, bodySHA256: String) -> String {
        ["ZYK1-HMAC-SHA256", method, path, timestamp, nonce, bodySHA256].joined(separator: "\n")
    }

    public func signature(method: String, path: String, timestamp: String, nonce: String, bodySHA256: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(Self.stringToSign(method: method, path: path, timestamp: timestamp, nonce: nonce, bodySHA256: bodySHA256).utf8),
            using: SymmetricKey(data: secret))
        return Array(mac).hexString
    }

    public func headers(method: String, path: String, bodySHA256: String, now: Date = Date()) -> [String] {
        let timestamp = String(Int(now.timeIntervalSince1970))
        var g = SystemRandomNumberGenerator()
        let nonce = String(format: "%016llx%016llx", g.next() as UInt64, g.next() as UInt64)
        return [
            "X-ZYK-Key: \(key)", "X-ZYK-Timestamp: \(timestamp)", "X-ZYK-Nonce: \(nonce)", "X-ZYK-Content-SHA256: \(bodySHA256)",
            "X-ZYK-Signature: \(signature(method: method, path: path, timestamp: timestamp, nonce: nonce, bodySHA256: bodySHA256))",
        ]
    }
}

/// The record sent for one version (schema/platform-v1.md, "The record"). Built from the
/// immutable version; the runner keeps the first bytes sent, so a replay is byte-for-byte the
/// first request.
public struct PlatformRecord: Codable, Sendable, Equatable {
    public struct Subject: Codable, Sendable, Equatable {
        public var code: String
        public var name: String?
    }
    public struct Creator: Codable, Sendable, Equatable {
        public var name: String
        public var role: String
    }
    public struct Publisher: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
    }
    public struct File: Codable, Sendable, Equatable {
        public var sha256: String
        public var size: Int64
        public var mediaType: String
        public var name: String
        public var role: String
    }

    public var identifier: String
    public var version: Int
    public var title: String
    public var description: String
    public var keywords: [String]
    public var language: String
    public var learningResourceType: String
    public var aggregationLevel: String
    public var educationLevel: String
    public var subject: [Subject]
    public var course: String?
    public var knowledgePoints: [String]
    public var audience: [String]
    public var creator: [Creator]
    public var publisher: Publisher
    public var rightsHolder: String
    public var license: String
    public var originality: String
    public var source: String?
    public var created: String
    public var modified: String
    public var format: String?
    public var files: [File]
    public var sourceSystem = "ziyuanku"

    public init(_ p: SyncPayload) {
        let m = p.version.metadata
        identifier = p.resourceId
        version = p.version.number
        title = m.title
        description = m.description
        keywords = m.keywords
        language = m.language
        learningResourceType = m.resourceType.rawValue
        aggregationLevel = m.granularity.rawValue
        educationLevel = m.educationLevel.rawValue
        subject = m.majorCodes.map { Subject(code: $0, name: p.majorNames[$0]) }
        course = m.course
        knowledgePoints = m.knowledgePoints
        audience = m.audience.map(\.rawValue)
        creator = m.authors.map { Creator(name: $0.name, role: $0.role.rawValue) }
        publisher = Publisher(id: p.organizationId, name: p.organizationName)
        rightsHolder = m.copyrightHolder
        license = m.license.rawValue
        originality = m.originality.rawValue
        source = m.source
        created = p.createdAt
        modified = p.version.createdAt
        format = (p.version.files.first { $0.role == .primary } ?? p.version.files.first)?.mediaType
        files = p.version.files.map { File(sha256: $0.sha256, size: $0.size, mediaType: $0.mediaType, name: $0.name, role: $0.role.rawValue) }
    }

    /// What the platform would refuse (the contract's requirements), in plain words.
    public var problems: [String] {
        var p: [String] = []
        if title.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { p.append("title is empty") }
        if title.count > 200 { p.append("title is \(title.count) characters; the platform takes at most 200") }
        if files.isEmpty { p.append("the version has no files; the platform needs at least one") }
        return p
    }

    /// Sorted keys, no whitespace, nulls written out: the same version always gives the same bytes.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    enum CodingKeys: String, CodingKey {
        case identifier, version, title, description, keywords, language, learningResourceType, aggregationLevel, educationLevel, subject
        case course, knowledgePoints, audience, creator, publisher, rightsHolder, license, originality, source, created, modified, format
        case files, sourceSystem
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(identifier, forKey: .identifier)
        try c.encode(version, forKey: .version)
        try c.encode(title, forKey: .title)
        try c.encode(description, forKey: .description)
        try c.encode(keywords, forKey: .keywords)
        try c.encode(language, forKey: .language)
        try c.encode(learningResourceType, forKey: .learningResourceType)
        try c.encode(aggregationLevel, forKey: .aggregationLevel)
        try c.encode(educationLevel, forKey: .educationLevel)
        try c.encode(subject, forKey: .subject)
        try c.encode(course, forKey: .course)
        try c.encode(knowledgePoints, forKey: .knowledgePoints)
        try c.encode(audience, forKey: .audience)
        try c.encode(creator, forKey: .creator)
        try c.encode(publisher, forKey: .publisher)
        try c.encode(rightsHolder, forKey: .rightsHolder)
        try c.encode(license, forKey: .license)
        try c.encode(originality, forKey: .originality)
        try c.encode(source, forKey: .source)
        try c.encode(created, forKey: .created)
        try c.encode(modified, forKey: .modified)
        try c.encode(format, forKey: .format)
        try c.encode(files, forKey: .files)
        try c.encode(sourceSystem, forKey: .sourceSystem)
    }
}

/// Contract v1 over libcurl.
public struct PlatformV1: PlatformAdapter {
    let config: PlatformConfig
    let pool: CurlPool
    let signer: RequestSigner
    /// The base URL without a trailing slash, and its path (what is signed).
    let base: String
    let basePath: String

    public init(config: PlatformConfig, pool: CurlPool) {
        self.config = config
        self.pool = pool
        signer = RequestSigner(key: config.appKey, secret: config.appSecret)
        var b = config.baseURL
        while b.hasSuffix("/") { b.removeLast() }
        base = b
        basePath = URLComponents(string: b)?.percentEncodedPath ?? ""
    }

    static let segment: CharacterSet = {
        var s = CharacterSet.urlPathAllowed
        s.remove(charactersIn: "/;")
        return s
    }()

    private func send(
        _ method: String, _ path: String, body: CurlRequest.Body, bodySHA256: String, extra: [String] = [], progress: ByteCounter? = nil
    )
        async throws(PlatformFailure) -> CurlResponse
    {
        let fullPath = basePath + path
        let what = "\(method) \(path)"
        do {
            // libcurl silently re-sends a request whose reused connection died before any answer
            // (HEAD and DELETE, which have no body to rewind) — with the same nonce, which the
            // platform then refuses (401 nonce_reused). Such a request is genuine: sign it afresh.
            var tries = 0
            while true {
                tries += 1
                let request = CurlRequest(
                    method: method, url: base + path, headers: signer.headers(method: method, path: fullPath, bodySHA256: bodySHA256) + extra,
                    body: body)
                let r = try await pool.perform(request, progress: progress)
                guard r.status == 401 && r.headers["x-zyk-error-code"] == "nonce_reused" else { return r }
                // Each fresh signature can meet another dying connection; a replay is never the
                // entry's fault, so after a few it is retried later, not declared dead.
                if tries >= 4 {
                    throw PlatformFailure(
                        disposition: .retry, message: "\(what): HTTP 401: nonce_reused (a transport replay, \(tries) times)", status: 401,
                        retryAfter: nil)
                }
            }
        } catch let e as PlatformFailure {
            throw e
        } catch let e as CurlError {
            throw PlatformFailure.transport(e, request: what)
        } catch is CancellationError {
            throw PlatformFailure(disposition: .cancelled, message: "\(what): stopped", status: nil, retryAfter: nil)
        } catch {
            throw PlatformFailure(disposition: .retry, message: "\(what): \(error)", status: nil, retryAfter: nil)
        }
    }

    public func hasFile(sha256: String) async throws(PlatformFailure) -> Bool {
        let r = try await send("HEAD", "/files/\(sha256)", body: .none, bodySHA256: RequestSigner.emptySHA256)
        switch r.status {
        case 200: return true
        case 404: return false
        default: throw PlatformFailure.http(r, request: "HEAD /files/\(sha256.prefix(12))…")
        }
    }

    public func putFile(sha256: String, path: String, size: Int64, progress: ByteCounter?) async throws(PlatformFailure) {
        // Large files ask first (`Expect: 100-continue`), so a refusal (401, 413) comes before
        // gigabytes are sent; small ones go straight away (a server that never answers 100 would
        // otherwise cost a second per file).
        let expect = size > 1 << 20 ? [] : ["Expect:"]
        let r = try await send(
            "PUT", "/files/\(sha256)", body: .file(path: path, size: size), bodySHA256: sha256,
            extra: ["Content-Type: application/octet-stream"] + expect, progress: progress)
        guard (200...299).contains(r.status) else { throw PlatformFailure.http(r, request: "PUT /files/\(sha256.prefix(12))…") }
    }

    public func putResource(id: String, version: Int, record: Data) async throws(PlatformFailure) -> (remoteId: String?, status: Int) {
        let seg = id.addingPercentEncoding(withAllowedCharacters: Self.segment) ?? id
        let r = try await send(
            "PUT", "/resources/\(seg)", body: .data(record), bodySHA256: Identifiers.sha256Hex(Array(record)),
            extra: ["Content-Type: application/json; charset=utf-8", "Idempotency-Key: \(id):\(version)", "Expect:"])
        guard (200...299).contains(r.status) else { throw PlatformFailure.http(r, request: "PUT /resources/\(id)") }
        if let v = try? JSONValue.parse(Array(r.body)), case .object(let o) = v, case .string(let remote) = o["remoteId"] { return (remote, r.status) }
        return (nil, r.status)
    }

    public func deleteResource(id: String) async throws(PlatformFailure) -> Int {
        let seg = id.addingPercentEncoding(withAllowedCharacters: Self.segment) ?? id
        let r = try await send("DELETE", "/resources/\(seg)", body: .none, bodySHA256: RequestSigner.emptySHA256)
        // Gone already counts as done — but only when the platform itself says so: a 404 from a
        // proxy or a wrong base URL must not mark a withdrawal done.
        let gone = r.status == 404 && r.headers["x-zyk-error-code"] == "not_found"
        guard (200...299).contains(r.status) || gone else {
            var f = PlatformFailure.http(r, request: "DELETE /resources/\(id)")
            if r.status == 404 {
                f.disposition = .dead
                f.message += " — not the platform's own answer (no X-ZYK-Error-Code: not_found); check platform_url"
            }
            throw f
        }
        return r.status
    }
}
