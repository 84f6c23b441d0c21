import Foundation
import Testing

@testable import ZiyuankuCore

@Suite struct ValidationTests {
    static let majors: [String: MajorInfo] = [
        "520601": .init(code: "520601", educationLevel: .higherVocational, isMajor: true),
        "770101": .init(code: "770101", educationLevel: .secondary, isMajor: true),
    ]

    static func valid() -> [String: JSONValue] {
        try! JSONValue.parse(
            Array(
                """
                {"title":"康复训练示范","description":"上肢康复训练","keywords":["康复","训练"],"resourceType":"video",
                 "granularity":"asset","educationLevel":"higherVocational","majorCodes":["520601"],
                 "authors":[{"name":"王老师","role":"author"}],"copyrightHolder":"某学院","license":"CC-BY-4.0",
                 "originality":"original","visibility":"public"}
                """.utf8)
        ).objectValue
    }

    func validate(_ o: [String: JSONValue]) -> Result<ResourceMetadata, ValidationErrors> {
        MetadataValidator.validate(o, lookupMajor: { Self.majors[$0] })
    }

    @Test func acceptsValidMetadataWithDefaults() throws {
        let m = try validate(Self.valid()).get()
        #expect(m.language == "zh-CN")
        #expect(m.pushToPlatform == false)
        #expect(m.knowledgePoints.isEmpty)
    }

    @Test func namesEveryOffendingField() {
        var o = Self.valid()
        o["title"] = .number(3)
        o["keywords"] = .array([])
        o["resourceType"] = .string("movie")
        o["majorCodes"] = .array([.string("999999"), .string("770101"), .string("52")])
        o["license"] = .null
        o["originality"] = .string("cited")
        o["surprise"] = .bool(true)
        o["authors"] = .array([.object(["name": .string(""), "role": .string("boss")])])
        o["language"] = .string("中文")
        guard case .failure(let e) = validate(o) else {
            Issue.record("expected failure")
            return
        }
        let fields = Set(e.errors.map(\.field))
        for f in [
            "title", "keywords", "resourceType", "majorCodes[0]", "majorCodes[1]", "majorCodes[2]", "license", "source", "surprise",
            "authors[0].name", "authors[0].role", "language",
        ] {
            #expect(fields.contains(f), "missing error for \(f): \(e.errors)")
        }
    }

    @Test func rejectsControlCharactersAndOverlongText() {
        var o = Self.valid()
        o["title"] = .string(String(repeating: "长", count: 201))
        o["description"] = .string("ok\u{0}bad")
        o["course"] = .string("a\u{202E}b")
        guard case .failure(let e) = validate(o) else {
            Issue.record("expected failure")
            return
        }
        #expect(Set(e.errors.map(\.field)) == ["title", "description", "course"])
    }

    @Test func malformedJSONAndInvalidUTF8AreReported() {
        #expect(throws: MalformedJSON.self) { _ = try JSONValue.parse(Array("{\"a\":".utf8)) }
        #expect(throws: MalformedJSON.self) { _ = try JSONValue.parse([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) }
    }

    /// Filters and sync selections take a major or its 大类/类 prefix, nothing else.
    @Test func majorCodesAndPrefixes() {
        for ok in ["52", "5206", "520601", "520601K"] { #expect(MetadataValidator.isMajorCodeOrPrefix(ok), "\(ok)") }
        for bad in ["", "5", "520", "52060", "5206011", "52060K", "%", "5_", "52%", "５２", "520601k", "K52060"] {
            #expect(!MetadataValidator.isMajorCodeOrPrefix(bad), "\(bad)")
        }
    }

    @Test func tokensAndDigests() {
        let t = Tokens.generate()
        #expect(t.hasPrefix("zyk_") && t.count == 47)
        #expect(Tokens.digest(t)?.count == 32)
        #expect(Tokens.digest(String(t.dropLast())) == nil)
        #expect(Tokens.digest(t.replacingOccurrences(of: "zyk_", with: "xyz_")) == nil)
        #expect(Tokens.digest(t + "=") == nil)
        #expect(Tokens.equal([1, 2, 3], [1, 2, 3]))
        #expect(!Tokens.equal([1, 2, 3], [1, 2, 4]))
        #expect(Identifiers.isUUID(Identifiers.uuidV7()))
    }
}

@Suite struct MediaSnifferTests {
    @Test func recognisesRealSignatures() {
        let mp4: [UInt8] = [0, 0, 0, 0x20] + Array("ftypisom".utf8) + Array(repeating: 0, count: 20)
        #expect(MediaSniffer.sniff(head: mp4, filename: "a.mp4") == "video/mp4")
        #expect(MediaSniffer.sniff(head: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0], filename: "x") == "image/png")
        #expect(MediaSniffer.sniff(head: Array("%PDF-1.7\n".utf8), filename: "x.pdf") == "application/pdf")
        let ooxml: [UInt8] = [0x50, 0x4B, 3, 4] + [UInt8](repeating: 0, count: 26) + Array("[Content_Types].xml".utf8)
        #expect(MediaSniffer.sniff(head: ooxml, filename: "课件.pptx").hasSuffix("presentationml.presentation"))
        // Any other zip renamed .pptx is a zip (issue 12, finding 13).
        #expect(MediaSniffer.sniff(head: [0x50, 0x4B, 3, 4, 0, 0], filename: "课件.pptx") == "application/zip")
        #expect(MediaSniffer.sniff(head: Array("WEBVTT\n\n00:00.000".utf8), filename: "a.vtt") == "text/vtt")
    }

