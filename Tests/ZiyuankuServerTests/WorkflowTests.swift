import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer

@testable import ZiyuankuStore

/// Versions, the review workflow, soft deletion, download counts and the audit log
/// (docs/product.md#resources-and-versions, #review-workflow, #audit-log, #library-report), through the HTTP API.
@Suite struct WorkflowTests {
    static func patch(
        _ client: any TestClientProtocol, _ env: TestEnv, _ id: String, _ fields: [String: Any], as persona: String = "owner", ifMatch: String? = nil
    )
        async throws -> TestResponse
    {
        var h = env.auth(persona)
        h[.contentType] = "application/json"
        if let ifMatch { h[.ifMatch] = ifMatch }
        return try await client.execute(uri: "/v1/resources/\(id)", method: .patch, headers: h, body: Fixtures.json(fields))
    }

    static func act(
        _ client: any TestClientProtocol, _ env: TestEnv, _ id: String, _ action: String, as persona: String, reason: String? = nil
    )
        async throws -> TestResponse
    {
        var h = env.auth(persona)
        var body: ByteBuffer?
        if let reason {
            h[.contentType] = "application/json"
            body = Fixtures.json(["reason": reason])
        }
        return try await client.execute(uri: "/v1/resources/\(id)/\(action)", method: .post, headers: h, body: body)
    }

    static func get(_ client: any TestClientProtocol, _ env: TestEnv, _ path: String, as persona: String?) async throws -> TestResponse {
        try await client.execute(uri: path, method: .get, headers: env.auth(persona))
    }

