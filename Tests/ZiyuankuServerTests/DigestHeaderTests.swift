import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore

/// RFC 9530 digests through the real composition root: `buildApplication` (the server's own
/// HTTP/1 channel, middleware and services) on a live loopback socket. Uploads check the
/// `Content-Digest` / `Repr-Digest` sent; downloads send `Repr-Digest` of the whole file.
@Suite struct DigestHeaderTests {
    static let contentDigest = HTTPField.Name("Content-Digest")!
    static let reprDigest = HTTPField.Name("Repr-Digest")!

    // The default configuration (the job scheduler's daily optimize included).
    static func env() throws -> TestEnv { try TestEnv() }

    /// A live loopback server: uploads and downloads through the server's own HTTP/1 channel.
    static func live(_ env: TestEnv, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await env.test(.live, body)
    }

    static func field(_ bytes: [UInt8]) -> String { "sha-256=:\(Data(SHA256.hash(data: bytes)).base64EncodedString()):" }

    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    static func upload(
        _ client: some TestClientProtocol, _ env: TestEnv, _ bytes: [UInt8], headers extra: [(HTTPField.Name, String)]
    )
        async throws -> TestResponse
    {
        var h = env.auth("owner")
        h[.contentType] = "application/octet-stream"
        for (name, value) in extra { h.append(HTTPField(name: name, value: value)) }
        return try await client.execute(uri: "/v1/blobs", method: .post, headers: h, body: ByteBuffer(bytes: bytes))
    }

    static func assertNothingKept(_ env: TestEnv, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(env.blobFiles().isEmpty, sourceLocation: sourceLocation)
        #expect(env.tmpFiles().isEmpty, sourceLocation: sourceLocation)
    }

    @Test func validDigestIsAccepted() async throws {
        let env = try Self.env()
        let video = Fixtures.video(70_000, seed: 3)
        try await Self.live(env) { client in
            var r = try await Self.upload(client, env, video, headers: [(Self.contentDigest, Self.field(video))])
            #expect(r.status == .created, "\(String(buffer: r.body))")
            #expect(r.json["sha256"] as? String == Self.hex(video))
            // Repr-Digest alone, and without the optional "=" padding (RFC 9651 §4.2.7).
            let pdf = Fixtures.pdf
            let unpadded = "sha-256=:\(Data(SHA256.hash(data: pdf)).base64EncodedString().trimmingCharacters(in: ["="])):"
            #expect(unpadded != Self.field(pdf))
            r = try await Self.upload(client, env, pdf, headers: [(Self.reprDigest, unpadded)])
            #expect(r.status == .created, "\(String(buffer: r.body))")
            #expect(r.json["sha256"] as? String == Self.hex(pdf))
            // Parameters on the member and optional whitespace are valid structured fields.
            r = try await Self.upload(client, env, video, headers: [(Self.contentDigest, "  \(Self.field(video));note=1  ")])
            #expect(r.status == .created, "\(String(buffer: r.body))")
            #expect(env.blobFiles().count == 2)
            #expect(env.tmpFiles().isEmpty)
        }
    }

    @Test func mismatchingDigestIsRejectedAndNothingKept() async throws {
        let env = try Self.env()
        let video = Fixtures.video(70_000, seed: 4)
        let wrong = Self.field([1, 2, 3])
        try await Self.live(env) { client in
            for name in [Self.contentDigest, Self.reprDigest] {
                let r = try await Self.upload(client, env, video, headers: [(name, wrong)])
                #expect(r.status == .badRequest)
                #expect(r.isProblem)
                #expect(r.problemType == "digest-mismatch")
                let detail = r.json["detail"] as? String ?? ""
                #expect(detail.contains("the digest sent"), "\(detail)")
                #expect(detail.contains(Self.hex(video)), "\(detail)")
                Self.assertNothingKept(env)
            }
            // Content-Digest's sha-256 wins over Repr-Digest's; a wrong one is not rescued.
            let r = try await Self.upload(client, env, video, headers: [(Self.contentDigest, wrong), (Self.reprDigest, Self.field(video))])
            #expect(r.problemType == "digest-mismatch")
            Self.assertNothingKept(env)
        }
    }

    @Test func malformedHeaderIs400() async throws {
        let env = try Self.env()
        let pdf = Fixtures.pdf
        let good = Self.field(pdf)
        // Not structured-field dictionaries (RFC 9651 §4.2.2).
        let notDictionaries = [
            "sha-256=:\(Data(SHA256.hash(data: pdf)).base64EncodedString())",  // unterminated byte sequence
            "SHA-256=:\(Data(SHA256.hash(data: pdf)).base64EncodedString()):",  // keys are lower case
            "\(good),",  // trailing comma
            "sha-256=:not base64!:",
            "=\(good)",
            "sha-256=:AAAA: junk",
            "sha-256=(",
            String(repeating: "a", count: DigestHeader.maxLength + 1),
        ]
        // Valid dictionaries whose sha-256 member is not a 32-byte byte sequence.
        let badMembers = ["sha-256=:AAAA:", "sha-256=\"text\"", "sha-256=?1", "sha-256=(:AAAA:)", "sha-256"]
        try await Self.live(env) { client in
            for (i, value) in (notDictionaries + badMembers).enumerated() {
                for name in [Self.contentDigest, Self.reprDigest] {
                    let r = try await Self.upload(client, env, pdf, headers: [(name, value)])
                    #expect(r.status == .badRequest, "\(name): \(value)")
                    #expect(r.isProblem, "\(value)")
                    #expect(r.problemType == "bad-request", "\(value)")
                    #expect(r.errorFields == [name.rawName], "\(value)")
                    let detail = r.json["detail"] as? String ?? ""
                    if i < notDictionaries.count {
                        #expect(detail.contains("not a structured-field dictionary"), "\(value): \(detail)")
                    } else {
                        #expect(detail.contains("sha-256 member must be a byte sequence of 32 bytes"), "\(value): \(detail)")
                    }
                }
            }
            // A malformed Repr-Digest is refused even when Content-Digest is good.
            let r = try await Self.upload(client, env, pdf, headers: [(Self.contentDigest, good), (Self.reprDigest, "sha-256=:AAAA")])
            #expect(r.status == .badRequest)
            #expect(r.errorFields == ["Repr-Digest"])
            Self.assertNothingKept(env)
        }
    }

