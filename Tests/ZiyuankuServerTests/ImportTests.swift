import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import Testing
import ZIPFoundation
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore

/// Bulk import: a manifest with bad rows imports the rest and reports the bad ones exactly; a
/// second run changes nothing; zips are read with their limits.
@Suite struct ImportTests {
    static let header =
        "key,title,description,keywords,resourceType,granularity,educationLevel,majorCodes,authors,copyrightHolder,license,originality,visibility,files"

    static func row(_ key: String, title: String = "护理讲义", type: String = "document", major: String = "520201", file: String) -> String {
        "\(key),\(title),第\(key)份讲义,护理；讲义,\(type),asset,higherVocational,\(major),王老师|author,某某职业技术学院,CC-BY-4.0,original,public,\(file)"
    }

    @Test func aThousandRowsWithFivePercentBadImportTheRestAndReportThemExactly() async throws {
        let env = try TestEnv()
        let dir = env.dir.appendingPathComponent("import-src").path
        try FileManager.default.createDirectory(atPath: dir + "/讲义", withIntermediateDirectories: true)
        var lines = ["\u{FEFF}" + Self.header]
        var bad: [Int: String] = [:]  // CSV row number (header = 1) → field expected in the report
        for i in 0..<1000 {
            let name = "讲义/第\(i)讲.pdf"
            #expect(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data("%PDF-1.7\n% 第\(i)讲\n%%EOF\n".utf8)))
            let rowNumber = i + 2
            switch i % 20 == 7 ? (i / 20) % 5 : -1 {
            case 0:
                lines.append(Self.row("K\(i)", title: "", file: name))
                bad[rowNumber] = "title"
            case 1:
                lines.append(Self.row("K\(i)", major: "999999", file: name))
                bad[rowNumber] = "majorCodes[0]"
            case 2:
                lines.append(Self.row("K\(i)", file: "讲义/没有这个文件.pdf"))
                bad[rowNumber] = "files[0]"
            case 3:
                lines.append(Self.row("K\(i)", file: "../../etc/passwd"))
                bad[rowNumber] = "files[0]"
            case 4:
                lines.append(Self.row("K\(i)", type: "video", file: name))  // a PDF is not a video
                bad[rowNumber] = "files[0]"
            default:
                lines.append(Self.row("K\(i)", file: name))
            }
        }
        let manifest = dir + "/清单.csv"
        try lines.joined(separator: "\r\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let owner = env.principals["owner"]!
        let importer = Importer(library: env.services.library)

        let dry = try await importer.run(manifest: manifest, files: dir, owner: owner, dryRun: true)
        #expect(dry.created == 950 && dry.failed == 50)
        #expect(try env.services.catalog.listResources(ResourceQuery(), viewer: env.principals["admin"], allowAnonymous: false).total == 0)

        let first = try await importer.run(manifest: manifest, files: dir, owner: owner, dryRun: false)
        #expect(first.rows == 1000 && first.created == 950 && first.failed == 50 && first.alreadyImported == 0)
        let reported = Dictionary(first.problems.map { ($0.row, $0.field) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(reported.keys) == Set(bad.keys), "rows reported: \(reported.keys.sorted().prefix(10))…")
        for (row, field) in bad { #expect(reported[row] == field, "row \(row): reported \(reported[row] ?? "nothing"), expected \(field)") }
        print(
            "import: 1000 rows, 50 bad: created \(first.created), reported \(first.problems.count) problems on \(reported.count) rows in \(String(format: "%.1f", first.seconds)) s"
        )

        let second = try await importer.run(manifest: manifest, files: dir, owner: owner, dryRun: false)
        #expect(second.created == 0 && second.alreadyImported == 950 && second.failed == 50)
        let total = try env.services.catalog.listResources(ResourceQuery(), viewer: env.principals["admin"], allowAnonymous: false).total
        #expect(total == 950)
    }

    @Test func jsonLinesAndZipsWithTheirLimits() async throws {
        let env = try TestEnv()
        let owner = env.principals["owner"]!
        let base = env.dir.appendingPathComponent("zip-src").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let zipPath = base + "/素材.zip"
        let archive = try Archive(url: URL(fileURLWithPath: zipPath), accessMode: .create)
        let pdf = Data("%PDF-1.7\n% 压缩包里的讲义\n%%EOF\n".utf8)
        try archive.addEntry(
            with: "素材/讲义.pdf", type: .file, uncompressedSize: Int64(pdf.count), provider: { pos, size in pdf.subdata(in: Int(pos)..<Int(pos) + size) })
        let manifest = base + "/rows.jsonl"
        let m: [String: Any] = [
            "key": "Z1", "title": "压缩包导入", "description": "从 zip 导入", "keywords": ["护理"], "resourceType": "document", "granularity": "asset",
            "educationLevel": "higherVocational", "majorCodes": ["520201"], "authors": [["name": "王老师", "role": "author"]],
            "copyrightHolder": "某某职业技术学院", "license": "CC-BY-4.0", "originality": "original", "visibility": "public",
            "files": [["path": "素材/讲义.pdf", "role": "primary"]],
        ]
        try (String(decoding: try JSONSerialization.data(withJSONObject: m), as: UTF8.self) + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let summary = try await Importer(library: env.services.library).run(manifest: manifest, files: zipPath, owner: owner, dryRun: false)
        #expect(summary.created == 1 && summary.failed == 0, "\(summary.problems)")
        // The extraction folder is gone afterwards.
        #expect(try FileManager.default.contentsOfDirectory(atPath: env.services.root.tmpPath).filter { $0.hasPrefix("import-") }.isEmpty)

        // A zip slip entry is refused and nothing is left behind.
        let slip = base + "/slip.zip"
        let evil = try Archive(url: URL(fileURLWithPath: slip), accessMode: .create)
        try evil.addEntry(
            with: "../../逃出去.pdf", type: .file, uncompressedSize: Int64(pdf.count), provider: { pos, size in pdf.subdata(in: Int(pos)..<Int(pos) + size) })
        await #expect(throws: DomainError.self) {
            try await Importer(library: env.services.library).run(manifest: manifest, files: slip, owner: owner, dryRun: true)
        }
        // Too many entries: refused before anything is written.
        var limits = ZipLimits()
        limits.maxEntries = 0
        await #expect(throws: DomainError.self) {
            try await Importer(library: env.services.library).run(manifest: manifest, files: zipPath, owner: owner, dryRun: true, limits: limits)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: env.services.root.tmpPath).filter { $0.hasPrefix("import-") }.isEmpty)
    }

    /// The same over HTTP: manifest and zip as two file parts, a job to poll.
    @Test func importsOverHTTPAsAJob() async throws {
        let env = try TestEnv()
        let base = env.dir.appendingPathComponent("http-src").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let zipPath = base + "/素材.zip"
        let archive = try Archive(url: URL(fileURLWithPath: zipPath), accessMode: .create)
        for i in 0..<3 {
            let pdf = Data("%PDF-1.7\n% 第\(i)份\n%%EOF\n".utf8)
            try archive.addEntry(
                with: "讲义\(i).pdf", type: .file, uncompressedSize: Int64(pdf.count), provider: { pos, size in pdf.subdata(in: Int(pos)..<Int(pos) + size) })
        }
        let csv =
            "\u{FEFF}" + ([Self.header] + (0..<3).map { Self.row("H\($0)", file: "讲义\($0).pdf") } + [Self.row("H9", file: "讲义9.pdf")]).joined(separator: "\n")
        let zipBytes = Array(try Data(contentsOf: URL(fileURLWithPath: zipPath)))
        try await env.test { client in
            var h = env.auth("owner")
            h[.contentType] = Fixtures.multipartType
            let body = Fixtures.multipart([
                .init(name: "file", filename: "清单.csv", contentType: "text/csv", body: Array(csv.utf8)),
                .init(name: "file", filename: "素材.zip", contentType: "application/zip", body: zipBytes),
            ])
            var r = try await client.execute(uri: "/v1/imports", method: .post, headers: h, body: body)
            #expect(r.status == .accepted, "\(String(buffer: r.body))")
            let id = r.json["id"] as? String ?? ""
            var status = ""
            for _ in 0..<100 {
                r = try await client.execute(uri: "/v1/imports/\(id)", method: .get, headers: env.auth("owner"))
                status = r.json["status"] as? String ?? ""
                if status == "done" || status == "failed" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(status == "done", "\(r.json)")
            let summary = r.json["summary"] as? [String: Any]
            #expect(summary?["created"] as? Int == 3 && summary?["failed"] as? Int == 1)
            // The missing file is named as the user wrote it, in the zip as they named it: never
            // a path on the server (the carriers are blobs in the data root).
            let text = String(buffer: r.body)
            #expect(text.contains("讲义9.pdf") && text.contains("素材.zip"), "\(text)")
            #expect(!text.contains(env.dir.path) && !text.contains("/blobs/") && !text.contains("/tmp"), "\(text)")
            #expect(try await client.execute(uri: "/v1/imports/\(id)", method: .get, headers: env.auth("teacherB")).status == .notFound)
            #expect(
                try await client.execute(
                    uri: "/v1/imports", method: .post,
                    headers: {
                        var x = env.auth("readerA")
                        x[.contentType] = Fixtures.multipartType
                        return x
                    }(), body: body
                ).status == .forbidden)
            let one = Fixtures.multipart([.init(name: "file", filename: "清单.csv", contentType: "text/csv", body: Array(csv.utf8))])
            #expect(try await client.execute(uri: "/v1/imports", method: .post, headers: h, body: one).status == .unprocessableContent)
        }
    }
}