    /// The issue's scenario, step by step.
    @Test func createEditReviewRejectFixApproveRestoreAndAudit() async throws {
        let env = try TestEnv()
        try await env.test { client in
            // v1, then an edit: v2.
            let id = try await client.createResource(env, metadata: Fixtures.metadata(["title": "静脉输液操作", "visibility": "public"]))["id"] as! String
            var r = try await Self.patch(client, env, id, ["title": "静脉输液操作规范", "changeNote": "标题补全"])
            #expect(r.status == .ok && r.json["version"] as? Int == 2)
            // Submit; a reviewer of another school may not review it, the owner may not approve.
            r = try await Self.act(client, env, id, "submit", as: "owner")
            #expect(r.status == .ok && r.json["status"] as? String == "inReview")
            #expect(try await Self.act(client, env, id, "approve", as: "reviewerB").status == .notFound)
            #expect(try await Self.act(client, env, id, "approve", as: "owner").status == .forbidden)
            // Editing while in review is refused with what is allowed instead.
            r = try await Self.patch(client, env, id, ["title": "改"])
            #expect(r.status == .conflict && (r.json["allowedActions"] as? [String]) == ["recall"])
            // …and new files are refused before their bytes are stored.
            let blobsBefore = env.blobFiles().count
            var fh = env.auth("owner")
            fh[.contentType] = Fixtures.multipartType
            r = try await client.execute(
                uri: "/v1/resources/\(id)/files", method: .post, headers: fh,
                body: Fixtures.multipart([.init(name: "file", filename: "字幕.pdf", body: Fixtures.pdf)]))
            #expect(r.status == .conflict && env.blobFiles().count == blobsBefore && env.tmpFiles().isEmpty)
            // The queue shows it to reviewers of the school only.
            r = try await Self.get(client, env, "/v1/reviews", as: "reviewerA")
            #expect((r.json["items"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            r = try await Self.get(client, env, "/v1/reviews", as: "reviewerB")
            #expect((r.json["items"] as? [[String: Any]])?.isEmpty == true)
            #expect(try await Self.get(client, env, "/v1/reviews", as: "owner").status == .forbidden)
            // Reject: a reason is required.
            r = try await Self.act(client, env, id, "reject", as: "reviewerA")
            #expect(r.status == .unprocessableContent)
            r = try await Self.act(client, env, id, "reject", as: "reviewerA", reason: "缺少操作视频的字幕文件")
            #expect(r.status == .ok && r.json["status"] as? String == "rejected")
            #expect((r.json["review"] as? [String: Any])?["reason"] as? String == "缺少操作视频的字幕文件")
            // Readers see nothing yet; an illegal transition says what is allowed.
            #expect(try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB").status == .notFound)
            r = try await Self.act(client, env, id, "approve", as: "reviewerA")
            #expect(r.status == .conflict && r.json["currentStatus"] as? String == "rejected")
            #expect(Set((r.json["allowedActions"] as? [String]) ?? []) == ["publish"])
            // Fix (v3), resubmit, approve.
            r = try await Self.patch(client, env, id, ["description": "含字幕的静脉输液操作示范", "changeNote": "按审核意见补充"])
            #expect(r.status == .ok && r.json["version"] as? Int == 3 && r.json["status"] as? String == "draft")
            #expect(try await Self.act(client, env, id, "submit", as: "owner").status == .ok)
            r = try await Self.act(client, env, id, "approve", as: "reviewerA")
            #expect(r.status == .ok && r.json["status"] as? String == "published" && r.json["publishedVersion"] as? Int == 3)
            // v4: the reader keeps seeing v3 (and its status as published) until v4 is approved.
            r = try await Self.patch(client, env, id, ["title": "静脉输液操作规范（第二版）"])
            #expect(r.json["version"] as? Int == 4)
            r = try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB")
            #expect(r.json["version"] as? Int == 3 && r.json["status"] as? String == "published" && r.json["title"] as? String == "静脉输液操作规范")
            r = try await Self.get(client, env, "/v1/resources?q=\(percentEncoded("第二版"))", as: "readerB")
            #expect(r.json["total"] as? Int == 0, "search indexes what readers see")
            #expect(try await Self.get(client, env, "/v1/resources/\(id)/versions/4", as: "readerB").status == .notFound)
            // A reader cannot find out that a newer version is being drafted.
            r = try await Self.get(client, env, "/v1/resources?status=draft", as: "readerB")
            #expect(r.json["total"] as? Int == 0)
            r = try await Self.get(client, env, "/v1/resources?status=draft", as: nil)
            #expect(r.json["total"] as? Int == 0)
            r = try await Self.get(client, env, "/v1/resources?status=published", as: "readerB")
            #expect(r.json["total"] as? Int == 1)
            r = try await Self.get(client, env, "/v1/resources?status=draft", as: "reviewerA")
            #expect(r.json["total"] as? Int == 1)
            #expect(try await Self.act(client, env, id, "submit", as: "owner").status == .ok)
            r = try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB")
            #expect(r.json["version"] as? Int == 3)
            #expect(try await Self.act(client, env, id, "approve", as: "reviewerA").status == .ok)
            r = try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB")
            #expect(r.json["version"] as? Int == 4)
            r = try await Self.get(client, env, "/v1/resources?q=\(percentEncoded("第二版"))", as: "readerB")
            #expect(r.json["total"] as? Int == 1)
            // Readers get the published versions only (3 and 4), never the rejected v2 or the draft v1.
            r = try await Self.get(client, env, "/v1/resources/\(id)/versions", as: "readerB")
            #expect(((r.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["number"] as? Int } == [3, 4])
            for n in [1, 2] {
                #expect(try await Self.get(client, env, "/v1/resources/\(id)/versions/\(n)", as: "readerB").status == .notFound)
                #expect(try await Self.get(client, env, "/v1/resources/\(id)/versions/\(n)/files/\(percentEncoded("康复训练示范.mp4"))", as: nil).status == .notFound)
                #expect(try await Self.get(client, env, "/v1/resources/\(id)/versions/\(n)/diff/4", as: "readerB").status == .notFound)
            }
            // Restoring is the owner's: a reader learns nothing about which versions exist.
            var rh = env.auth("readerB")
            rh[.ifMatch] = "\"v4\""
            #expect(try await client.execute(uri: "/v1/resources/\(id)/versions/2/restore", method: .post, headers: rh).status == .forbidden)
            #expect(try await client.execute(uri: "/v1/resources/\(id)/versions/99/restore", method: .post, headers: rh).status == .forbidden)
            // Restore v2 as v5 (a stale If-Match is refused first).
            var h = env.auth("owner")
            h[.ifMatch] = "\"v3\""
            r = try await client.execute(uri: "/v1/resources/\(id)/versions/2/restore", method: .post, headers: h)
            #expect(r.status == .preconditionFailed)
            h[.ifMatch] = "\"v4\""
            r = try await client.execute(uri: "/v1/resources/\(id)/versions/2/restore", method: .post, headers: h)
            #expect(r.status == .created && r.json["version"] as? Int == 5 && r.json["title"] as? String == "静脉输液操作规范")
            // Old versions' files stay downloadable to a reader (up to the published one).
            #expect(try await Self.get(client, env, "/v1/resources/\(id)/versions/3/files/\(percentEncoded("康复训练示范.mp4"))", as: "readerB").status == .ok)
            // The diff between 3 and 5: the description differs, the title is equal, files equal.
            r = try await Self.get(client, env, "/v1/resources/\(id)/versions/3/diff/5", as: "owner")
            let changes = (r.json["metadata"] as? [[String: Any]]) ?? []
            #expect(changes.map { $0["field"] as? String } == ["description"])
            #expect(changes.first?["from"] as? String == "含字幕的静脉输液操作示范")
            #expect(changes.first?["to"] as? String == "上肢康复训练的示范视频")
            #expect((r.json["files"] as? [Any])?.isEmpty == true)
            r = try await Self.get(client, env, "/v1/resources/\(id)/versions/4/diff/5", as: "owner")
            #expect(Set(((r.json["metadata"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }) == ["title", "description"])
            // The audit log shows every step, in order, and verifies.
            r = try await Self.get(client, env, "/v1/audit?resource=\(id)&limit=100", as: "admin")
            let actions = ((r.json["items"] as? [[String: Any]]) ?? []).reversed().compactMap { $0["action"] as? String }
            #expect(
                actions == [
                    "resource.create", "resource.version", "resource.submit", "resource.reject", "resource.version", "resource.submit",
                    "resource.approve", "resource.version", "resource.submit", "resource.approve", "resource.restore",
                    // The reader's download of v3, no longer the live version, is audited.
                    "resource.download",
                ], "\(actions)")
            #expect(try await Self.get(client, env, "/v1/audit", as: "owner").status == .forbidden)
            r = try await Self.get(client, env, "/v1/audit/verify", as: "admin")
            #expect(r.json["ok"] as? Bool == true, "\(r.json)")
        }
        #expect(try env.services.catalog.verifyAudit().ok)
    }

    @Test func withdrawRecallDeleteUndeleteAndPurge() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let id = try await client.createResource(env, metadata: Fixtures.metadata(["title": "撤回测试"]))["id"] as! String
            #expect(try await Self.act(client, env, id, "withdraw", as: "owner").status == .conflict, "nothing published to withdraw")
            #expect(try await Self.act(client, env, id, "submit", as: "owner").status == .ok)
            var r = try await Self.act(client, env, id, "recall", as: "owner")
            #expect(r.status == .ok && r.json["status"] as? String == "draft")
            try await client.publish(env, id, as: "reviewerA")
            #expect(try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB").status == .ok)
            // A reader may not withdraw; the owner may.
            #expect(try await Self.act(client, env, id, "withdraw", as: "readerB").status == .forbidden)
            r = try await Self.act(client, env, id, "withdraw", as: "owner")
            #expect(r.status == .ok && r.json["status"] as? String == "withdrawn" && r.json["publishedVersion"] is NSNull)
            #expect(try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB").status == .notFound)
            #expect(try await Self.get(client, env, "/v1/resources/\(id)/versions/1/files/\(percentEncoded("康复训练示范.mp4"))", as: "readerB").status == .notFound)
            // Re-publish.
            try await client.publish(env, id, as: "reviewerA")
            #expect(try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB").status == .ok)
            // Withdrawing a published resource whose newer version is in review keeps that review.
            #expect(try await Self.patch(client, env, id, ["title": "撤回测试 二"]).status == .ok)
            #expect(try await Self.act(client, env, id, "submit", as: "owner").status == .ok)
            r = try await Self.act(client, env, id, "withdraw", as: "reviewerA")
            #expect(r.status == .ok && r.json["status"] as? String == "inReview" && r.json["publishedVersion"] is NSNull)
            #expect(try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB").status == .notFound)
            r = try await Self.get(client, env, "/v1/reviews", as: "reviewerA")
            #expect(((r.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String } == [id])
            #expect(try await Self.act(client, env, id, "approve", as: "reviewerA").status == .ok)
            // Only the newly approved version is readable; the withdrawn v1 stays down.
            r = try await Self.get(client, env, "/v1/resources/\(id)/versions", as: "readerB")
            #expect(((r.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["number"] as? Int } == [2])
            // Soft delete: another teacher may not; the owner may; hidden everywhere.
            #expect(try await client.execute(uri: "/v1/resources/\(id)", method: .delete, headers: env.auth("teacherA")).status == .forbidden)
            #expect(try await client.execute(uri: "/v1/resources/\(id)", method: .delete, headers: env.auth("owner")).status == .noContent)
            for who in ["owner", "admin", "readerB"] {
                #expect(try await Self.get(client, env, "/v1/resources/\(id)", as: who).status == .notFound)
            }
            r = try await Self.get(client, env, "/v1/resources?q=\(percentEncoded("撤回测试"))", as: "admin")
            #expect(r.json["total"] as? Int == 0)
            // Purging needs it deleted; admins list, restore, delete again and purge.
            r = try await Self.get(client, env, "/v1/admin/resources/deleted", as: "admin")
            #expect(((r.json["items"] as? [[String: Any]]) ?? []).map { $0["id"] as? String } == [id])
            #expect(try await Self.get(client, env, "/v1/admin/resources/deleted", as: "owner").status == .forbidden)
            r = try await client.execute(uri: "/v1/admin/resources/\(id)/undelete", method: .post, headers: env.auth("admin"))
            #expect(r.status == .ok)
            #expect(try await Self.get(client, env, "/v1/resources/\(id)", as: "readerB").status == .ok)
            #expect(try await client.execute(uri: "/v1/admin/resources/\(id)", method: .delete, headers: env.auth("admin")).status == .conflict)
            #expect(try await client.execute(uri: "/v1/resources/\(id)", method: .delete, headers: env.auth("admin")).status == .noContent)
            #expect(try await client.execute(uri: "/v1/admin/resources/\(id)", method: .delete, headers: env.auth("admin")).status == .noContent)
            r = try await client.execute(uri: "/v1/admin/resources/\(id)/undelete", method: .post, headers: env.auth("admin"))
            #expect(r.status == .notFound)
            // The blob stays for gc; the audit log keeps the story and verifies.
            #expect(env.blobFiles().count == 1)
            r = try await Self.get(client, env, "/v1/audit?resource=\(id)", as: "admin")
            let actions = ((r.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["action"] as? String }
            #expect(actions.first == "resource.purge" && actions.contains("resource.undelete") && actions.contains("resource.withdraw"))
        }
        #expect(try env.services.catalog.verifyAudit().ok)
    }

    /// Two editors of one resource: the second, with a stale If-Match, gets 412, never a silent overwrite.
    @Test func concurrentEditorsNeverOverwriteSilently() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let id = try await client.createResource(env)["id"] as! String
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for k in 0..<8 {
                    group.addTask { Int(try await Self.patch(client, env, id, ["title": "并发编辑 \(k)"], ifMatch: "\"v1\"").status.code) }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(results.filter { $0 == 200 }.count == 1, "\(results)")
            #expect(results.filter { $0 == 412 }.count == 7, "\(results)")
            let r = try await Self.get(client, env, "/v1/resources/\(id)/versions", as: "owner")
            #expect((r.json["items"] as? [Any])?.count == 2)
        }
    }

    /// A download counts once per client and file within 30 s, per day; non-public downloads are audited.
    @Test func downloadsAreCountedOncePerClientAndAudited() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let id = try await client.createResource(env, metadata: Fixtures.metadata(["visibility": "organization"]))["id"] as! String
            try await client.publish(env, id)
            let path = "/v1/resources/\(id)/files/\(percentEncoded("康复训练示范.mp4"))"
            for _ in 0..<3 { #expect(try await Self.get(client, env, path, as: "readerA").status == .ok) }
            var h = env.auth("teacherA")
            h[.range] = "bytes=100-199"
            #expect(try await client.execute(uri: path, method: .get, headers: h).status == .partialContent)
            #expect(try await Self.get(client, env, path, as: "teacherA").status == .ok)
            try env.services.downloads.counter.flush()
            var r = try await Self.get(client, env, "/v1/resources/\(id)/downloads", as: "owner")
            #expect(r.json["total"] as? Int == 2, "\(r.json)")
            let days = (r.json["days"] as? [[String: Any]]) ?? []
            #expect(days.count == 1 && days.first?["count"] as? Int == 2 && days.first?["day"] as? String == DownloadCounter.day(Date()))
            for bad in ["2025-13-01", "2025-02-29", "2025-1-1", "二〇二五", "2025-12-01T00:00"] {
                r = try await Self.get(client, env, "/v1/resources/\(id)/downloads?from=\(percentEncoded(bad))", as: "owner")
                #expect(r.status == .badRequest || r.status == .unprocessableContent, "from=\(bad): \(r.status)")
            }
            #expect(try await Self.get(client, env, "/v1/resources/\(id)/downloads?from=2024-02-29", as: "owner").status == .ok)
            r = try await Self.get(client, env, "/v1/audit?action=resource.download&resource=\(id)", as: "admin")
            #expect((r.json["items"] as? [Any])?.count == 2)
        }
        // The 30-second window itself.
        let counter = DownloadCounter(catalog: env.services.catalog)
        let t0 = Date()
        #expect(counter.record(resourceId: "r", file: "a", client: "c", now: t0) == (true, true))
        #expect(counter.record(resourceId: "r", file: "a", client: "c", now: t0.addingTimeInterval(29)) == (false, false))
        #expect(counter.record(resourceId: "r", file: "b", client: "c", now: t0.addingTimeInterval(29)) == (true, true))
        #expect(counter.record(resourceId: "r", file: "a", client: "d", now: t0.addingTimeInterval(29)) == (true, true))
        #expect(counter.record(resourceId: "r", file: "a", client: "c", now: t0.addingTimeInterval(31)) == (true, true))
        // A range not from the start is seen (and audited when not public) but not counted; the
        // first fetch from the start within the window is.
        #expect(counter.record(resourceId: "r", file: "z", client: "c", fromStart: false, now: t0) == (true, false))
        #expect(counter.record(resourceId: "r", file: "z", client: "c", fromStart: true, now: t0.addingTimeInterval(1)) == (false, true))
        #expect(counter.record(resourceId: "r", file: "z", client: "c", fromStart: true, now: t0.addingTimeInterval(2)) == (false, false))
        // A flood of distinct clients stays bounded.
        for i in 0..<450_000 { counter.record(resourceId: "r", file: "a", client: "flood \(i)", now: t0.addingTimeInterval(40)) }
        #expect(counter.rememberedCount <= 2 * 200_000)
        // 2025-12-01 00:00 in China is 2025-11-30 16:00 UTC.
        #expect(DownloadCounter.day(Date(timeIntervalSince1970: 1764518400)) == "2025-12-01")
        #expect(DownloadCounter.day(Date(timeIntervalSince1970: 1764518400 - 1)) == "2025-11-30")
    }
}

