import Testing

@testable import ZiyuankuCore

@Suite struct MultipartParserTests {
    static func body(boundary: String, parts: [(headers: String, body: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts {
            out += Array("--\(boundary)\r\n\(p.headers)\r\n\r\n".utf8) + p.body + Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }

    /// Feeds `bytes` in chunks of the given sizes and collects (headers, body) per part.
    static func run(_ bytes: [UInt8], boundary: String, chunk: (Int) -> Int) throws -> [(MultipartPartHeaders, [UInt8])] {
        var p = try MultipartParser(boundary: boundary)
        var parts: [(MultipartPartHeaders, [UInt8])] = []
        var i = 0
        var n = 0
        while i < bytes.count {
            let size = max(1, chunk(n))
            n += 1
            let end = min(bytes.count, i + size)
            for e in try p.feed(bytes[i..<end]) {
                switch e {
                case .begin(let h): parts.append((h, []))
                case .body(let b): parts[parts.count - 1].1 += b
                case .end: break
                }
            }
            i = end
        }
        try p.finish()
        return parts
    }

    @Test func parsesPartsWithChineseFilenamesAtEveryChunking() throws {
        let video = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) } + Array("\r\n--notquite".utf8)
        let bytes = Self.body(
            boundary: "XyZ",
            parts: [
                ("Content-Disposition: form-data; name=\"metadata\"", Array("{\"title\":\"康复\"}".utf8)),
                ("Content-Disposition: form-data; name=\"file\"; filename=\"康复训练示范.mp4\"\r\nContent-Type: video/mp4", video),
            ])
        for size in [1, 2, 3, 7, 64, 4096, bytes.count] {
            let parts = try Self.run(bytes, boundary: "XyZ") { _ in size }
            #expect(parts.count == 2)
            #expect(parts[0].0.name == "metadata")
            #expect(parts[0].1 == Array("{\"title\":\"康复\"}".utf8))
            #expect(parts[1].0.filename == "康复训练示范.mp4")
            #expect(parts[1].0.contentType == "video/mp4")
            #expect(parts[1].1 == video)
        }
    }

    @Test func randomChunkingOfRandomBodiesRoundTrips() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let count = Int.random(in: 1...4, using: &rng)
            let parts = (0..<count).map { i -> (String, [UInt8]) in
                let body = (0..<Int.random(in: 0...3000, using: &rng)).map { _ in
                    [UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: "-"), 0x42, UInt8.random(in: 0...255)].randomElement()!
                }
                return ("Content-Disposition: form-data; name=\"file\"; filename=\"f\(i).bin\"", body)
            }
            let bytes = Self.body(boundary: "b0undary", parts: parts)
            let got = try Self.run(bytes, boundary: "b0undary") { _ in Int.random(in: 1...200) }
            #expect(got.map(\.1) == parts.map(\.1))
        }
    }

    @Test func filenameStarIsDecoded() throws {
        let h = try MultipartParser.parseHeaders(
            Array("Content-Disposition: form-data; name=\"file\"; filename=\"fallback.mp4\"; filename*=UTF-8''%E5%BA%B7%E5%A4%8D.mp4".utf8))
        #expect(h.filename == "康复.mp4")
    }

    @Test func truncatedBodyIsAnError() throws {
        let full = Self.body(boundary: "B", parts: [("Content-Disposition: form-data; name=\"file\"; filename=\"a\"", Array(repeating: 1, count: 100))])
        for cut in [10, 50, full.count - 10, full.count - 3] {
            var p = try MultipartParser(boundary: "B")
            _ = try p.feed(full.prefix(cut))
            #expect(throws: MultipartError.self) { try p.finish() }
        }
    }

    @Test func hostileInputsAreRejected() throws {
        #expect(throws: MultipartError.self) { _ = try MultipartParser(boundary: "") }
        #expect(throws: MultipartError.self) { _ = try MultipartParser(boundary: String(repeating: "a", count: 71)) }
        // Header block larger than the limit.
        var p = try MultipartParser(boundary: "B", maxHeaderBytes: 100)
        #expect(throws: MultipartError.self) { _ = try p.feed(Array("--B\r\nX: \(String(repeating: "a", count: 500))".utf8)) }
        // Header that is not UTF-8.
        var q = try MultipartParser(boundary: "B")
        #expect(throws: MultipartError.self) {
            _ = try q.feed(Array("--B\r\nContent-Disposition: form-data; name=\"".utf8) + [0xFF, 0xFE] + Array("\"\r\n\r\n".utf8))
        }
        // Too many parts.
        let many = Self.body(boundary: "B", parts: Array(repeating: ("Content-Disposition: form-data; name=\"x\"", [1]), count: 70))
        var r = try MultipartParser(boundary: "B", maxParts: 64)
        #expect(throws: MultipartError.self) { _ = try r.feed(many) }
        // No boundary at all in a large preamble.
        var s = try MultipartParser(boundary: "B")
        #expect(throws: MultipartError.self) { _ = try s.feed(Array(repeating: UInt8(ascii: "x"), count: 70_000)) }
    }

    @Test func boundaryIsReadFromContentType() {
        #expect(MultipartParser.boundary(fromContentType: "multipart/form-data; boundary=------abc") == "------abc")
        #expect(MultipartParser.boundary(fromContentType: "multipart/form-data; boundary=\"a b\"") == "a b")
        #expect(MultipartParser.boundary(fromContentType: "application/json") == nil)
    }
}
