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
import ZiyuankuTestSupport

/// A real, throw-away data root with a catalog, two schools and one user per role (the seeded
/// personas of `ZiyuankuTestSupport`), served by the application `zyk serve` runs.
final class TestEnv: @unchecked Sendable {
    /// The data root's folder, removed when the environment goes.
    let scratch: ScratchDirectory
    var dir: URL { scratch.url }
    let services: AppServices
    var tokens: [String: String] = [:]  // persona -> token
    var principals: [String: Principal] = [:]
    var orgA = ""
    var orgB = ""

    static let personas: [(name: String, org: String, role: Role)] = Personas.all

    /// `configure` sees the test defaults: the data root, and port 0 (any free port, for live
    /// servers). Everything else is the product's default, the job scheduler's daily optimize
    /// included (it runs when an application starts; tests that count job runs turn it off).
    init(configure: (inout ServerConfig) -> Void = { _ in }) throws {
        scratch = ScratchDirectory(prefix: "zyk-test")
        var config = ServerConfig()
        config.dataRoot = scratch.path
        config.port = 0
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        services = try openServices(config: config, logger: logger)
        let people = try Personas.seed(services.catalog)
        orgA = people.orgA
        orgB = people.orgB
        tokens = people.tokens
        principals = people.principals
    }

    /// The application `zyk serve` runs over this data root (`buildApplication`): its router
    /// and middleware, its HTTP/1 channel and its background services (download counter
    /// flush, job scheduler, sync runner).
    func app() -> some ApplicationProtocol {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return buildApplication(services: services, logger: logger)
    }

    /// Runs `body` against `app()`. `.router` (the default) hands each request to the
    /// application's responder, its middleware included, while its background services run
    /// beside the test; it skips the server itself (the HTTP/1 channel with its parser,
    /// body-size and connection guards, `Expect: 100-continue`). `.live` runs everything on a
    /// loopback socket (an ephemeral port), for tests where the channel matters.
    func test(_ setup: TestingSetup = .router, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await app().test(setup, body)
    }

    /// The routes the application registers, for the OpenAPI drift test: the table
    /// `buildApplication` fills while it builds the application (which is not started).
    var routes: RouteTable {
        let table = RouteTable()
        _ = buildApplication(services: services, logger: Logger(label: "routes"), routes: table)
        return table
    }

    func auth(_ persona: String?) -> HTTPFields {
        guard let persona, let t = tokens[persona] else { return [:] }
        return [.authorization: "Bearer \(t)"]
    }

    /// Files in blobs/ (not directories).
    func blobFiles() -> [String] { services.root.blobFileNames() }

    func tmpFiles() -> [String] { services.root.temporaryFileNames(prefix: "upload-") }
}

enum Fixtures {
    static let mp4Header = SampleFiles.mp4Header
    static func video(_ size: Int, seed: UInt8 = 1) -> [UInt8] { SampleFiles.video(size, seed: seed) }
    static let pdf = SampleFiles.pdf

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
