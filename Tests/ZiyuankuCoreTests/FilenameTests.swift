import Foundation
import Testing

@testable import ZiyuankuCore

@Suite struct FilenameTests {
    @Test func hostileNamesBecomeHarmlessMetadata() {
        #expect(Filenames.clean("../x") == "x")
        #expect(Filenames.clean("../../etc/passwd") == "passwd")
        #expect(Filenames.clean("C:\\Users\\王\\视频.mp4") == "视频.mp4")
        #expect(Filenames.clean("a\u{0}.php") == "a.php")
        #expect(Filenames.clean(".htaccess") == "htaccess")
        #expect(Filenames.clean("...") == nil)
        #expect(Filenames.clean("/") == nil)
        #expect(Filenames.clean("invoice\u{202E}fdp.exe") == "invoicefdp.exe")
        #expect(Filenames.clean("a\u{7}b\nc.txt") == "abc.txt")
        let long = String(repeating: "康", count: 100) + ".mp4"  // 304 bytes
        let cleaned = Filenames.clean(long)!
        #expect(cleaned.utf8.count <= 255)
        #expect(cleaned.hasSuffix(".mp4"))
        #expect(cleaned.hasPrefix("康康"))
    }

    @Test func ordinaryNamesRoundTripThroughContentDisposition() throws {
        var names = ["康复训练示范.mp4", "护理 实训（第1讲）.pptx", "🎬微课😀.mp4", "藥學 概論.pdf", "report \"final\".doc", "100%.txt", "a;b=c.txt"]
        for i in 0..<93 { names.append("第\(i)讲 康复治疗技术 PLC-\(i).mp4") }
        #expect(names.count == 100)
        for name in names {
            let clean = try #require(Filenames.clean(name))
            #expect(clean == name.precomposedStringWithCanonicalMapping)
            let header = Filenames.contentDisposition(clean)
            #expect(header.hasPrefix("attachment; filename=\""))
            let star = try #require(header.range(of: "filename*=")).upperBound
            let decoded = HeaderParameters.decodeRFC8187(String(header[star...]))
            #expect(decoded == clean)
            // The ASCII fallback is quoted, printable ASCII without quotes or backslashes.
            let fallback = header.split(separator: "\"")[1]
            #expect(fallback.allSatisfy { $0.isASCII && $0 != "\\" })
        }
    }
}
