import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore

/// Instant upload (秒传): bytes the library already has can be attached without sending them —
/// but only when the caller may already read a resource that uses them.
@Suite struct InstantUploadTests {
    static func lookup(_ client: any TestClientProtocol, _ env: TestEnv, _ body: [String: Any], as persona: String) async throws -> TestResponse {
        var h = env.auth(persona)
        h[.contentType] = "application/json"
        return try await client.execute(uri: "/v1/blobs/lookup", method: .post, headers: h, body: Fixtures.json(body))
    }

    static func createByDigest(_ client: any TestClientProtocol, _ env: TestEnv, sha: String, as persona: String) async throws -> TestResponse {
        var h = env.auth(persona)
        h[.contentType] = "application/json"
        var m = Fixtures.metadata(["title": "秒传引用"])
        m["files"] = [["sha256": sha, "name": "示范.mp4", "role": "primary"]]
        return try await client.execute(uri: "/v1/resources", method: .post, headers: h, body: Fixtures.json(m))
    }

    @Test func onlyBytesTheCallerMayReadCanBeAttachedWithoutSendingThem() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let publicVideo = Fixtures.video(5000, seed: 7)
            let privateVideo = Fixtures.video(5000, seed: 9)
            let pub = try await client.createResource(env, metadata: Fixtures.metadata(["title": "公开示范"]), files: [("示范.mp4", publicVideo)])
            try await client.publish(env, pub["id"] as! String)
            let draft = try await client.createResource(env, metadata: Fixtures.metadata(["title": "未发布"]), files: [("示范.mp4", privateVideo)])
            let pubSHA = ((pub["files"] as? [[String: Any]])?.first?["sha256"] as? String)!
            let privSHA = ((draft["files"] as? [[String: Any]])?.first?["sha256"] as? String)!

            // Someone else's draft: the same "no" as for bytes nobody has, and no attaching.
            var r = try await Self.lookup(client, env, ["sha256": privSHA, "size": privateVideo.count], as: "teacherB")
            #expect(r.status == .ok && r.json["available"] as? Bool == false)
            r = try await Self.lookup(client, env, ["sha256": String(repeating: "ab", count: 32), "size": 10], as: "teacherB")
            #expect(r.status == .ok && r.json["available"] as? Bool == false)
            #expect(try await Self.createByDigest(client, env, sha: privSHA, as: "teacherB").status == .unprocessableContent)
            // A published public file: yes, with the right size only, and then it attaches.
            r = try await Self.lookup(client, env, ["sha256": pubSHA, "size": publicVideo.count + 1], as: "teacherB")
            #expect(r.json["available"] as? Bool == false)
            #expect(try await Self.createByDigest(client, env, sha: pubSHA, as: "teacherB").status == .unprocessableContent)
            r = try await Self.lookup(client, env, ["sha256": pubSHA.uppercased(), "size": publicVideo.count], as: "teacherB")
            #expect(r.json["available"] as? Bool == true)
            r = try await Self.createByDigest(client, env, sha: pubSHA, as: "teacherB")
            #expect(r.status == .created, "\(String(buffer: r.body))")
            // The owner's reviewer may claim the draft's bytes (they can read it).
            r = try await Self.lookup(client, env, ["sha256": privSHA, "size": privateVideo.count], as: "reviewerA")
            #expect(r.json["available"] as? Bool == true)
            // Bytes of a version that was never published (rejected, then replaced) stay private
            // even though a later version is published.
            let secret = Fixtures.video(6000, seed: 11)
            let id = pub["id"] as! String
            var fh = env.auth("owner")
            fh[.contentType] = Fixtures.multipartType
            r = try await client.execute(
                uri: "/v1/resources/\(id)/files", method: .post, headers: fh,
                body: Fixtures.multipart([.init(name: "file", filename: "答案.mp4", contentType: "video/mp4", body: secret)]))
            #expect(r.status == .ok, "\(String(buffer: r.body))")
            let secretSHA = ((r.json["files"] as? [[String: Any]]) ?? []).first { $0["name"] as? String == "答案.mp4" }?["sha256"] as? String ?? ""
            #expect(try await client.execute(uri: "/v1/resources/\(id)/submit", method: .post, headers: env.auth("owner")).status == .ok)
            var rh = env.auth("reviewerA")
            rh[.contentType] = "application/json"
            #expect(
                try await client.execute(uri: "/v1/resources/\(id)/reject", method: .post, headers: rh, body: Fixtures.json(["reason": "含答案"])).status == .ok)
            #expect(try await client.execute(uri: "/v1/resources/\(id)/versions/1/restore", method: .post, headers: env.auth("owner")).status == .created)
            try await client.publish(env, id)
            r = try await Self.lookup(client, env, ["sha256": secretSHA, "size": secret.count], as: "teacherB")
            #expect(r.json["available"] as? Bool == false)
            // Readers cannot attach anything; bad input is a validation problem.
            #expect(try await Self.lookup(client, env, ["sha256": pubSHA, "size": publicVideo.count], as: "readerB").status == .forbidden)
            for bad: [String: Any] in [
                ["sha256": "xyz", "size": 1], ["sha256": pubSHA], ["sha256": pubSHA, "size": -1], ["sha256": pubSHA, "size": 1, "extra": 1],
            ] {
                #expect(try await Self.lookup(client, env, bad, as: "teacherB").status == .unprocessableContent, "\(bad)")
            }
        }
    }
}
