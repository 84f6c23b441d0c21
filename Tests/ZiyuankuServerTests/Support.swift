import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore

/// A real, throw-away data root with a catalog, two schools and one user per role.
final class TestEnv: @unchecked Sendable {
    let dir: URL
    let services: AppServices
    let routes = RouteTable()
    var tokens: [String: String] = [:]  // persona -> token
    var principals: [String: Principal] = [:]
    var orgA = ""
    var orgB = ""

    static let personas: [(name: String, org: String, role: Role)] = [
        ("owner", "A", .teacher), ("teacherA", "A", .teacher), ("readerA", "A", .reader), ("reviewerA", "A", .reviewer),
        ("teacherB", "B", .teacher), ("readerB", "B", .reader), ("reviewerB", "B", .reviewer), ("admin", "P", .admin),
    ]

    init(configure: (inout ServerConfig) -> Void = { _ in }) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("zyk-test-\(Identifiers.uuidV7())")
        var config = ServerConfig()
        config.dataRoot = dir.path
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        services = try openServices(config: config, logger: logger)
        let c = services.catalog
        orgA = try c.createOrganization(name: "康复职业技术学院", kind: .higherVocational).id
        orgB = try c.createOrganization(name: "某某卫生学校", kind: .secondaryVocational).id
        let orgP = try c.createOrganization(name: "平台", kind: .platform).id
        for p in Self.personas {
            let org = p.org == "A" ? orgA : p.org == "B" ? orgB : orgP
            let (u, t) = try c.createUser(organizationId: org, name: p.name, role: p.role)
            tokens[p.name] = t.secret
            principals[p.name] = Principal(userId: u.id, name: u.name, role: u.role, organizationId: org, tokenId: t.info.id)
        }
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func app() -> some ApplicationProtocol {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return Application(router: buildRouter(services: services, routes: routes), logger: logger)
    }

    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await app().test(.router, body)
    }

    func auth(_ persona: String?) -> HTTPFields {
        guard let persona, let t = tokens[persona] else { return [:] }
        return [.authorization: "Bearer \(t)"]
    }

    /// Files in blobs/ (not directories).
    func blobFiles() -> [String] {
        let e = FileManager.default.enumerator(atPath: services.root.blobsPath)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            if p.split(separator: "/").count == 3 { out.append(p) }
        }
        return out
    }

    func tmpFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: services.root.tmpPath)) ?? []).filter { $0.hasPrefix("upload-") }
    }
}

enum Fixtures {
    static let mp4Header: [UInt8] = [0, 0, 0, 0x20] + Array("ftypisom".utf8) + [0, 0, 2, 0] + Array("isomiso2avc1mp41".utf8)
    static func video(_ size: Int, seed: UInt8 = 1) -> [UInt8] {
        mp4Header + (0..<max(0, size - mp4Header.count)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }
    static let pdf: [UInt8] = Array("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n".utf8)

    static func metadata(_ overrides: [String: Any] = [:]) -> [String: Any] {
        var m: [String: Any] = [
            "title": "康复训练示范", "description": "上肢康复训练的示范视频", "keywords": ["康复", "训练"], "resourceType": "video",
            "granularity": "asset", "educationLevel": "higherVocational", "majorCodes": ["520601"],
            "authors": [["name": "王老师", "role": "author"]], "copyrightHolder": "康复职业技术学院", "license": "CC-BY-4.0",
            "originality": "original", "visibility": "public",
        ]
        for (k, v) in overrides { m[k] = v }
        return m
    }

    static func json(_ object: Any) -> ByteBuffer {
        ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    struct Part {
        var name: String
        var filename: String?
        var contentType: String?
        var body: [UInt8]
    }

    static let boundary = "----zykTestBoundary7MA4YWxk"

    static func multipart(_ parts: [Part]) -> ByteBuffer {
        var out: [UInt8] = []
        for p in parts {
            var h = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(p.name)\""
            if let f = p.filename { h += "; filename=\"\(f)\"" }
            h += "\r\n"
            if let t = p.contentType { h += "Content-Type: \(t)\r\n" }
            out += Array((h + "\r\n").utf8) + p.body + Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return ByteBuffer(bytes: out)
    }

    static func createBody(metadata: [String: Any] = metadata(), files: [(String, [UInt8])]) -> ByteBuffer {
        var parts = [Part(name: "metadata", contentType: "application/json", body: [UInt8](try! JSONSerialization.data(withJSONObject: metadata)))]
        for (n, b) in files { parts.append(Part(name: "file", filename: n, contentType: "application/octet-stream", body: b)) }
        return multipart(parts)
    }

    static let multipartType = "multipart/form-data; boundary=\(boundary)"
}

extension TestResponse {
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
    }
    var bytes: [UInt8] { Array(body.readableBytesView) }
    var problemType: String? { (json["type"] as? String)?.components(separatedBy: "/").last }
    var isProblem: Bool { headers[.contentType]?.hasPrefix("application/problem+json") == true }
    var errorFields: Set<String> { Set(((json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }) }
}

extension TestClientProtocol {
    /// Creates a resource as `persona` through the multipart API; returns its JSON.
    @discardableResult
    func createResource(
        _ env: TestEnv, as persona: String = "owner", metadata: [String: Any] = Fixtures.metadata(),
        files: [(String, [UInt8])] = [("康复训练示范.mp4", Fixtures.video(4096))]
    ) async throws -> [String: Any] {
        var h = env.auth(persona)
        h[.contentType] = Fixtures.multipartType
        let r = try await execute(
            uri: "/v1/resources", method: .post, headers: h, body: Fixtures.createBody(metadata: metadata, files: files))
        #expect(r.status == .created, "create failed: \(String(buffer: r.body))")
        return r.json
    }

    func publish(_ env: TestEnv, _ id: String, as persona: String = "admin") async throws {
        let r = try await execute(uri: "/v1/resources/\(id)/publish", method: .post, headers: env.auth(persona))
        #expect(r.status == .ok, "publish failed: \(String(buffer: r.body))")
    }
}

func percentEncoded(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
}
