import Foundation
import Testing

@testable import ZiyuankuCore

/// Regression tests for issue 12's findings that live in pure parsers: each input here ended
/// the server process (a trap) or made a request cost far more than it should.
@Suite struct HostileInputTests {
    // Finding 1: `tm_year = year - 1900` overflowed for the year -2147483648.
    @Test func absurdHTTPDatesAreIgnoredNotTrapped() {
        for s in [
            "Sun, 06 Nov -2147483648 08:49:37 GMT", "Sun, 06 Nov 2147483647 08:49:37 GMT", "Sun, 06 Nov 99999 08:49:37 GMT",
            "Sun, 06 Nov 0000 08:49:37 GMT", "Sun, 06 Nov 1994 25:00:00 GMT", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, +6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 8:49:37 GMT", String(repeating: "9", count: 300), "", "Sun, 06 Nov 1994 08:49:-1 GMT",
        ] {
            #expect(HTTPDate.parse(s) == nil, "\(s)")
        }
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT")?.timeIntervalSince1970 == 784_111_777)
        #expect(HTTPDate.parse("Thu, 01 Jan 1970 00:00:00 GMT")?.timeIntervalSince1970 == 0)
        #expect(HTTPDate.parse("Tue, 29 Feb 2000 12:00:00 GMT")?.timeIntervalSince1970 == 951_825_600)
        #expect(HTTPDate.parse("Fri, 31 Dec 9999 23:59:59 GMT")?.timeIntervalSince1970 == 253_402_300_799)
        for t in [0.0, 784_111_777, 951_825_600, 1_796_428_800, 4_102_444_799] {
            let d = Date(timeIntervalSince1970: t)
            #expect(HTTPDate.parse(HTTPDate.format(d)) == d, "\(HTTPDate.format(d))")
        }
        // Formatting never traps either, whatever the date.
        for t in [-1e300, 1e300, .infinity, -.infinity, .nan] { _ = HTTPDate.format(Date(timeIntervalSince1970: t)) }
    }

    // Finding 2: one grapheme cluster longer than 255 bytes made `truncate` call removeLast() on "".
    @Test func aHugeGraphemeClusterIsCutNotTrapped() {
        let marks = String(repeating: "\u{0301}", count: 200)
        for raw in ["x.a" + marks, "x" + marks, "a" + marks + ".pdf", String(repeating: "康" + marks, count: 3), "." + marks + "a"] {
            let cleaned = Filenames.clean(raw)
            if let cleaned {
                #expect(!cleaned.isEmpty && cleaned.utf8.count <= Filenames.maxBytes, "\(cleaned.utf8.count) bytes")
            }
        }
        let long = String(repeating: "康复训练", count: 100) + ".mp4"
        let t = Filenames.truncate(long, maxBytes: 255)
        #expect(t.hasSuffix(".mp4") && t.utf8.count <= 255 && t.utf8.count > 240)
        #expect(Filenames.truncate("a" + marks, maxBytes: 10).utf8.count <= 10)
        #expect(!Filenames.truncate("a" + marks, maxBytes: 10).isEmpty)
    }

