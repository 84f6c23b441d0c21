import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore
import ZiyuankuTestSupport

/// R17: every endpoint × every persona × every status/visibility, against an oracle written
/// from docs/product.md#visibility-and-access independently of the server's `Access` rules.
@Suite struct AuthorizationMatrixTests {
    enum Stage: String, CaseIterable { case draft, published, publishedWithPending }

    struct Config: CustomStringConvertible {
        var stage: Stage
        var visibility: Visibility
        var description: String { "\(stage.rawValue)/\(visibility.rawValue)" }
    }

    static let workflowActions = ["submit", "withdraw", "delete", "restore"]
    static let configs = Stage.allCases.flatMap { s in Visibility.allCases.map { Config(stage: s, visibility: $0) } }
    static let personas: [String?] = [nil] + TestEnv.personas.map(\.name)
    static let orgOf: [String: String] = Dictionary(uniqueKeysWithValues: TestEnv.personas.map { ($0.name, $0.org) })

    // MARK: the oracle

    /// Owner, the owner's organization's reviewers, and admins see everything of a resource.
    static func privileged(_ p: String?) -> Bool { p == "owner" || p == "reviewerA" || p == "admin" }

    static func sees(_ p: String?, _ c: Config) -> Bool {
        if privileged(p) { return true }
        guard c.stage != .draft else { return false }
        switch c.visibility {
        case .public: return true  // anonymous reads are allowed by default
        case .organization: return p.map { orgOf[$0] == "A" } ?? false
        case .private: return false
        }
    }

    static func expectedEdit(_ p: String?, _ c: Config) -> Int {
        guard let p else { return 401 }
        guard sees(p, c) else { return 404 }
        return p == "owner" || p == "admin" ? 200 : 403
    }

    static func expectedPublish(_ p: String?, _ c: Config) -> Int {
        guard let p else { return 401 }
        guard sees(p, c) else { return 404 }
        guard p == "reviewerA" || p == "admin" else { return 403 }
        return c.stage == .published ? 409 : 200
    }

    /// Workflow actions (docs/product.md#review-workflow): submit (owner, admin), withdraw (owner, the
    /// organization's reviewers, admin), delete (owner, admin), restore (owner, admin).
    static func expectedAction(_ action: String, _ p: String?, _ c: Config) -> Int {
        guard let p else { return 401 }
        guard sees(p, c) else { return 404 }
        switch action {
        case "submit":
            guard p == "owner" || p == "admin" else { return 403 }
            return c.stage == .published ? 409 : 200
        case "withdraw":
            guard p == "owner" || p == "reviewerA" || p == "admin" else { return 403 }
            return c.stage == .draft ? 409 : 200
        case "delete": return p == "owner" || p == "admin" ? 204 : 403
        default: return p == "owner" || p == "admin" ? 201 : 403  // restore
        }
    }

    // MARK: fixtures

    static func makeResource(_ env: TestEnv, _ c: Config, blob: BlobInfo) throws -> String {
        let catalog = env.services.catalog
        let owner = env.principals["owner"]!
        var m = try MetadataValidator.validate(
            ValidationFixtures.object(visibility: c.visibility),
            lookupMajor: { _ in MajorInfo(code: "520601", educationLevel: .higherVocational, isMajor: true) }
        ).get()
        let file = NewFile(name: "v.mp4", sha256: blob.sha256, size: blob.size, mediaType: "video/mp4", role: .primary)
        let id = try catalog.createResource(owner: owner, metadata: m, files: [file], changeNote: "").state.id
        if c.stage != .draft { _ = try catalog.publish(id: id, authorize: { _ in }) }
        if c.stage == .publishedWithPending {
            m.title = "待审核的修改"
            _ = try catalog.saveVersion(id: id, by: owner, expectedVersion: nil, changeNote: "pending", authorize: { _ in }) { v in
                (m, v.files.map(NewFile.init))
            }
        }
        return id
    }

