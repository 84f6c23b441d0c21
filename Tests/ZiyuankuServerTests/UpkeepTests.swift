import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuTestSupport

@testable import ZiyuankuServer

/// The upkeep jobs (docs/product.md#upkeep-backup-fixity-audit) on real data roots.
@Suite struct UpkeepTests {
    /// A valid metadata record for catalog-level tests.
    static func metadata(_ env: TestEnv, title: String) throws -> ResourceMetadata {
        try SampleMetadata.record(SampleMetadata.object(title: title), catalog: env.services.catalog)
    }

    /// Stores bytes as a real blob through the blob store (hashed, fsynced, renamed).
    static func store(_ env: TestEnv, _ bytes: [UInt8]) async throws -> BlobInfo {
        try await SampleFiles.store(bytes, in: env.services.blobs)
    }

    /// R7: 10,000 small blobs, 10 with a flipped byte and 5 deleted: fixity reports exactly those
    /// 15, with the resources that use them, and nothing else.
    @Test func fixityFindsExactlyTheFlippedAndMissingBlobs() async throws {
        let env = try TestEnv()
        let catalog = env.services.catalog
        let owner = env.principals["owner"]!
        let store = env.services.blobs
        let m = try Self.metadata(env, title: "讲义")
        // The files are written straight into blobs/ (as the store lays them out) to keep the
        // test quick; 10,000 resources use one each.
        var files: [NewFile] = []
        for i in 0..<10_000 {
            let bytes = Array("%PDF-1.7\n% 讲义 \(i)\n%%EOF\n".utf8)
            let sha = Identifiers.sha256Hex(bytes)
            let path = store.path(of: sha)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            files.append(NewFile(name: "讲义\(i).pdf", sha256: sha, size: Int64(bytes.count), mediaType: "application/pdf", role: .primary))
        }
        var ids: [String] = []
        for lo in stride(from: 0, to: files.count, by: 2000) {
            ids += try catalog.createResources(files[lo..<lo + 2000].map { (owner, m, [$0]) }, changeNote: "", publish: true)
        }
        var rng = SystemRandomNumberGenerator()
        let picked = Array(files.indices.shuffled(using: &rng).prefix(15))
        let flipped = Set(picked.prefix(10))
        let deleted = Set(picked.suffix(5))
        for i in flipped {
            let path = store.path(of: files[i].sha256)
            var data = try Data(contentsOf: URL(fileURLWithPath: path))
            let at = Int.random(in: 0..<data.count)
            data[at] ^= UInt8(1 << Int.random(in: 0..<8))
            try data.write(to: URL(fileURLWithPath: path))
        }
        for i in deleted { try FileManager.default.removeItem(atPath: store.path(of: files[i].sha256)) }

        let upkeep = Upkeep(catalog: catalog, root: env.services.root)
        let (run, report) = try catalog.recordRun(.fixity, trigger: .cli) { try upkeep.fixity() }
        #expect(report.checked == 10_000 && report.ok == 9_985)
        #expect(Set(report.problems.filter { $0.result == "mismatch" }.map(\.sha256)) == Set(flipped.map { files[$0].sha256 }))
        #expect(Set(report.problems.filter { $0.result == "missing" }.map(\.sha256)) == Set(deleted.map { files[$0].sha256 }))
        for p in report.problems {
            let i = files.firstIndex { $0.sha256 == p.sha256 }!
            #expect(p.references == [BlobReference(resourceId: ids[i], version: 1, name: files[i].name)])
        }
        #expect(run.outcome == .problems && run.counts["mismatch"] == 10 && run.counts["missing"] == 5)
        print(
            "R7: 10000 blobs, 10 flipped and 5 deleted → \(report.problems.count) reported (\(run.counts["mismatch"] ?? -1) mismatch, \(run.counts["missing"] ?? -1) missing), 0 false alarms"
        )

        // Results are recorded per blob; a budgeted slice stops early and says what is left.
        let slice = try upkeep.fixity(budget: 0.000_001)
        #expect(slice.remaining > 0 && slice.checked < 10_000)
        let recorded = try await DatabaseQueue(path: env.services.root.catalogPath).read { db in
            try Row.fetchAll(db, sql: "SELECT fixity, count(*) FROM blobs GROUP BY fixity ORDER BY fixity").map {
                "\($0[0] as String? ?? "nil")=\($0[1] as Int)"
            }
        }
        #expect(recorded == ["mismatch=10", "missing=5", "ok=9985"])
    }