    @Test func unknownAlgorithmIsIgnored() async throws {
        let env = try Self.env()
        let pdf = Fixtures.pdf
        let sha512 = "sha-512=:\(Data(SHA512.hash(data: pdf)).base64EncodedString()):"
        try await Self.live(env) { client in
            // Only algorithms we do not use: nothing to check, the upload is kept.
            for value in [sha512, "md5=:AAAA:", "unixsum=:AAAA:, id-sha-256=:AAAA:", "x-new-algorithm=42"] {
                let r = try await Self.upload(client, env, pdf, headers: [(Self.contentDigest, value)])
                #expect(r.status == .created, "\(value): \(String(buffer: r.body))")
            }
            // Beside sha-256, other members are ignored: sha-256 decides.
            var r = try await Self.upload(client, env, pdf, headers: [(Self.contentDigest, "md5=:AAAA:, \(Self.field(pdf))")])
            #expect(r.status == .created)
            r = try await Self.upload(client, env, pdf, headers: [(Self.contentDigest, "\(Self.field(pdf)), sha-512=:AAAA:")])
            #expect(r.status == .created)
            // A field repeated on several lines is one dictionary (RFC 9110 §5.3).
            r = try await Self.upload(client, env, pdf, headers: [(Self.contentDigest, "md5=:AAAA:"), (Self.contentDigest, Self.field(pdf))])
            #expect(r.status == .created)
            r = try await Self.upload(client, env, pdf, headers: [(Self.contentDigest, "md5=:AAAA:, \(Self.field([9]))")])
            #expect(r.problemType == "digest-mismatch")
            #expect(env.blobFiles().count == 1)  // identical bytes are stored once
            #expect(env.tmpFiles().isEmpty)
        }
    }

    @Test func downloadsSendReprDigest() async throws {
        let env = try Self.env()
        let video = Fixtures.video(300_000, seed: 5)  // over the inline-read limit: streamed
        let expected = Self.field(video)
        try await Self.live(env) { client in
            let created = try await client.createResource(env, files: [("示范.mp4", video)])
            let id = try #require(created["id"] as? String)
            let name = percentEncoded("示范.mp4")
            for path in ["/v1/resources/\(id)/files/\(name)", "/v1/resources/\(id)/versions/1/files/\(name)"] {
                let auth = env.auth("owner")
                var r = try await client.execute(uri: path, method: .get, headers: auth)
                #expect(r.status == .ok)
                #expect(r.bytes == video)
                #expect(r.headers[Self.reprDigest] == expected, "GET \(path)")

                r = try await client.execute(uri: path, method: .head, headers: auth)
                #expect(r.status == .ok)
                #expect(r.body.readableBytes == 0)
                #expect(r.headers[Self.reprDigest] == expected, "HEAD \(path)")

                var ranged = auth
                ranged[.range] = "bytes=100-199"
                r = try await client.execute(uri: path, method: .get, headers: ranged)
                #expect(r.status == .partialContent)
                #expect(r.bytes == Array(video[100...199]))
                #expect(r.headers[Self.reprDigest] == expected, "206 \(path)")  // the whole file's, not the range's

                r = try await client.execute(uri: path, method: .head, headers: ranged)
                #expect(r.status == .partialContent)
                #expect(r.headers[Self.reprDigest] == expected, "HEAD 206 \(path)")

                ranged[.range] = "bytes=0-9,1000-1009"
                r = try await client.execute(uri: path, method: .get, headers: ranged)
                #expect(r.status == .partialContent)
                #expect(r.headers[.contentType]?.hasPrefix("multipart/byteranges") == true)
                #expect(r.headers[Self.reprDigest] == expected, "multipart 206 \(path)")

                var conditional = auth
                conditional[.ifNoneMatch] = "\"\(Self.hex(video))\""
                r = try await client.execute(uri: path, method: .get, headers: conditional)
                #expect(r.status == .notModified)
                #expect(r.headers[Self.reprDigest] == expected, "304 \(path)")
            }
            // The value parses back to the file's digest.
            let r = try await client.execute(uri: "/v1/resources/\(id)/files/\(name)", method: .head, headers: env.auth("owner"))
            let value = try #require(r.headers[Self.reprDigest])
            #expect(DigestHeader.sha256(value) == .sha256(Array(SHA256.hash(data: video))))
            // Not on errors: a range outside the file is 416 without it.
            var outside = env.auth("owner")
            outside[.range] = "bytes=999999999-"
            let e = try await client.execute(uri: "/v1/resources/\(id)/files/\(name)", method: .get, headers: outside)
            #expect(e.status == .rangeNotSatisfiable)
            #expect(e.headers[Self.reprDigest] == nil)
        }
    }
}