/// R20: tampering with the audit log behind the server's back is found, every time.
@Suite struct AuditTamperTests {
    /// SQL that replaces an entry's details and gives it a hash that matches its new contents.
    static func rehashed(seq: Int64, details: String, in env: TestEnv) throws -> String {
        let e = try #require(try env.services.catalog.auditEntries(AuditQuery()).first { $0.seq == seq })
        let hash = AuditEntry.hash(
            AuditEntry.hashInput(
                seq: e.seq, at: e.at, actorId: e.actorId, action: e.action, resourceId: e.resourceId, version: e.version, details: details, prevHash: e.prevHash
            ))
        return "UPDATE audit_log SET details = '\(details)', hash = '\(hash)' WHERE seq = \(seq)"
    }

    @Test func tenTamperingsAreFound() async throws {
        let env = try TestEnv()
        try await env.test { client in
            for k in 0..<4 {
                let id = try await client.createResource(env, metadata: Fixtures.metadata(["title": "审计 \(k)"]))["id"] as! String
                try await client.publish(env, id)
            }
        }
        let catalog = env.services.catalog
        #expect(try catalog.verifyAudit().ok)
        let count = try catalog.auditEntries(AuditQuery()).count
        #expect(count >= 15)
        let path = env.services.root.catalogPath
        let rehash = try Self.rehashed(seq: 8, details: "{}", in: env)
        // Each tampering runs on a fresh copy of the catalog, as someone with the file would.
        let tamperings: [(String, String)] = [
            ("edit details", "UPDATE audit_log SET details = '{\"to\":\"draft\"}' WHERE seq = 5"),
            ("edit action", "UPDATE audit_log SET action = 'resource.withdraw' WHERE seq = 7"),
            ("edit actor", "UPDATE audit_log SET actor_id = '00000000-0000-7000-8000-000000000000' WHERE seq = 3"),
            ("edit time", "UPDATE audit_log SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 9"),
            ("delete a middle entry", "DELETE FROM audit_log WHERE seq = 6"),
            ("delete the last entry", "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)"),
            ("delete the first entry", "DELETE FROM audit_log WHERE seq = 1"),
            (
                "swap two entries",
                """
                UPDATE audit_log SET seq = 999999 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = 999999
                """
            ),
            // The forger recomputes the edited entry's own hash correctly: the next entry's link breaks.
            ("edit and re-hash one entry", rehash),
            ("renumber the tail", "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 10"),
        ]
        var found = 0
        for (name, sql) in tamperings {
            let copy = env.dir.appendingPathComponent("tamper-\(found).sqlite").path
            let src = try DatabaseQueue(
                path: path,
                configuration: {
                    var c = Configuration()
                    c.readonly = true
                    return c
                }())
            let dst = try DatabaseQueue(path: copy)
            try src.backup(to: dst)
            try await dst.write { db in
                try db.execute(sql: "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
                try db.execute(sql: sql)
            }
            try dst.close()
            try src.close()
            let tampered = try Catalog(path: copy)
            let v = try tampered.verifyAudit()
            #expect(!v.ok, "\(name) was not found")
            if !v.ok { found += 1 }
            print("R20 \(name): \(v.ok ? "NOT FOUND" : "found at entry \(v.brokenAt ?? 0): \(v.problem ?? "")")")
        }
        print("R20: \(found)/\(tamperings.count) tamperings found")
        #expect(found == tamperings.count)
        // The untouched original still verifies, and the triggers refuse edits through SQL.
        #expect(try catalog.verifyAudit().ok)
        let raw = try DatabaseQueue(path: path)
        await #expect(throws: (any Error).self) { try await raw.write { try $0.execute(sql: "UPDATE audit_log SET action = 'x' WHERE seq = 1") } }
        await #expect(throws: (any Error).self) { try await raw.write { try $0.execute(sql: "DELETE FROM audit_log WHERE seq = 1") } }
    }
}