    @Test func unrecognisedBinaryTakesItsExtensionsTypeButMarkupNever() {
        var rng = SystemRandomNumberGenerator()
        // Binary without a known signature (avoid the rare random MPEG/TS/BMP/GBK look-alikes).
        var random: [UInt8] = (0..<512).map { _ in UInt8.random(in: 0...255, using: &rng) }
        random[0] = 0x00
        random[1] = 0x80
        random[2] = 0x01
        #expect(MediaSniffer.mediaType(head: random, filename: "康复训练示范.mp4") == "video/mp4")
        #expect(MediaSniffer.mediaType(head: random, filename: "x.bin") == "application/octet-stream")
        #expect(MediaSniffer.mediaType(head: Array("<html><script>x</script>".utf8), filename: "a.mp4") == "text/html")
        #expect(MediaSniffer.mediaType(head: Array("just text".utf8), filename: "a.mp4") == "text/plain")
        // GBK text (何 = 0xBA 0xCE) is text, not binary.
        #expect(MediaSniffer.mediaType(head: [0xBA, 0xCE, 0x20, 0x41, 0xBA, 0xCE], filename: "讲义.txt") == "text/plain")
    }

    @Test func scriptCapableContentDisguisedAsMediaIsRefused() {
        let disguises: [(String, String)] = [
            ("<!DOCTYPE html><script>alert(1)</script>", "video.mp4"),
            ("<html><body onload=alert(1)>", "cover.png"),
            ("<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>", "pic.jpg"),
            ("<?xml version=\"1.0\"?><svg><script>alert(1)</script></svg>", "pic.png"),
            ("\u{FEFF}  <script src=//evil></script>", "clip.webm"),
            ("hello <iframe src=x>", "a.mp3"),
        ]
        for (content, name) in disguises {
            let type = MediaSniffer.mediaType(head: Array(content.utf8), filename: name)
            #expect(MediaSniffer.isScriptCapable(type), "\(name) sniffed as \(type)")
            for rt in [ResourceType.video, .image, .audio, .microLecture] {
                #expect(MediaSniffer.refusal(mediaType: type, resourceType: rt, role: .primary) != nil)
            }
            #expect(MediaSniffer.refusal(mediaType: type, resourceType: .video, role: .cover) != nil)
        }
    }
}

@Suite struct MajorCatalogTests {
    static var csvURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../data/majors-2021.csv").standardized
    }

    // The official catalog, as the project's own data (data/majors-2021.csv, source noted there).
    @Test func parsesTheOfficialCatalog() throws {
        let bytes = try [UInt8](Data(contentsOf: Self.csvURL))
        let rows = try MajorCatalogCSV.parse(bytes).get()
        #expect(rows.count == 1681)
        #expect(rows.filter { $0.itemLevel == "major" }.count == 1349)
        #expect(rows.filter { $0.itemLevel == "major" && $0.educationLevel == .secondary }.count == 358)
        #expect(rows.filter { $0.code.hasSuffix("K") }.count == 47)
        #expect(rows.first { $0.code == "520601" }?.name == "康复治疗技术")
        // With a BOM, as Excel writes it.
        #expect(try MajorCatalogCSV.parse([0xEF, 0xBB, 0xBF] + bytes).get().count == 1681)
    }

    @Test func reportsEveryBadRow() {
        let csv = """
            catalogCode,educationLevel,categoryCode,categoryName,classCode,className,majorCode,majorName,parentCode,itemLevel,source
            X,VOCATIONAL_ASSOCIATE,52,a,,,52,医药卫生大类,,CATEGORY,s
            X,VOCATIONAL_ASSOCIATE,52,a,5206,b,5206,康复治疗类,52,CLASS,s
            X,VOCATIONAL_ALIEN,52,a,5206,b,520601,康复治疗技术,5206,MAJOR,s
            X,VOCATIONAL_ASSOCIATE,52,a,5206,b,52060,短,5206,MAJOR,s
            X,VOCATIONAL_ASSOCIATE,52,a,5206,b,530601,错父,5206,MAJOR,s
            X,VOCATIONAL_ASSOCIATE,52,a,5206,b,520602,孤儿,5299,MAJOR,s
            """
        guard case .failure(let f) = MajorCatalogCSV.parse(Array(csv.utf8)) else {
            Issue.record("expected failure")
            return
        }
        #expect(f.all.map(\.row) == [4, 5, 6, 7])
        #expect(f.all.map(\.column) == ["educationLevel", "majorCode", "parentCode", "parentCode"])
        guard case .failure(let g) = MajorCatalogCSV.parse(Array("a,b\n\"x,y\n".utf8)) else {
            Issue.record("expected failure")
            return
        }
        #expect(g.all.count == 1)
    }

    @Test func csvQuotingAndLineEnds() throws {
        let rows = try CSV.parse(Array("a,\"b,\"\"c\"\"\"\r\n\"多\n行\",x\r\n".utf8))
        #expect(rows == [["a", "b,\"c\""], ["多\n行", "x"]])
    }
}

extension JSONValue {
    var objectValue: [String: JSONValue] {
        if case .object(let o) = self { return o }
        return [:]
    }
}
