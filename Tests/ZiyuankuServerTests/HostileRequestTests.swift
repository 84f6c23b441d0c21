import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore

/// Issue 12's findings as a client sends them, through the real router (wire-level ones —
/// desync, slowloris, Transfer-Encoding, connection limits — are in Tests/process/hostile_wire.py).
@Suite struct HostileRequestTests {
    static let hugeGrapheme = "x.a" + String(repeating: "\u{0301}", count: 200)

    /// A public, published video; returns its id and its file's download path.
    static func publishedVideo(_ client: any TestClientProtocol, _ env: TestEnv, size: Int) async throws -> (id: String, path: String) {
        let created = try await client.createResource(env, files: [("示范.mp4", Fixtures.video(size))])
        let id = try #require(created["id"] as? String)
        try await client.publish(env, id)
        return (id, "/v1/resources/\(id)/files/\(percentEncoded("示范.mp4"))")
    }

    // Finding 1: an absurd If-Modified-Since (or If-Range) ended the process.
    @Test func absurdConditionalDatesAreIgnored() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let (_, path) = try await Self.publishedVideo(client, env, size: 5000)
            for date in ["Sun, 06 Nov -2147483648 08:49:37 GMT", "Sun, 06 Nov 99999 08:49:37 GMT", "Sun, 06 Nov 0000 08:49:37 GMT"] {
                var r = try await client.execute(uri: path, method: .get, headers: [.ifModifiedSince: date])
                #expect(r.status == .ok && r.body.readableBytes == 5000, "\(date)")
                r = try await client.execute(uri: path, method: .get, headers: [.ifRange: date, .range: "bytes=0-9"])
                #expect(r.status == .ok && r.body.readableBytes == 5000, "If-Range \(date): the range is ignored, the whole file sent")
            }
        }
    }

    // Finding 2: a filename that is one grapheme cluster of 600 bytes ended the process.
    @Test func aHugeGraphemeFilenameIsStoredShortened() async throws {
        let env = try TestEnv()
        try await env.test { client in
            // The multipart `file` part's filename.
            let created = try await client.createResource(env, files: [(Self.hugeGrapheme, Fixtures.video(3000))])
            let names = ((created["files"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
            #expect(names.count == 1 && names.allSatisfy { !$0.isEmpty && $0.utf8.count <= 255 }, "\(names)")
            // metadata.files[].name referencing uploaded bytes.
            var h = env.auth("owner")
            h[.contentType] = "application/octet-stream"
            var r = try await client.execute(uri: "/v1/blobs", method: .post, headers: h, body: ByteBuffer(bytes: Fixtures.video(2000, seed: 3)))
            let sha = try #require(r.json["sha256"] as? String)
            h[.contentType] = "application/json"
            var m = Fixtures.metadata(["title": "引用"])
            m["files"] = [["sha256": sha, "name": Self.hugeGrapheme, "role": "primary"]]
            r = try await client.execute(uri: "/v1/resources", method: .post, headers: h, body: Fixtures.json(m))
            #expect(r.status == .created || r.status == .unprocessableContent, "\(String(buffer: r.body))")
            // tus Upload-Metadata.
            var t = env.auth("owner")
            t[HTTPField.Name("Tus-Resumable")!] = "1.0.0"
            t[HTTPField.Name("Upload-Length")!] = "10"
            t[HTTPField.Name("Upload-Metadata")!] = "filename " + Data(Self.hugeGrapheme.utf8).base64EncodedString()
            r = try await client.execute(uri: "/v1/uploads", method: .post, headers: t)
            #expect(r.status == .created || r.status == .badRequest, "\(r.status)")
        }
    }

    // Finding 6: 450,000 bad keywords made a 39 MB answer.
    @Test func validationAnswersStaySmall() async throws {
        let env = try TestEnv()
        try await env.test { client in
            var h = env.auth("owner")
            h[.contentType] = "application/json"
            var m = Fixtures.metadata()
            m["keywords"] = Array(repeating: 1, count: 450_000)
            m["audience"] = Array(repeating: "nobody", count: 10_000)
            let r = try await client.execute(uri: "/v1/resources", method: .post, headers: h, body: Fixtures.json(m))
            #expect(r.status == .unprocessableContent)
            #expect(r.body.readableBytes < 16 * 1024, "\(r.body.readableBytes) bytes")
            #expect(r.errorFields.contains("keywords") && r.errorFields.contains("audience"), "\(r.errorFields)")
        }
    }

    // Finding 10: a version published while private stayed readable after the resource became public.
    @Test func oldVersionsKeepTheVisibilityTheyWerePublishedWith() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let created = try await client.createResource(
                env, metadata: Fixtures.metadata(["visibility": "private", "title": "内部版", "resourceType": "document"]),
                files: [("讲义.pdf", Fixtures.pdf)])
            let id = created["id"] as! String
            try await client.publish(env, id)
            var h = env.auth("owner")
            h[.contentType] = "application/json"
            var r = try await client.execute(
                uri: "/v1/resources/\(id)", method: .patch, headers: h,
                body: Fixtures.json(["visibility": "public", "title": "公开版"]))
            #expect(r.status == .ok, "\(String(buffer: r.body))")
            try await client.publish(env, id)
            let file = percentEncoded("讲义.pdf")
            for persona in [nil, "readerB", "teacherA"] as [String?] {
                r = try await client.execute(uri: "/v1/resources/\(id)/versions/1/files/\(file)", method: .get, headers: env.auth(persona))
                #expect(r.status == .notFound, "\(persona ?? "anonymous") read version 1, published privately")
                r = try await client.execute(uri: "/v1/resources/\(id)/versions/1", method: .get, headers: env.auth(persona))
                #expect(r.status == .notFound)
                r = try await client.execute(uri: "/v1/resources/\(id)/versions/2/files/\(file)", method: .get, headers: env.auth(persona))
                #expect(r.status == .ok)
                r = try await client.execute(uri: "/v1/resources/\(id)/versions", method: .get, headers: env.auth(persona))
                let numbers = ((r.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["version"] as? Int ?? $0["number"] as? Int }
                #expect(!numbers.contains(1), "\(String(buffer: r.body))")
            }
            r = try await client.execute(uri: "/v1/resources/\(id)/versions/1/files/\(file)", method: .get, headers: env.auth("owner"))
            #expect(r.status == .ok, "the owner still reads every version")
            // Readers' updatedAt does not move when the owner saves a draft.
            let before = try await client.execute(uri: "/v1/resources/\(id)", method: .get).json["updatedAt"] as? String
            try await Task.sleep(for: .milliseconds(1100))
            r = try await client.execute(uri: "/v1/resources/\(id)", method: .patch, headers: h, body: Fixtures.json(["title": "草稿修改"]))
            #expect(r.status == .ok)
            let after = try await client.execute(uri: "/v1/resources/\(id)", method: .get).json
            #expect(after["updatedAt"] as? String == before && after["title"] as? String == "公开版", "\(after)")
            let owners = try await client.execute(uri: "/v1/resources/\(id)", method: .get, headers: env.auth("owner")).json
            #expect(owners["updatedAt"] as? String != before)
        }
    }

    // Finding 11: a download counted per (client, User-Agent); unlimited uploads and tokens.
    @Test func downloadsCountPerClientNotPerUserAgent() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let (id, path) = try await Self.publishedVideo(client, env, size: 3000)
            for ua in ["curl/8", "Mozilla/5.0", "Wget", "a", "b"] {
                #expect(try await client.execute(uri: path, method: .get, headers: [.userAgent: ua]).status == .ok)
                var signedIn = env.auth("readerB")
                signedIn[.userAgent] = ua
                #expect(try await client.execute(uri: path, method: .get, headers: signedIn).status == .ok)
            }
            _ = try env.services.downloads.counter.flush()
            let count = try await client.execute(uri: "/v1/resources/\(id)", method: .get).json["downloadCount"] as? Int
            #expect(count == 2, "one anonymous client and one signed-in reader, whatever their User-Agent: \(String(describing: count))")
        }
    }

    @Test func openUploadsAndTokensHaveQuotas() async throws {
        let env = try TestEnv { c in
            c.maxOpenUploadsPerUser = 2
            c.maxOpenUploadBytesPerUser = 1000
            c.maxTokensPerUser = 2
        }
        try await env.test { client in
            func create(_ length: Int) async throws -> TestResponse {
                var t = env.auth("owner")
                t[HTTPField.Name("Tus-Resumable")!] = "1.0.0"
                t[HTTPField.Name("Upload-Length")!] = String(length)
                return try await client.execute(uri: "/v1/uploads", method: .post, headers: t)
            }
            #expect(try await create(400).status == .created)
            var r = try await create(700)
            #expect(r.status == .forbidden && r.problemType == "quota-exceeded", "declared bytes: \(String(buffer: r.body))")
            #expect(try await create(500).status == .created)
            r = try await create(1)
            #expect(r.status == .forbidden && r.problemType == "quota-exceeded", "open uploads: \(String(buffer: r.body))")
            // Another user is not affected.
            var other = env.auth("teacherB")
            other[HTTPField.Name("Tus-Resumable")!] = "1.0.0"
            other[HTTPField.Name("Upload-Length")!] = "10"
            #expect(try await client.execute(uri: "/v1/uploads", method: .post, headers: other).status == .created)
            // Tokens: the owner has one; a second is fine, a third is refused.
            var h = env.auth("owner")
            h[.contentType] = "application/json"
            #expect(try await client.execute(uri: "/v1/tokens", method: .post, headers: h, body: Fixtures.json(["label": "2"])).status == .created)
            r = try await client.execute(uri: "/v1/tokens", method: .post, headers: h, body: Fixtures.json(["label": "3"]))
            #expect(r.status == .forbidden && r.problemType == "quota-exceeded", "\(String(buffer: r.body))")
        }
    }

    // Finding 12: with anonymous access off, organizations, majors and /metrics stayed open.
    @Test func withoutAnonymousAccessOnlyHealthStaysOpen() async throws {
        let env = try TestEnv { c in c.allowAnonymous = false }
        try await env.test { client in
            for path in ["/v1/organizations", "/v1/majors", "/v1/resources", "/metrics", "/v1/reviews", "/nope"] {
                let r = try await client.execute(uri: path, method: .get)
                #expect(r.status == .unauthorized && r.isProblem, "\(path): \(r.status)")
            }
            for path in ["/healthz", "/readyz", "/openapi.yaml"] {
                #expect(try await client.execute(uri: path, method: .get).status == .ok, "\(path)")
            }
            #expect(try await client.execute(uri: "/v1/organizations", method: .get, headers: env.auth("readerB")).status == .ok)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: env.auth("admin")).status == .ok)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: env.auth("readerB")).status == .forbidden)
        }
        let token = "scrape-0123456789abcdef"
        let scraped = try TestEnv { c in
            c.allowAnonymous = false
            try? c.set("metrics_allow", "token:\(token)", source: "test")
        }
        try await scraped.test { (client: any TestClientProtocol) async throws -> Void in
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(token)"]).status == .ok)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(token)x"]).status == .unauthorized)
        }
    }
}