    // Finding 5: after a request, the next bytes were taken for a request line even when they
    // were the body of a pipelined request.
    @Test func theFramerNeverEscapesBodies() {
        func escapes(_ chunks: [[UInt8]]) -> [Int] {
            var framer = HTTPRequestFramer()
            var out: [Int] = []
            var base = 0
            for c in chunks {
                out += c.withUnsafeBytes { framer.feed($0) }.map { $0 + base }
                base += c.count
            }
            return out
        }
        let get = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let post = Array("POST /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n".utf8)
        let body: [UInt8] = [0xFF, 0xFE, 0xE5, 0xBA, 0xB7, 0xE5, 0xA4, 0x8D]
        #expect(escapes([get + post, body]).isEmpty)
        #expect(escapes([get + post + body]).isEmpty)
        // The request line after the body is escaped again: only its own bytes ≥ 0x80.
        let search = Array("GET /v1/resources?q=康复 HTTP/1.1\r\n\r\n".utf8)
        let all = get + post + body + search
        let found = escapes([all])
        #expect(found.count == 6 && found.allSatisfy { $0 >= get.count + post.count + body.count && all[$0] >= 0x80 })
        // Chunked bodies and trailers are followed too, split anywhere.
        let chunked =
            Array("POST /v1/blobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n".utf8) + body + Array("\r\n0\r\nX-T: \u{5EB7}\r\n\r\n".utf8) + search
        let whole = escapes([chunked])
        #expect(whole.count == 6)
        for cut in 1..<chunked.count {
            #expect(escapes([Array(chunked[..<cut]), Array(chunked[cut...])]) == whole, "split at \(cut)")
        }
        // Framing it cannot follow (both lengths, an unknown coding): no rewriting at all after it.
        for head in [
            "Transfer-Encoding: xchunked", "Transfer-Encoding: chunked\r\nContent-Length: 8", "Content-Length: 8\r\nContent-Length: 9", "Upgrade: h2c",
        ] {
            var framer = HTTPRequestFramer()
            let bytes = Array("POST / HTTP/1.1\r\n\(head)\r\n\r\n".utf8) + body + search
            #expect(bytes.withUnsafeBytes { framer.feed($0) }.isEmpty && framer.isPassthrough, "\(head)")
        }
    }

    @Test func aConnectTunnelIsNeverRewritten() {
        var framer = HTTPRequestFramer()
        let bytes = Array("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n".utf8) + Array("GET /?q=康复 HTTP/1.1\r\n\r\n".utf8)
        #expect(bytes.withUnsafeBytes { framer.feed($0) }.isEmpty && framer.isPassthrough)
    }

