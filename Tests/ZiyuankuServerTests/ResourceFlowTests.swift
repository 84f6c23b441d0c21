import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore

@Suite struct ResourceFlowTests {
    /// The issue's acceptance story, in process: upload with a Chinese name, publish, list
    /// from another school, download whole and by range.
    @Test func teacherUploadsAdminPublishesReaderOfAnotherSchoolDownloads() async throws {
        let env = try TestEnv()
        let video = Fixtures.video(3 * 1024 * 1024 + 17)
        try await env.test { client in
            let created = try await client.createResource(env, files: [("康复训练示范.mp4", video)])
            let id = try #require(created["id"] as? String)
            #expect(created["status"] as? String == "draft")
            #expect(created["version"] as? Int == 1)
            let files = try #require(created["files"] as? [[String: Any]])
            #expect(files.first?["mediaType"] as? String == "video/mp4")
            #expect(files.first?["sha256"] as? String == SHA256.hash(data: video).map { String(format: "%02x", $0) }.joined())

            // Not visible to the other school before publishing.
            var r = try await client.execute(uri: "/v1/resources/\(id)", method: .get, headers: env.auth("readerB"))
            #expect(r.status == .notFound)
            try await client.publish(env, id)

            r = try await client.execute(uri: "/v1/resources?major=5206&type=video", method: .get, headers: env.auth("readerB"))
            #expect(r.status == .ok)
            let items = try #require(r.json["items"] as? [[String: Any]])
            #expect(items.map { $0["id"] as? String } == [id])
            #expect(r.json["total"] as? Int == 1)

            let path = "/v1/resources/\(id)/files/\(percentEncoded("康复训练示范.mp4"))"
            r = try await client.execute(uri: path, method: .get, headers: env.auth("readerB"))
            #expect(r.status == .ok)
            #expect(r.bytes == video)
            #expect(r.headers[.contentDisposition]?.contains("filename*=UTF-8''%E5%BA%B7%E5%A4%8D%E8%AE%AD%E7%BB%83%E7%A4%BA%E8%8C%83.mp4") == true)
            #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(r.headers[.acceptRanges] == "bytes")

            var h = env.auth("readerB")
            h[.range] = "bytes=100-199"
            r = try await client.execute(uri: path, method: .get, headers: h)
            #expect(r.status == .partialContent)
            #expect(r.bytes == Array(video[100...199]))
            #expect(r.headers[.contentRange] == "bytes 100-199/\(video.count)")
        }
    }

    @Test func conditionalRequestsAndHead() async throws {
        let env = try TestEnv()
        let video = Fixtures.video(10_000)
        try await env.test { client in
            let id = try #require(try await client.createResource(env, files: [("a.mp4", video)])["id"] as? String)
            try await client.publish(env, id)
            let path = "/v1/resources/\(id)/files/a.mp4"
            let full = try await client.execute(uri: path, method: .get, headers: [:])
            let etag = try #require(full.headers[.eTag])
            let lastModified = try #require(full.headers[.lastModified])
            var r = try await client.execute(uri: path, method: .get, headers: [.ifNoneMatch: etag])
            #expect(r.status == .notModified)
            #expect(r.body.readableBytes == 0)
            r = try await client.execute(uri: path, method: .get, headers: [.ifModifiedSince: lastModified])
            #expect(r.status == .notModified)
            r = try await client.execute(uri: path, method: .get, headers: [.ifNoneMatch: "\"other\""])
            #expect(r.status == .ok)
            r = try await client.execute(uri: path, method: .head, headers: [:])
            #expect(r.status == .ok)
            #expect(r.headers[.contentLength] == "10000")
            #expect(r.body.readableBytes == 0)
            // If-Range with a stale validator ignores the Range.
            r = try await client.execute(uri: path, method: .get, headers: [.range: "bytes=0-9", .ifRange: "\"stale\""])
            #expect(r.status == .ok)
            r = try await client.execute(uri: path, method: .get, headers: [.range: "bytes=0-9", .ifRange: etag])
            #expect(r.status == .partialContent)
        }
    }

    @Test func versionsMetadataEditsAndPendingChanges() async throws {
        let env = try TestEnv()
        try await env.test { client in
            let created = try await client.createResource(env)
            let id = try #require(created["id"] as? String)
            try await client.publish(env, id)
            let blobsBefore = env.blobFiles().count

            // Metadata-only edit: version 2, no bytes copied, readers keep seeing version 1.
            var h = env.auth("owner")
            h[.contentType] = "application/json"
            h[.ifMatch] = "\"v1\""
            var r = try await client.execute(
                uri: "/v1/resources/\(id)", method: .patch, headers: h, body: Fixtures.json(["title": "康复训练示范（修订）", "changeNote": "改标题"]))
            #expect(r.status == .ok, "\(String(buffer: r.body))")
            #expect(r.json["version"] as? Int == 2)
            #expect(r.json["hasUnpublishedChanges"] as? Bool == true)
            #expect(env.blobFiles().count == blobsBefore)

            // A second editor with the stale ETag gets 412, not a silent overwrite.
            r = try await client.execute(uri: "/v1/resources/\(id)", method: .patch, headers: h, body: Fixtures.json(["title": "别的标题"]))
            #expect(r.status == .preconditionFailed)
            #expect(r.isProblem)

            r = try await client.execute(uri: "/v1/resources/\(id)", method: .get, headers: env.auth("readerB"))
            #expect(r.json["title"] as? String == "康复训练示范")
            #expect(r.json["version"] as? Int == 1)
            r = try await client.execute(uri: "/v1/resources/\(id)/versions/2", method: .get, headers: env.auth("readerB"))
            #expect(r.status == .notFound)
            r = try await client.execute(uri: "/v1/resources/\(id)/versions", method: .get, headers: env.auth("owner"))
            #expect((r.json["items"] as? [Any])?.count == 2)

            // Replace the file: version 3; the old file stays downloadable from version 1.
            var fh = env.auth("owner")
            fh[.contentType] = Fixtures.multipartType
            let newVideo = Fixtures.video(5000, seed: 9)
            r = try await client.execute(
                uri: "/v1/resources/\(id)/files", method: .post, headers: fh,
                body: Fixtures.multipart([.init(name: "file", filename: "康复训练示范.mp4", body: newVideo)]))
            #expect(r.status == .ok, "\(String(buffer: r.body))")
            #expect(r.json["version"] as? Int == 3)
            try await client.publish(env, id)
            r = try await client.execute(uri: "/v1/resources/\(id)/files/\(percentEncoded("康复训练示范.mp4"))", method: .get, headers: env.auth("readerB"))
            #expect(r.bytes == newVideo)
            r = try await client.execute(
                uri: "/v1/resources/\(id)/versions/1/files/\(percentEncoded("康复训练示范.mp4"))", method: .get, headers: env.auth("readerB"))
            #expect(r.bytes == Fixtures.video(4096))
            #expect(r.status == .ok)
        }
    }