/// Suspicions from issue 12 about blobs shared between uploads, imports and gc, settled.
@Suite struct BlobRaceTests {
    /// Makes every blob row look older than any grace period.
    static func ageBlobRows(_ env: TestEnv) throws {
        let db = try DatabaseQueue(path: env.services.root.catalogPath)
        try db.write { try $0.execute(sql: "UPDATE blobs SET created_at = '2000-01-01T00:00:00.000Z'") }
    }

    // POST /v1/blobs finds the bytes already stored and keeps no copy; gc then moves that file
    // to the trash before the upload's row is written. The row must not point at nothing.
    @Test func anUploadDeduplicatedAgainstABlobGCJustTookGetsItBack() async throws {
        let env = try TestEnv()
        let bytes = Fixtures.video(4000, seed: 42)
        let first = try env.services.blobs.makeWriter(maxSize: 1 << 20)
        try await first.write(bytes)
        let blob = try await first.finish()
        try env.services.catalog.recordBlobUpload(blob, userId: env.principals["owner"]!.userId)
        try Self.ageBlobRows(env)
        // The second upload of the same bytes: its file is dropped in favour of the stored one.
        let second = try env.services.blobs.makeWriter(maxSize: 1 << 20)
        try await second.write(bytes)
        let again = try await second.finish()
        // gc runs between the dedupe and the row.
        let report = try Upkeep(catalog: env.services.catalog, root: env.services.root).gc(grace: 3600, dryRun: false)
        #expect(report.removed.map(\.sha256) == [blob.sha256])
        #expect(access(env.services.blobs.path(of: blob.sha256), F_OK) != 0, "gc moved it to the trash")
        try env.services.catalog.recordBlobUpload(again, userId: env.principals["teacherB"]!.userId)
        #expect(access(env.services.blobs.path(of: blob.sha256), F_OK) == 0, "the upload's row points at bytes that are gone")
        // And a save referencing the bytes works.
        try await env.test { client in
            var h = env.auth("teacherB")
            h[.contentType] = "application/json"
            var m = Fixtures.metadata(["title": "去重之后"])
            m["files"] = [["sha256": blob.sha256, "name": "示范.mp4", "role": "primary"]]
            let r = try await client.execute(uri: "/v1/resources", method: .post, headers: h, body: Fixtures.json(m))
            #expect(r.status == .created, "\(String(buffer: r.body))")
        }
    }