    // Finding 4: highlighting was quadratic in the length of a word.
    @Test func highlightingIsLinearAndBounded() {
        let text = String(repeating: "a", count: 5_000)
        let q = SearchQuery("a a a a a a a a a a a a")
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for _ in 0..<30 { _ = SearchHighlighter.highlight(text, patterns: q.patterns, excerpt: 120) }
        }
        // Generous: the quadratic version took seconds for this; linear takes milliseconds.
        #expect(elapsed < .seconds(2), "\(elapsed)")
        let out = SearchHighlighter.highlight(text, patterns: q.patterns, excerpt: 120) ?? ""
        #expect(out.hasPrefix("<mark>a") && out.hasSuffix("…"))
        // A field longer than the window is looked at up to the window only.
        let huge = String(repeating: "康复训练", count: 50_000)
        let marked = SearchHighlighter.highlight(huge, patterns: SearchQuery("康复").patterns) ?? ""
        #expect(marked.unicodeScalars.count < SearchHighlighter.maxScalars * 10)
        // Word prefixes still mark what they did.
        #expect(SearchHighlighter.highlight("Rehabilitation video", patterns: SearchQuery("rehab").patterns) == "<mark>Rehab</mark>ilitation video")
    }

    // Finding 6: every bad array element was reported, making a 39 MB answer.
    @Test func validationReportsEachFieldOnce() {
        var object: [String: JSONValue] = [
            "title": .string("x"), "keywords": .array(Array(repeating: .number(1), count: 450_000)),
            "knowledgePoints": .array(Array(repeating: .number(1), count: 50)),
            "audience": .array(Array(repeating: .string("nobody"), count: 100_000)),
            "authors": .array(Array(repeating: .object(["name": .number(1)]), count: 40)),
        ]
        for i in 0..<10_000 { object["unknown\(i)"] = .null }
        guard case .failure(let e) = MetadataValidator.validate(object, lookupMajor: { _ in nil }) else {
            Issue.record("accepted")
            return
        }
        #expect(e.errors.count < 60, "\(e.errors.count) errors")
        let fields = Set(e.errors.map(\.field))
        for f in ["keywords", "knowledgePoints", "audience", "authors", "description"] { #expect(fields.contains(f), "\(f) not named") }
    }

    // Finding 13: two sync bytes made an HTML page a transport stream; any zip passed as pptx.
    @Test func sniffingNeedsRealEvidence() {
        var html = Array("<html><body>".utf8) + Array(repeating: UInt8(ascii: " "), count: 1000)
        html[0] = UInt8(ascii: "G")
        html[188] = UInt8(ascii: "G")
        #expect(MediaSniffer.mediaType(head: html, filename: "lecture.mp4") != "video/mp2t")
        var ts = [UInt8](repeating: 0xFF, count: 1024)
        for i in stride(from: 0, to: 1024, by: 188) { ts[i] = 0x47 }
        #expect(MediaSniffer.mediaType(head: ts, filename: "lecture.ts") == "video/mp2t")
        let zipHead: [UInt8] = [0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 26)
        let plainZip = zipHead + Array("notes/readme.txt".utf8) + [UInt8](repeating: 0x20, count: 200)
        #expect(MediaSniffer.mediaType(head: plainZip, filename: "slides.pptx") == "application/zip")
        let pptx = zipHead + Array("[Content_Types].xml".utf8) + [UInt8](repeating: 0x20, count: 200) + Array("ppt/slides/slide1.xml".utf8)
        #expect(MediaSniffer.mediaType(head: pptx, filename: "slides.pptx") == "application/vnd.openxmlformats-officedocument.presentationml.presentation")
        let odp = zipHead + Array("mimetypeapplication/vnd.oasis.opendocument.presentation".utf8)
        #expect(MediaSniffer.mediaType(head: odp, filename: "slides.odp") == "application/vnd.oasis.opendocument.presentation")
    }

    @Test func addressRangesAndForwardedClients() {
        let ranges = ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"].compactMap(AddressRange.init)
        #expect(ranges.count == 4)
        #expect(ranges.contains(address: "10.200.3.4") && ranges.contains(address: "::ffff:10.1.1.1") && ranges.contains(address: "fd12::5"))
        #expect(!ranges.contains(address: "11.0.0.1") && !ranges.contains(address: "fe80::1") && !ranges.contains(address: "not an address"))
        for bad in ["", "10.0.0.0/33", "::/129", "1.2.3", "10.0.0.0/-1", "10.0.0.0/8/8", "fe80::1%eth0", String(repeating: "1", count: 100)] {
            #expect(AddressRange(bad) == nil, "\(bad)")
        }
        let proxies = ["127.0.0.1", "10.0.0.0/8"].compactMap(AddressRange.init)
        #expect(AddressRange.clientAddress(peer: "127.0.0.1", forwardedFor: "203.0.113.9, 10.0.0.2", trusted: proxies) == "203.0.113.9")
        #expect(AddressRange.clientAddress(peer: "198.51.100.1", forwardedFor: "203.0.113.9", trusted: proxies) == "198.51.100.1")
        #expect(AddressRange.clientAddress(peer: "127.0.0.1", forwardedFor: "junk, 203.0.113.9", trusted: proxies) == "203.0.113.9")
        #expect(AddressRange.clientAddress(peer: "127.0.0.1", forwardedFor: "203.0.113.9, junk", trusted: proxies) == "127.0.0.1")
        #expect(AddressRange.clientAddress(peer: "127.0.0.1", forwardedFor: nil, trusted: proxies) == "127.0.0.1")
    }

    // Deep nesting is refused by the parser, not by a stack overflow; and no nesting costs
    // more than its length (the red-team probe: 4 KB of nested arrays took 11 s of one core
    // with trial decoding through JSONDecoder).
    @Test func deeplyNestedJSONIsRefusedAndCheap() {
        for depth in [JSONValue.maxDepth + 1, 500, 100_000] {
            let bytes = Array(String(repeating: "[", count: depth).utf8) + Array(String(repeating: "]", count: depth).utf8)
            #expect(throws: MalformedJSON.self) { try JSONValue.parse(bytes) }
            let objects = Array(String(repeating: "{\"a\":", count: depth).utf8) + [UInt8(ascii: "1")] + Array(String(repeating: "}", count: depth).utf8)
            #expect(throws: MalformedJSON.self) { try JSONValue.parse(objects) }
        }
        let deepest = String(repeating: "[", count: JSONValue.maxDepth) + "1" + String(repeating: "]", count: JSONValue.maxDepth)
        #expect((try? JSONValue.parse(Array(deepest.utf8))) != nil)
        // About 1 MiB of values nested 60 deep parses in well under a second.
        let one = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        let big = "{" + (0..<8_000).map { "\"k\($0)\":\(one)" }.joined(separator: ",") + "}"
        let clock = ContinuousClock()
        var parsed: JSONValue?
        let elapsed = clock.measure { parsed = try? JSONValue.parse(Array(big.utf8)) }
        #expect(parsed != nil && elapsed < .seconds(3), "\(elapsed)")
    }

    @Test func theJSONParserReadsWhatJSONSerializationReads() throws {
        let docs = [
            #"{"a":1,"b":[true,false,null],"c":"康复\n\"x\"\u00e9\ud83d\ude00","d":-0.5e3,"e":{},"f":[]}"#,
            #"[1, 2.5, -3, 1E2, 0, "\/\b\f\r\t\\"]"#, #"  "just a string"  "#, "0", "-0", "true", "null", #"{"k":{"k":{"k":[{"x":"y"}]}}}"#,
        ]
        for doc in docs {
            let ours = try JSONValue.parse(Array(doc.utf8))
            let theirs = try JSONSerialization.jsonObject(with: Data(doc.utf8), options: [.fragmentsAllowed])
            #expect(ours == Self.convert(theirs), "\(doc)")
        }
        for bad in [
            "", "{", "[1,]", #"{"a" 1}"#, "01", "1.", ".5", "+1", "1e", "[1 2]", #""\u12""#, #""\ud800""#, #""\udc00x""#, "tru", "nul",
            #""a\u0000"x"#, "\"\t raw tab inside\"", "1e400", "[1]x", #"{"a":1,}"#, #""\q""#, "\"a\u{01}b\"",
        ] {
            #expect(throws: MalformedJSON.self, "\(bad)") { try JSONValue.parse(Array(bad.utf8)) }
        }
        // Duplicate names: the first counts (as before).
        #expect(try JSONValue.parse(Array(#"{"a":1,"a":2}"#.utf8)) == .object(["a": .number(1)]))
    }

    static func convert(_ any: Any) -> JSONValue {
        switch any {
        case is NSNull: return .null
        case let n as NSNumber where String(cString: n.objCType) == "c": return .bool(n.boolValue)
        case let n as NSNumber: return .number(n.doubleValue)
        case let s as String: return .string(s)
        case let a as [Any]: return .array(a.map(convert))
        case let o as [String: Any]: return .object(o.mapValues(convert))
        default: return .null
        }
    }

    @Test func tusAndDigestHeaders() throws {
        #expect(TusHeaders.byteCount("12") == 12 && TusHeaders.byteCount("99999999999999999999") == nil && TusHeaders.byteCount("-1") == nil)
        #expect(TusHeaders.byteCount("") == nil && TusHeaders.byteCount("+5") == nil)
        let name = "x.a" + String(repeating: "\u{0301}", count: 200)
        let header = "filename " + Data(name.utf8).base64EncodedString()
        let cleaned = try TusHeaders.filename(fromMetadata: header)
        #expect(cleaned.map { !$0.isEmpty && $0.utf8.count <= 255 } ?? true)
        #expect(throws: DomainError.self) { try TusHeaders.filename(fromMetadata: "filename !!!") }
        #expect(throws: DomainError.self) { try TusHeaders.checksum("sha256 AAAA") }
        #expect(DigestHeader.sha256("sha-256=:\(Data(count: 32).base64EncodedString()):") == .sha256([UInt8](repeating: 0, count: 32)))
        #expect(DigestHeader.sha256("sha-256=:AAAA:") == .malformed && DigestHeader.sha256("md5=:AAAA:") == .absent)
        #expect(DigestHeader.sha256("sha-256=:AAAA") == .notADictionary && DigestHeader.sha256("SHA-256=:AAAA:") == .notADictionary)
        #expect(DigestHeader.sha256(String(repeating: "a", count: DigestHeader.maxLength + 1)) == .notADictionary)
    }
}