    @Test func identicalBytesAreStoredOnceAndJSONCreationUsesUploadedBlobs() async throws {
        let env = try TestEnv()
        let video = Fixtures.video(20_000)
        try await env.test { client in
            var h = env.auth("owner")
            h[.contentType] = "application/octet-stream"
            let digest = Data(SHA256.hash(data: video)).base64EncodedString()
            h[HTTPField.Name("Content-Digest")!] = "sha-256=:\(digest):"
            var r = try await client.execute(uri: "/v1/blobs", method: .post, headers: h, body: ByteBuffer(bytes: video))
            #expect(r.status == .created)
            let sha = try #require(r.json["sha256"] as? String)
            r = try await client.execute(uri: "/v1/blobs", method: .post, headers: h, body: ByteBuffer(bytes: video))
            #expect(r.status == .created)
            #expect(env.blobFiles().count == 1)

            var jh = env.auth("owner")
            jh[.contentType] = "application/json"
            var body = Fixtures.metadata()
            body["files"] = [["sha256": sha, "name": "示范.mp4", "role": "primary"]]
            r = try await client.execute(uri: "/v1/resources", method: .post, headers: jh, body: Fixtures.json(body))
            #expect(r.status == .created, "\(String(buffer: r.body))")
            #expect(r.headers[.location] != nil)

            // Another teacher cannot attach bytes they never uploaded (a known hash is not access).
            var other = env.auth("teacherB")
            other[.contentType] = "application/json"
            var b2 = Fixtures.metadata()
            b2["files"] = [["sha256": sha, "name": "偷.mp4"]]
            r = try await client.execute(uri: "/v1/resources", method: .post, headers: other, body: Fixtures.json(b2))
            #expect(r.status == .unprocessableContent)
            #expect(r.errorFields.contains("files[0].sha256"))
        }
    }

    /// A video whose container the sniffer does not know (here: random bytes) is accepted by its
    /// extension; markup with the same name is not (see BadInputTests.disguisedScriptContent).
    @Test func unrecognisedVideoBytesAreAcceptedByExtension() async throws {
        let env = try TestEnv()
        var bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        bytes[0] = 0
        bytes[1] = 0x80
        let video = bytes
        try await env.test { client in
            let created = try await client.createResource(env, files: [("康复训练示范.mp4", video)])
            #expect((created["files"] as? [[String: Any]])?.first?["mediaType"] as? String == "video/mp4")
        }
    }

    @Test func systemEndpoints() async throws {
        let env = try TestEnv()
        try await env.test { client in
            var r = try await client.execute(uri: "/healthz", method: .get)
            #expect(r.status == .ok)
            r = try await client.execute(uri: "/readyz", method: .get)
            #expect(r.status == .ok)
            r = try await client.execute(uri: "/v1/me", method: .get, headers: env.auth("readerA"))
            #expect(r.json["role"] as? String == "reader")
            r = try await client.execute(uri: "/metrics", method: .get)
            #expect(r.status == .ok)
            #expect(String(buffer: r.body).contains("zyk_http_requests_total"))
            r = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(String(buffer: r.body).contains("openapi: 3.1"))
            r = try await client.execute(uri: "/v1/majors?prefix=5206", method: .get)
            #expect((r.json["items"] as? [[String: Any]])?.contains { $0["code"] as? String == "520601" } == true)
        }
    }
}

@Suite struct MajorImportTests {
    static let csvURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../data/majors-2021.csv")

    // The official catalog, as the project's own data (data/majors-2021.csv, source noted there).
    @Test func importsTheOfficialCatalogIdempotently() throws {
        let env = try TestEnv()
        let csv = try [UInt8](Data(contentsOf: Self.csvURL))
        let first = try env.services.catalog.importMajorCatalog(csv: csv, source: "majors-2021.csv")
        #expect(first.majorsInCatalog == 1349)
        #expect(first.rows == 1681)
        #expect(first.result.inserted + first.result.unchanged == 1681)
        let second = try env.services.catalog.importMajorCatalog(csv: csv, source: "majors-2021.csv")
        #expect(second.result.inserted == 0 && second.result.updated == 0 && second.result.unchanged == 1681)
        #expect(second.majorsInCatalog == 1349)
        #expect(!second.result.vocabularyVersionRecorded)
    }
}