    // A queued import's manifest and zip can wait longer than gc's grace period; the job holds
    // them before it reads them, bringing them back from the trash if gc just took them.
    @Test func aQueuedImportHoldsItsCarriers() async throws {
        let env = try TestEnv()
        let writer = try env.services.blobs.makeWriter(maxSize: 1 << 20)
        try await writer.write(Array("title,file\n".utf8))
        let carrier = try await writer.finish()
        // A carrier as the import route stores it: a file, no row yet; make it old.
        let path = env.services.blobs.path(of: carrier.sha256)
        var old = [timeval(tv_sec: 946_684_800, tv_usec: 0), timeval(tv_sec: 946_684_800, tv_usec: 0)]
        #expect(utimes(path, &old) == 0)
        let report = try Upkeep(catalog: env.services.catalog, root: env.services.root).gc(grace: 3600, dryRun: false)
        #expect(report.removed.map(\.sha256) == [carrier.sha256] && access(path, F_OK) != 0)
        try env.services.catalog.holdBlobs([(carrier.sha256, carrier.size, "清单.csv")])
        #expect(access(path, F_OK) == 0, "the carrier is back for the job")
        // Held: a gc now keeps it (its row is fresh).
        let again = try Upkeep(catalog: env.services.catalog, root: env.services.root).gc(grace: 3600, dryRun: false)
        #expect(again.removed.isEmpty && access(path, F_OK) == 0)
        // Gone for good (trash purged): the job is told in plain words.
        try Self.ageBlobRows(env)
        _ = try Upkeep(catalog: env.services.catalog, root: env.services.root).gc(grace: 3600, dryRun: false)
        try FileManager.default.removeItem(atPath: env.services.root.trashPath + "/" + carrier.sha256)
        #expect(throws: DomainError.self) { try env.services.catalog.holdBlobs([(carrier.sha256, carrier.size, "清单.csv")]) }
    }
}