    /// gc racing saves: blobs nothing uses are removed, and no blob a save uses — or is about to
    /// use — is ever lost, whatever the interleaving.
    @Test func gcRacingSavesNeverLosesABlobInUse() async throws {
        let env = try TestEnv()
        let catalog = env.services.catalog
        let owner = env.principals["owner"]!
        let m = try Self.metadata(env, title: "并发回收")
        var stored: [BlobInfo] = []
        for i in 0..<120 { stored.append(try await Self.store(env, Array("%PDF-1.7\n% gc \(i)\n%%EOF\n".utf8))) }
        let blobs = stored
        for b in blobs { try catalog.recordBlobUpload(b, userId: owner.userId) }
        // Make them all look old enough to collect (rows and files).
        try await DatabaseQueue(path: env.services.root.catalogPath).write { db in
            try db.execute(sql: "UPDATE blobs SET created_at = '2000-01-01T00:00:00.000Z'")
        }
        for b in blobs {
            var times = [timeval(tv_sec: 946_684_800, tv_usec: 0), timeval(tv_sec: 946_684_800, tv_usec: 0)]
            _ = utimes(env.services.blobs.path(of: b.sha256), &times)
        }
        let upkeep = Upkeep(catalog: catalog, root: env.services.root)
        let saved = Mutex2<[String]>([])
        let refused = Mutex2<Int>(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for _ in 0..<40 {
                    _ = try upkeep.gc(grace: 3600, dryRun: false)
                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...3)))
                }
            }
            for worker in 0..<4 {
                group.addTask {
                    for k in 0..<30 {
                        // The first 80 blobs get used; the last 40 never are.
                        let b = blobs[(worker * 30 + k * 7) % 80]
                        // Half the saves upload the same bytes again first (the store finds them
                        // present and keeps one copy), half attach an earlier upload by digest.
                        if Bool.random() { _ = try await Self.store(env, Array("%PDF-1.7\n% gc \(blobs.firstIndex(of: b)!)\n%%EOF\n".utf8)) }
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...3)))
                        let file = NewFile(name: "讲义.pdf", sha256: b.sha256, size: b.size, mediaType: "application/pdf", role: .primary)
                        do {
                            _ = try catalog.createResource(owner: owner, metadata: m, files: [file], changeNote: "")
                            saved.withLock { $0.append(b.sha256) }
                        } catch let e as DomainError where e.code == .conflict {
                            refused.withLock { $0 += 1 }  // gone for good: only possible after the trash is purged
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let used = Set(saved.withLock { $0 })
        #expect(refused.withLock { $0 } == 0, "a save found its bytes gone")
        for sha in used { #expect(FileManager.default.fileExists(atPath: env.services.blobs.path(of: sha)), "blob \(sha) in use was lost") }
        let report = try upkeep.verify()
        #expect(report.findings.isEmpty, "\(report.findings)")
        // What nobody used is gone from blobs/ and from the catalog (waiting in the trash).
        _ = try upkeep.gc(grace: 3600, dryRun: false)
        let unused = Set(blobs.map(\.sha256)).subtracting(used)
        #expect(unused.count >= 40)
        let trash = Set(try FileManager.default.contentsOfDirectory(atPath: env.services.root.trashPath))
        let rows = try await DatabaseQueue(path: env.services.root.catalogPath).read { db in Set(try String.fetchAll(db, sql: "SELECT sha256 FROM blobs")) }
        for sha in unused {
            #expect(!FileManager.default.fileExists(atPath: env.services.blobs.path(of: sha)) && trash.contains(sha) && !rows.contains(sha))
        }
        #expect(used.isSubset(of: rows))
        print("gc race: \(used.count) blobs used by \(saved.withLock { $0.count }) saves while gc ran 40 times, \(unused.count) unused collected, 0 lost")
    }

    @Test func verifyFindsWhatIsWrongAndJobsAreVisible() async throws {
        let env = try TestEnv()
        let catalog = env.services.catalog
        let upkeep = Upkeep(catalog: catalog, root: env.services.root)
        let created = Mutex2("")
        try await env.test { client in
            let id = try await client.createResource(env)["id"] as! String
            try await client.publish(env, id)
            created.withLock { $0 = id }
        }
        let id = created.withLock { $0 }
        #expect(try upkeep.verify().findings.isEmpty)
        // A missing blob and a search index out of step are both reported.
        let sha = try #require(try catalog.view(id: id, version: 1)?.version.files.first?.sha256)
        let path = env.services.blobs.path(of: sha)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".away")
        var config = Configuration()
        config.prepareDatabase { db in db.add(tokenizer: ZykTokenizer.self) }
        try await DatabaseQueue(path: env.services.root.catalogPath, configuration: config).write { db in try db.execute(sql: "DELETE FROM resource_search") }
        let (run, report) = try catalog.recordRun(.verify, trigger: .cli) { try upkeep.verify() }
        #expect(Set(report.findings.map(\.check)) == ["blobs", "search"], "\(report.findings)")
        #expect(run.outcome == .problems)
        try FileManager.default.moveItem(atPath: path + ".away", toPath: path)
        _ = try catalog.recordRun(.reindex, trigger: .cli) { try upkeep.reindex() }
        let (again, _) = try catalog.recordRun(.verify, trigger: .cli) { try upkeep.verify() }
        #expect(again.outcome == .ok)
        _ = try catalog.recordRun(.optimize, trigger: .cli) { try upkeep.optimize() }
        // Runs are visible to admins and in /metrics.
        try await env.test { client in
            var r = try await client.execute(uri: "/v1/admin/jobs?kind=verify", method: .get, headers: env.auth("admin"))
            #expect(((r.json["items"] as? [[String: Any]]) ?? []).map { $0["outcome"] as? String } == ["ok", "problems"])
            #expect(try await client.execute(uri: "/v1/admin/jobs", method: .get, headers: env.auth("reviewerA")).status == .forbidden)
            r = try await client.execute(uri: "/v1/admin/jobs?kind=bogus", method: .get, headers: env.auth("admin"))
            #expect(r.status == .badRequest || r.status == .unprocessableContent)
            r = try await client.execute(uri: "/metrics", method: .get)
            let text = String(buffer: r.body)
            #expect(text.contains("zyk_job_last_run_ok{job=\"verify\"} 1"))
            #expect(text.contains("zyk_job_runs_total{job=\"verify\",outcome=\"problems\"} 1"))
            #expect(text.contains("zyk_job_last_run_count{job=\"reindex\",count=\"indexed\"} 1"))
        }
    }

    /// R8: a backup taken while a writer keeps creating resources restores into a new root that
    /// passes verify and fixity, with every resource committed before the backup started.
    @Test func backupWhileWritingRestoresConsistently() async throws {
        let env = try TestEnv()
        let catalog = env.services.catalog
        let owner = env.principals["owner"]!
        let m = try Self.metadata(env, title: "备份")
        // Some history first, with distinct files.
        for i in 0..<40 {
            let b = try await Self.store(env, Array("%PDF-1.7\n% before \(i)\n%%EOF\n".utf8))
            _ = try catalog.createResource(
                owner: owner, metadata: m, files: [NewFile(name: "前\(i).pdf", sha256: b.sha256, size: b.size, mediaType: "application/pdf", role: .primary)],
                changeNote: "")
        }
        let stop = Mutex2(false)
        let written = Mutex2(0)
        let writer = Task {
            var i = 0
            while !stop.withLock({ $0 }) {
                let b = try await Self.store(env, Array("%PDF-1.7\n% during \(i)\n%%EOF\n".utf8))
                _ = try catalog.createResource(
                    owner: owner, metadata: m,
                    files: [NewFile(name: "中\(i).pdf", sha256: b.sha256, size: b.size, mediaType: "application/pdf", role: .primary)], changeNote: "")
                written.withLock { $0 += 1 }
                i += 1
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        let before = try await DatabaseQueue(path: env.services.root.catalogPath).read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM resources")) }
        let upkeep = Upkeep(catalog: catalog, root: env.services.root)
        let target = env.services.root.backupsPath + "/backup-1"
        let (run, report) = try catalog.recordRun(.backup, trigger: .cli) { try upkeep.backup(to: target) }
        try await Task.sleep(for: .milliseconds(100))
        stop.withLock { $0 = true }
        try await writer.value
        #expect(run.outcome == .ok && report.missing.isEmpty && written.withLock { $0 } > 0)
        // Incremental: a second backup to the same folder links nothing it already has.
        let again = try upkeep.backup(to: target)
        #expect(again.alreadyThere >= report.blobs && again.linked + again.copied == again.blobs - again.alreadyThere)
        // Restore refuses a folder with anything in it, then restores into an empty one.
        let busy = env.dir.appendingPathComponent("busy")
        try FileManager.default.createDirectory(at: busy, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: busy.appendingPathComponent("x").path, contents: Data("x".utf8)))
        #expect(throws: DomainError.self) { try Upkeep.restore(from: target, into: DataRoot(path: busy.path)) }
        let restoredRoot = DataRoot(path: env.dir.appendingPathComponent("restored").path)
        let (restored, rr) = try Upkeep.restore(from: target, into: restoredRoot)
        #expect(rr.fixity?.problems.isEmpty == true && rr.verify?.findings.isEmpty == true, "\(String(describing: rr.verify?.findings))")
        #expect(rr.fixity?.checked == again.blobs)
        let after = try await DatabaseQueue(path: restoredRoot.catalogPath).read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM resources")) }
        #expect(before.isSubset(of: after), "\(before.subtracting(after).count) resources committed before the backup are missing")
        #expect(try restored.searchIndexCounts().indexed == after.count)
        print(
            "R8: backup of \(report.blobs) blobs while \(written.withLock { $0 }) resources were being added; restored \(after.count) resources (\(before.count) committed before the backup), fixity and verify clean"
        )
        // A damaged backup is refused.
        let manifest = try JSONDecoder().decode(BackupManifest.self, from: Data(contentsOf: URL(fileURLWithPath: target + "/manifest.json")))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: target).filter { $0.hasPrefix("catalog") } == [manifest.catalogFile], "old catalogs are removed"
        )
        #expect(throws: DomainError.self) { try upkeep.backup(to: env.services.root.path + "/blobs") }
        let cat = target + "/" + manifest.catalogFile
        var bytes = try Data(contentsOf: URL(fileURLWithPath: cat))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: cat))
        #expect(throws: DomainError.self) { try Upkeep.restore(from: target, into: DataRoot(path: env.dir.appendingPathComponent("restored-2").path)) }
        // A manifest that names a file outside the backup folder (with that file's true digest,
        // as a forger would write it), or a link out of it, is refused: nothing is copied in.
        let outside = env.dir.appendingPathComponent("outside.sqlite")
        try Data("not a catalog of this backup".utf8).write(to: outside)
        let manifestURL = URL(fileURLWithPath: target + "/manifest.json")
        let original = try Data(contentsOf: manifestURL)
        for (name, makeLink) in [("../../outside.sqlite", false), ("linked.sqlite", true)] {
            var doc = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
            doc["catalogFile"] = name
            doc["catalogSHA256"] = Identifiers.sha256Hex(Array(try Data(contentsOf: outside)))
            if makeLink { try FileManager.default.createSymbolicLink(atPath: target + "/" + name, withDestinationPath: outside.path) }
            try JSONSerialization.data(withJSONObject: doc).write(to: manifestURL)
            let into = DataRoot(path: env.dir.appendingPathComponent("restored-escape-\(makeLink)").path)
            #expect(throws: DomainError.self) { try Upkeep.restore(from: target, into: into) }
            #expect(!FileManager.default.fileExists(atPath: into.catalogPath), "restore copied \(name) in as the catalog")
        }
    }

    @Test func theReportCountsWhatTheLibraryIsJudgedBy() async throws {
        let env = try TestEnv()
        try await env.test { client in
            for (title, type, majors, file) in [
                ("护理视频", "video", ["520201"], "示范.mp4"), ("康复讲义", "document", ["520601", "520201"], "讲义.pdf"), ("药学动画", "animation", ["520301"], "动画.mp4"),
            ] {
                let bytes = file.hasSuffix(".pdf") ? Fixtures.pdf : Fixtures.video(4096)
                let id =
                    try await client.createResource(
                        env, metadata: Fixtures.metadata(["title": title, "resourceType": type, "majorCodes": majors]), files: [(file, bytes)])["id"] as! String
                try await client.publish(env, id)
                _ = try await client.execute(uri: "/v1/resources/\(id)/files/\(percentEncoded(file))", method: .get, headers: env.auth("readerB"))
            }
            try env.services.downloads.counter.flush()
            var r = try await client.execute(uri: "/v1/admin/report", method: .get, headers: env.auth("admin"))
            #expect(r.status == .ok)
            #expect(r.json["resources"] as? Int == 3 && r.json["published"] as? Int == 3 && r.json["nonText"] as? Int == 2)
            #expect(r.json["updatedLast12Months"] as? Int == 3 && r.json["meetsYearlyUpdateRule"] as? Bool == true)
            #expect(r.json["downloads"] as? Int == 3 && r.json["activeTeachers"] as? Int == 1)
            // Two resources share one video file: stored once.
            #expect((r.json["savedByDeduplication"] as? Int ?? 0) > 0)
            let categories = (r.json["byMajorCategory"] as? [[String: Any]]) ?? []
            #expect(categories.first?["key"] as? String == "52" && categories.first?["count"] as? Int == 3)
            let classes = Dictionary(
                uniqueKeysWithValues: ((r.json["byMajorClass"] as? [[String: Any]]) ?? []).map { ($0["key"] as! String, $0["count"] as! Int) })
            #expect(classes == ["5202": 2, "5206": 1, "5203": 1])
            #expect(try await client.execute(uri: "/v1/admin/report", method: .get, headers: env.auth("reviewerA")).status == .forbidden)
            r = try await client.execute(uri: "/v1/admin/report?from=2026-02-30", method: .get, headers: env.auth("admin"))
            #expect(r.status == .badRequest || r.status == .unprocessableContent)
        }
    }

    /// The scheduler runs a due job inside the server and records it as scheduled.
    @Test func theSchedulerRunsDueJobs() async throws {
        let env = try TestEnv { c in
            c.verifyIntervalMinutes = 1
            c.backupIntervalMinutes = 1
            c.optimizeIntervalMinutes = 0
        }
        let scheduler = JobScheduler(services: env.services, logger: .init(label: "test"))
        let task = Task { try await scheduler.run() }
        var runs: [JobRun] = []
        for _ in 0..<100 {
            runs = try env.services.catalog.jobRuns()
            if Set(runs.filter { $0.outcome != .running }.map(\.kind)) == [.verify, .backup] { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        task.cancel()
        #expect(Set(runs.map(\.kind)) == [.verify, .backup])
        #expect(runs.allSatisfy { $0.trigger == .schedule && $0.outcome == .ok }, "\(runs)")
        #expect(FileManager.default.fileExists(atPath: env.services.root.backupsPath + "/latest/manifest.json"))
    }
}

/// A tiny lock for test bookkeeping across tasks.
final class Mutex2<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