    @Test func resourceEndpointsFollowTheRules() async throws {
        let env = try TestEnv()
        let blob = try await SampleFiles.store(Fixtures.video(2048), in: env.services.blobs)
        var shared: [(Config, String)] = []
        for c in Self.configs { shared.append((c, try Self.makeResource(env, c, blob: blob))) }
        // Fresh resources for each state-changing check.
        var fresh: [String: String] = [:]
        for c in Self.configs {
            for p in Self.personas {
                for action in ["patch", "files", "publish"] + Self.workflowActions {
                    fresh["\(c)|\(p ?? "anonymous")|\(action)"] = try Self.makeResource(env, c, blob: blob)
                }
            }
        }
        let fixedFresh = fresh
        let sharedResources = shared
        let violations = try await Violations()
        try await env.test { client in
            for p in Self.personas {
                let who = p ?? "anonymous"
                // Every page of the listing; the total must count exactly what the pages hold.
                var listed = Set<String>()
                var total = -1
                for page in 1...20 {
                    let list = try await client.execute(uri: "/v1/resources?pageSize=100&page=\(page)", method: .get, headers: env.auth(p))
                    let ids = ((list.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
                    total = list.json["total"] as? Int ?? -1
                    if ids.isEmpty { break }
                    listed.formUnion(ids)
                }
                await violations.check(total == listed.count, "\(who) list total \(total) != \(listed.count) listed")
                for (c, id) in sharedResources {
                    let seen = Self.sees(p, c)
                    let code = seen ? 200 : 404
                    await violations.check(listed.contains(id) == seen, "\(who) list \(c): listed=\(listed.contains(id))")
                    let reads: [(String, HTTPRequest.Method, Int)] = [
                        ("/v1/resources/\(id)", .get, code), ("/v1/resources/\(id)/versions", .get, code),
                        ("/v1/resources/\(id)/versions/1", .get, code),
                        ("/v1/resources/\(id)/versions/2", .get, c.stage == .publishedWithPending && Self.privileged(p) ? 200 : 404),
                        ("/v1/resources/\(id)/files/v.mp4", .get, code), ("/v1/resources/\(id)/files/v.mp4", .head, code),
                        ("/v1/resources/\(id)/versions/1/files/v.mp4", .get, code),
                        ("/v1/resources/\(id)/versions/2/files/v.mp4", .get, c.stage == .publishedWithPending && Self.privileged(p) ? 200 : 404),
                        ("/v1/resources/\(id)/versions/1/diff/1", .get, code),
                        ("/v1/resources/\(id)/versions/1/diff/2", .get, c.stage == .publishedWithPending && Self.privileged(p) ? 200 : 404),
                        ("/v1/resources/\(id)/downloads", .get, code),
                    ]
                    for (uri, method, expected) in reads {
                        let r = try await client.execute(uri: uri, method: method, headers: env.auth(p))
                        await violations.check(Int(r.status.code) == expected, "\(who) \(method) \(uri) [\(c)]: \(r.status.code), expected \(expected)")
                    }
                    if seen {
                        let r = try await client.execute(uri: "/v1/resources/\(id)", method: .get, headers: env.auth(p))
                        let expectedVersion = c.stage == .publishedWithPending && !Self.privileged(p) ? 1 : (c.stage == .publishedWithPending ? 2 : 1)
                        await violations.check(r.json["version"] as? Int == expectedVersion, "\(who) sees version \(r.json["version"] ?? "nil") of \(c)")
                    }
                    // State-changing actions, each on its own fresh copy of this configuration.
                    let patchId = fixedFresh["\(c)|\(who)|patch"]!
                    var h = env.auth(p)
                    h[.contentType] = "application/json"
                    var r = try await client.execute(uri: "/v1/resources/\(patchId)", method: .patch, headers: h, body: Fixtures.json(["title": "改"]))
                    await violations.check(Int(r.status.code) == Self.expectedEdit(p, c), "\(who) PATCH [\(c)]: \(r.status.code)")

                    let filesId = fixedFresh["\(c)|\(who)|files"]!
                    var fh = env.auth(p)
                    fh[.contentType] = Fixtures.multipartType
                    r = try await client.execute(
                        uri: "/v1/resources/\(filesId)/files", method: .post, headers: fh,
                        body: Fixtures.multipart([.init(name: "file", filename: "讲义.pdf", body: Fixtures.pdf)]))
                    await violations.check(Int(r.status.code) == Self.expectedEdit(p, c), "\(who) POST files [\(c)]: \(r.status.code)")

                    let pubId = fixedFresh["\(c)|\(who)|publish"]!
                    r = try await client.execute(uri: "/v1/resources/\(pubId)/publish", method: .post, headers: env.auth(p))
                    await violations.check(Int(r.status.code) == Self.expectedPublish(p, c), "\(who) publish [\(c)]: \(r.status.code)")

                    for action in Self.workflowActions {
                        let actionId = fixedFresh["\(c)|\(who)|\(action)"]!
                        let (uri, method): (String, HTTPRequest.Method) =
                            switch action {
                            case "delete": ("/v1/resources/\(actionId)", .delete)
                            case "restore": ("/v1/resources/\(actionId)/versions/1/restore", .post)
                            default: ("/v1/resources/\(actionId)/\(action)", .post)
                            }
                        r = try await client.execute(uri: uri, method: method, headers: env.auth(p))
                        let expected = Self.expectedAction(action, p, c)
                        await violations.check(Int(r.status.code) == expected, "\(who) \(action) [\(c)]: \(r.status.code), expected \(expected)")
                    }
                }
            }
        }
        let found = await violations.list
        #expect(found.isEmpty, "\(found.count) violations, e.g. \(found.prefix(10))")
        let checks = await violations.count
        #expect(checks > 1000)
    }

    @Test func accountAndUploadEndpointsFollowTheRules() async throws {
        let env = try TestEnv()
        let violations = try await Violations()
        let readerB = env.principals["readerB"]!.userId
        try await env.test { client in
            for p in Self.personas {
                let who = p ?? "anonymous"
                let role = p.flatMap { name in TestEnv.personas.first { $0.name == name }?.role }
                let author = role == .teacher || role == .reviewer || role == .admin
                let admin = role == .admin
                func expect(_ uri: String, _ method: HTTPRequest.Method, _ contentType: String? = nil, _ body: ByteBuffer? = nil, _ expected: Int) async throws
                {
                    var h = env.auth(p)
                    if let contentType { h[.contentType] = contentType }
                    let r = try await client.execute(uri: uri, method: method, headers: h, body: body)
                    await violations.check(Int(r.status.code) == expected, "\(who) \(method) \(uri): \(r.status.code), expected \(expected)")
                    if r.status.code >= 400 { await violations.check(r.isProblem, "\(who) \(method) \(uri): not a problem document") }
                }
                try await expect("/healthz", .get, nil, nil, 200)
                try await expect("/v1/majors", .get, nil, nil, 200)
                try await expect("/v1/organizations", .get, nil, nil, 200)
                try await expect("/v1/me", .get, nil, nil, p == nil ? 401 : 200)
                try await expect("/v1/tokens", .get, nil, nil, p == nil ? 401 : 200)
                try await expect("/v1/users", .get, nil, nil, p == nil ? 401 : admin ? 200 : 403)
                try await expect(
                    "/v1/organizations", .post, "application/json", Fixtures.json(["name": "新学校\(who)", "kind": "enterprise"]),
                    p == nil ? 401 : admin ? 201 : 403)
                try await expect(
                    "/v1/users", .post, "application/json", Fixtures.json(["organizationId": env.orgB, "name": "新人", "role": "reader"]),
                    p == nil ? 401 : admin ? 201 : 403)
                try await expect(
                    "/v1/tokens", .post, "application/json", Fixtures.json(["userId": readerB, "label": "by \(who)"]),
                    p == nil ? 401 : (admin || p == "readerB") ? 201 : 403)
                let victim = try env.services.catalog.issueToken(userId: readerB, label: "victim", expiresAt: nil)
                try await expect("/v1/tokens/\(victim.info.id)", .delete, nil, nil, p == nil ? 401 : (admin || p == "readerB") ? 204 : 404)
                try await expect("/v1/reviews", .get, nil, nil, p == nil ? 401 : (role == .reviewer || admin) ? 200 : 403)
                try await expect("/v1/audit", .get, nil, nil, p == nil ? 401 : admin ? 200 : 403)
                try await expect("/v1/audit/verify", .get, nil, nil, p == nil ? 401 : admin ? 200 : 403)
                try await expect("/v1/admin/resources/deleted", .get, nil, nil, p == nil ? 401 : admin ? 200 : 403)
                // Sync to the national platform: admins only (not configured here, so run is 409).
                try await expect("/v1/admin/sync/status", .get, nil, nil, p == nil ? 401 : admin ? 200 : 403)
                try await expect("/v1/admin/sync/entries", .get, nil, nil, p == nil ? 401 : admin ? 200 : 403)
                try await expect("/v1/admin/sync/entries/\(Identifiers.uuidV7())", .get, nil, nil, p == nil ? 401 : admin ? 404 : 403)
                try await expect("/v1/admin/sync/dry-run", .get, nil, nil, p == nil ? 401 : admin ? 200 : 403)
                try await expect(
                    "/v1/admin/sync/select", .post, "application/json", Fixtures.json(["ids": [Identifiers.uuidV7()]]), p == nil ? 401 : admin ? 200 : 403)
                try await expect("/v1/admin/sync/retry", .post, "application/json", Fixtures.json(["dead": true]), p == nil ? 401 : admin ? 200 : 403)
                try await expect("/v1/admin/sync/run", .post, nil, nil, p == nil ? 401 : admin ? 409 : 403)
                try await expect("/v1/blobs", .post, "application/octet-stream", ByteBuffer(bytes: Fixtures.video(300)), p == nil ? 401 : author ? 201 : 403)
                try await expect(
                    "/v1/resources", .post, Fixtures.multipartType, Fixtures.createBody(files: [("v.mp4", Fixtures.video(300))]),
                    p == nil ? 401 : author ? 201 : 403)
            }
        }
        let found = await violations.list
        #expect(found.isEmpty, "\(found.count) violations, e.g. \(found.prefix(10))")
    }
}

actor Violations {
    var list: [String] = []
    var count = 0
    init() async throws {}
    func check(_ ok: Bool, _ what: @autoclosure () -> String) {
        count += 1
        if !ok { list.append(what()) }
    }
}

enum ValidationFixtures {
    static func object(visibility: Visibility) -> [String: JSONValue] {
        SampleMetadata.object(
            title: "矩阵测试资源", description: "授权矩阵", keywords: ["测试"], resourceType: .video, copyrightHolder: "学院", visibility: visibility)
    }
}
