import Crypto
import Foundation
import GRDB
import ZiyuankuCore

/// Where a blob is used.
public struct BlobReference: Sendable, Codable, Equatable {
    public var resourceId: String
    public var version: Int
    public var name: String

    public init(resourceId: String, version: Int, name: String) {
        self.resourceId = resourceId
        self.version = version
        self.name = name
    }
}

/// A blob fixity found wrong.
public struct BlobProblem: Sendable, Codable, Equatable {
    public var sha256: String
    public var size: Int64
    /// `mismatch` (bytes hash to something else, or the size differs) or `missing`.
    public var result: String
    /// What the bytes hash to now (mismatch only).
    public var actualSHA256: String?
    public var references: [BlobReference]
}

public struct FixityReport: JobReport {
    public var checked = 0
    public var bytes: Int64 = 0
    public var ok = 0
    public var problems: [BlobProblem] = []
    /// Blobs not reached within the time budget (checked first next time).
    public var remaining = 0
    public var seconds = 0.0
    public var problemCount: Int { problems.count }
    public var counts: [String: Int64] {
        [
            "checked": Int64(checked), "bytes": bytes, "ok": Int64(ok), "mismatch": Int64(problems.filter { $0.result == "mismatch" }.count),
            "missing": Int64(problems.filter { $0.result == "missing" }.count), "remaining": Int64(remaining),
        ]
    }
}

public struct GCItem: Sendable, Codable, Equatable {
    public var sha256: String
    public var size: Int64
}

public struct GCReport: JobReport {
    public var dryRun: Bool
    public var graceSeconds: Double
    /// Unreferenced blobs older than the grace period: moved to trash (or, in a dry run, listed).
    public var removed: [GCItem] = []
    public var bytesFreed: Int64 = 0
    /// Unreferenced blobs skipped because a save started using them meanwhile.
    public var keptInUse = 0
    /// Trash older than the grace period deleted for good.
    public var trashPurged = 0
    public var tmpRemoved = 0
    public var problemCount: Int { 0 }
    public var counts: [String: Int64] {
        [
            "removed": Int64(removed.count), "bytesFreed": bytesFreed, "keptInUse": Int64(keptInUse), "trashPurged": Int64(trashPurged),
            "tmpRemoved": Int64(tmpRemoved),
        ]
    }
}

public struct VerifyReport: JobReport {
    public struct Finding: Sendable, Codable, Equatable {
        public var check: String
        public var message: String
    }
    public var integrity = "ok"
    public var foreignKeyViolations = 0
    public var referencedBlobs = 0
    public var searchIndexed = 0
    public var searchExpected = 0
    public var auditEntries = 0
    public var findings: [Finding] = []
    public var problemCount: Int { findings.count }
    public var counts: [String: Int64] {
        [
            "problems": Int64(findings.count), "foreignKeyViolations": Int64(foreignKeyViolations), "referencedBlobs": Int64(referencedBlobs),
            "searchIndexed": Int64(searchIndexed), "auditEntries": Int64(auditEntries),
        ]
    }
}

public struct OptimizeReport: JobReport {
    public var mergeSteps = 0
    public var walPagesCheckpointed = 0
    public var walBusy = false
    public var catalogBytesBefore: Int64 = 0
    public var catalogBytesAfter: Int64 = 0
    public var problemCount: Int { 0 }
    public var counts: [String: Int64] { ["walPagesCheckpointed": Int64(walPagesCheckpointed), "catalogBytes": catalogBytesAfter] }
}

public struct ReindexReport: JobReport {
    public var indexed = 0
    /// Rows in the index afterwards, and resources that should be there.
    public var inIndex = 0
    public var expected = 0
    public var problemCount: Int { inIndex == expected ? 0 : 1 }
    public var counts: [String: Int64] { ["indexed": Int64(indexed), "inIndex": Int64(inIndex)] }
}

/// The upkeep jobs (docs/product.md#upkeep-backup-fixity-audit) over a catalog and its blob folder. Each is safe to run while
/// the server serves: reads use snapshots, writes are short transactions.
public struct Upkeep: Sendable {
    public let catalog: Catalog
    public let root: DataRoot
    var blobs: FileBlobStore { FileBlobStore(root: root) }

    public init(catalog: Catalog, root: DataRoot) {
        self.catalog = catalog
        self.root = root
    }

    // MARK: fixity

    /// Re-hashes blobs, least recently verified first, and records the result per blob. With a
    /// `budget` (seconds) it stops when the time is up, or earlier when `shouldStop` says so.
    /// `progress(bytesDone, bytesTotal)`.
    public func fixity(budget: TimeInterval? = nil, shouldStop: () -> Bool = { false }, progress: (Int64, Int64) -> Void = { _, _ in }) throws -> FixityReport {
        let start = Date()
        let runStart = Timestamp.format(start.addingTimeInterval(-0.001))
        // Pages of the least recently verified blobs; each page is recorded (verified_at ≥ the
        // run's start) before the next is read, so memory stays flat however many blobs exist.
        let (count, total) = try catalog.pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(size), 0) FROM blobs")
            return ((row?[0] as Int?) ?? 0, (row?[1] as Int64?) ?? 0)
        }
        var report = FixityReport()
        var pending: [(String, String)] = []  // sha256, result
        func flush() throws {
            guard !pending.isEmpty else { return }
            let now = Timestamp.now()
            try catalog.pool.write { db in
                for (sha, result) in pending {
                    try db.cachedStatement(sql: "UPDATE blobs SET verified_at = ?, fixity = ? WHERE sha256 = ?").execute(arguments: [now, result, sha])
                }
            }
            pending.removeAll(keepingCapacity: true)
        }
        let workers = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
        let buffers = (0..<workers).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64) }
        defer { for b in buffers { b.deallocate() } }
        var lastProgress = Date.distantPast
        var stopped = false
        pages: while !stopped {
            let page = try catalog.pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT sha256, size FROM blobs WHERE coalesce(verified_at, '') < ? ORDER BY coalesce(verified_at, ''), sha256 LIMIT 2000",
                    arguments: [runStart]
                ).map { ($0[0] as String, $0[1] as Int64) }
            }
            if page.isEmpty { break }
            // Small batches hashed by one thread per core (a budget or stop is checked between
            // batches); verdicts are recorded in order.
            var at = 0
            while at < page.count {
                if shouldStop() || budget.map({ Date().timeIntervalSince(start) >= $0 }) == true {
                    stopped = true
                    break
                }
                let batch = Array(page[at..<min(page.count, at + 4 * workers)])
                at += batch.count
                let hashed = Self.rehash(batch.map(\.0), in: blobs, buffers: buffers)
                for ((sha, size), result) in zip(batch, hashed) {
                    report.checked += 1
                    var verdict: String
                    var actual: String?
                    switch result {
                    case .missing: verdict = "missing"
                    case .read(let digest, let read):
                        report.bytes += read
                        actual = digest
                        verdict = digest == sha && read == size ? "ok" : "mismatch"
                    }
                    // gc may have moved an unused blob to the trash meanwhile: not a fixity problem.
                    if verdict == "missing",
                        try !catalog.pool.read({ db in try Bool.fetchOne(db, sql: "SELECT 1 FROM blobs WHERE sha256 = ?", arguments: [sha]) ?? false })
                    {
                        continue
                    }
                    if verdict == "ok" {
                        report.ok += 1
                    } else {
                        report.problems.append(
                            BlobProblem(sha256: sha, size: size, result: verdict, actualSHA256: actual, references: try references(sha)))
                    }
                    pending.append((sha, verdict))
                }
                if Date().timeIntervalSince(lastProgress) > 0.2 {
                    progress(report.bytes, total)
                    lastProgress = Date()
                }
            }
            try flush()
            progress(report.bytes, total)
            if page.count < 2000 && !stopped { break pages }
        }
        if stopped { report.remaining = max(0, count - report.checked) }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// Re-hashes blobs on one thread per buffer (blob i on thread i mod n); results in order.
    static func rehash(_ shas: [String], in store: FileBlobStore, buffers: [UnsafeMutableRawBufferPointer]) -> [FixityRead] {
        /// Each slot is written by exactly one thread, and read after all of them finished.
        final class Work: @unchecked Sendable {
            let shas: [String]
            let store: FileBlobStore
            let buffers: [UnsafeMutableRawBufferPointer]
            let slots: UnsafeMutableBufferPointer<FixityRead>
            init(_ shas: [String], _ store: FileBlobStore, _ buffers: [UnsafeMutableRawBufferPointer]) {
                self.shas = shas
                self.store = store
                self.buffers = buffers
                slots = .allocate(capacity: shas.count)
                slots.initialize(repeating: .missing)
            }
            deinit {
                slots.deinitialize()
                slots.deallocate()
            }
        }
        let work = Work(shas, store, buffers)
        let n = max(1, min(buffers.count, shas.count))
        DispatchQueue.concurrentPerform(iterations: n) { w in
            for i in stride(from: w, to: work.shas.count, by: n) { work.slots[i] = work.store.rehash(work.shas[i], buffer: work.buffers[w]) }
        }
        return Array(work.slots)
    }

    func references(_ sha: String) throws -> [BlobReference] {
        try catalog.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT resource_id, version, name FROM version_files WHERE sha256 = ? ORDER BY resource_id, version LIMIT 100", arguments: [sha]
            )
            .map { BlobReference(resourceId: $0[0], version: $0[1], name: $0[2]) }
        }
    }

    // MARK: gc

    /// Removes blobs that no version references and that are older than `grace` (their row and
    /// their file), trash older than `grace`, and temporary upload files older than `grace`.
    ///
    /// Race-free against saves: a blob is moved to `trash/` inside a write transaction that
    /// first re-checks that nothing references it, and every save checks inside its own write
    /// transaction that its blobs are in place, moving one back from the trash if gc just took
    /// it. Trash is deleted only after another grace period, longer than any save can take.
    public func gc(grace: TimeInterval, dryRun: Bool, progress: (Int64, Int64) -> Void = { _, _ in }) throws -> GCReport {
        var report = GCReport(dryRun: dryRun, graceSeconds: grace)
        let cutoffDate = Date().addingTimeInterval(-grace)
        let cutoff = Timestamp.format(cutoffDate)
        // Candidates: rows nothing references, created before the cutoff, plus blob files with
        // no row at all (a crash between a file's rename and its row) that are old enough.
        var candidates = try catalog.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT b.sha256, b.size FROM blobs b
                    WHERE b.created_at < ? AND NOT EXISTS (SELECT 1 FROM version_files f WHERE f.sha256 = b.sha256)
                    ORDER BY b.sha256
                    """, arguments: [cutoff]
            ).map { GCItem(sha256: $0[0], size: $0[1]) }
        }
        // Files with no row at all, checked against the catalog a folder at a time.
        try blobs.forEachBlobFolder { files in
            let old = files.filter { $0.modified < cutoffDate }
            guard !old.isEmpty else { return }
            let known = try catalog.pool.read { db in
                Set(
                    try String.fetchAll(
                        db, sql: "SELECT sha256 FROM blobs WHERE sha256 IN (\(databaseQuestionMarks(count: old.count)))",
                        arguments: StatementArguments(old.map(\.0))))
            }
            for (sha, size, _) in old where !known.contains(sha) { candidates.append(GCItem(sha256: sha, size: size)) }
        }
        try blobs.prepareTrash()
        if dryRun {
            report.removed = candidates
            report.bytesFreed = candidates.reduce(0) { $0 + $1.size }
        } else {
            for (k, batch) in stride(from: 0, to: candidates.count, by: 200).map({ Array(candidates[$0..<min($0 + 200, candidates.count)]) }).enumerated() {
                try catalog.pool.write { db in
                    for item in batch {
                        // Re-checked under the write lock: a save may have started using it.
                        let used =
                            try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM version_files WHERE sha256 = ? LIMIT 1"), arguments: [item.sha256])
                            ?? false
                        let fresh =
                            try Bool.fetchOne(
                                db.cachedStatement(sql: "SELECT 1 FROM blobs WHERE sha256 = ? AND created_at >= ?"), arguments: [item.sha256, cutoff]) ?? false
                        if used || fresh {
                            report.keptInUse += 1
                            continue
                        }
                        try blobs.moveToTrash(item.sha256)
                        try db.cachedStatement(sql: "DELETE FROM blobs WHERE sha256 = ?").execute(arguments: [item.sha256])
                        report.removed.append(item)
                        report.bytesFreed += item.size
                    }
                }
                blobs.syncTrash()
                progress(Int64(min((k + 1) * 200, candidates.count)), Int64(candidates.count))
            }
        }
        // Resumable uploads past their expiry (rows and bytes), and their files without a row.
        if !dryRun {
            let now = Date()
            for id in try catalog.expiredTusUploads(before: now) {
                // Only if still expired and unfinished (a PATCH starting extends the expiry first);
                // a finished upload's row stays until its bytes are surely in place.
                guard try catalog.deleteExpiredTusUpload(id: id, before: now) else { continue }
                blobs.discardResumable(id)
                report.tmpRemoved += 1
            }
        }
        // Trash and abandoned temporary uploads older than the grace period.
        let purged = try blobs.purge(olderThan: cutoffDate, dryRun: dryRun) { id in try catalog.tusUpload(id: id) != nil }
        report.trashPurged += purged.trash
        report.tmpRemoved += purged.tmp
        return report
    }

    // MARK: verify

    /// Catalog integrity and foreign keys, every referenced blob present with its size, the
    /// search index against the catalog, and the audit chain.
    public func verify(progress: (Int64, Int64) -> Void = { _, _ in }) throws -> VerifyReport {
        var report = VerifyReport()
        func find(_ check: String, _ message: String) { report.findings.append(.init(check: check, message: message)) }
        try catalog.pool.read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if integrity != ["ok"] {
                report.integrity = integrity.prefix(20).joined(separator: "; ")
                find("integrity", report.integrity)
            }
            progress(1, 5)
            let fk = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
            report.foreignKeyViolations = fk.count
            for row in fk.prefix(20) { find("foreignKeys", "\(row[0] as String? ?? "?") row \(row[1] as Int64? ?? 0) → \(row[2] as String? ?? "?")") }
            progress(2, 5)
            let referenced = try Row.fetchCursor(db, sql: "SELECT DISTINCT f.sha256, b.size FROM version_files f LEFT JOIN blobs b ON b.sha256 = f.sha256")
            while let row = try referenced.next() {
                report.referencedBlobs += 1
                let sha: String = row[0]
                if let stored = blobs.storedSize(of: sha) {
                    if let size = row[1] as Int64?, stored != size { find("blobs", "blob \(sha) is \(stored) bytes on disk, \(size) in the catalog") }
                } else {
                    find("blobs", "blob \(sha) is referenced but its file is missing")
                }
            }
            progress(3, 5)
            report.searchIndexed = try Int.fetchOne(db, sql: "SELECT count(*) FROM resource_search") ?? 0
            report.searchExpected = try Int.fetchOne(db, sql: "SELECT count(*) FROM resources WHERE deleted_at IS NULL") ?? 0
            let stray =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM (SELECT rowid FROM resource_search EXCEPT SELECT rowid FROM resources WHERE deleted_at IS NULL)") ?? 0
            let absent =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM (SELECT rowid FROM resources WHERE deleted_at IS NULL EXCEPT SELECT rowid FROM resource_search)") ?? 0
            if stray > 0 || absent > 0 {
                find("search", "the search index has \(stray) entries for no visible resource and lacks \(absent) resources (run zyk reindex)")
            }
        }
        progress(4, 5)
        let audit = try catalog.verifyAudit()
        report.auditEntries = audit.entries
        if !audit.ok { find("audit", "the audit chain breaks at entry \(audit.brokenAt ?? 0): \(audit.problem ?? "")") }
        progress(5, 5)
        return report
    }

    // MARK: optimize and reindex

    /// `PRAGMA optimize`, an FTS5 merge of the index segments, and a WAL checkpoint that
    /// truncates the log (reported as busy when readers keep it from finishing).
    public func optimize() throws -> OptimizeReport {
        var report = OptimizeReport()
        report.catalogBytesBefore = Self.fileSize(root.catalogPath) + Self.fileSize(root.catalogPath + "-wal")
        // Merge the index segments in short steps (FTS5 'optimize' would hold the write lock
        // for the whole merge and stall uploads and saves meanwhile).
        for _ in 0..<1000 {
            let changed = try catalog.pool.write { db -> Int in
                let before = db.totalChangesCount
                try db.execute(sql: "INSERT INTO resource_search (resource_search, rank) VALUES ('merge', 256)")
                return db.totalChangesCount - before
            }
            report.mergeSteps += 1
            if changed < 2 { break }
        }
        try catalog.pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA optimize")
            if let row = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") {
                report.walBusy = (row[0] as Int? ?? 0) != 0
                report.walPagesCheckpointed = row[2] as Int? ?? 0
            }
        }
        report.catalogBytesAfter = Self.fileSize(root.catalogPath) + Self.fileSize(root.catalogPath + "-wal")
        return report
    }

    public func reindex(progress: (Int64, Int64) -> Void = { _, _ in }) throws -> ReindexReport {
        let indexed = try catalog.reindex { done, total in progress(Int64(done), Int64(total)) }
        let (inIndex, expected) = try catalog.searchIndexCounts()
        return ReindexReport(indexed: indexed, inIndex: inIndex, expected: expected)
    }

    static func fileSize(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }
}

extension Catalog {
    /// Inside a save's write transaction: every file's bytes are in blobs/, moved back from the
    /// trash when a concurrent gc just took them; otherwise the save fails without writing.
    func ensureBlobs(_ files: [NewFile]) throws {
        try ensureBlobFiles(files.map { ($0.sha256, $0.name) })
    }

    /// The same for bytes known by digest: `name` is what the user calls them, for the message.
    func ensureBlobFiles(_ files: [(sha256: String, name: String)]) throws {
        guard let root = dataRoot else { return }
        let store = FileBlobStore(root: root)
        for f in files where !store.ensurePresent(f.sha256) {
            throw DomainError(.conflict, "The stored bytes of \(f.name) are no longer kept (removed as unused); upload the file again.")
        }
    }

    /// Holds bytes for work that is about to read them (an import's manifest and zip): records
    /// or refreshes their rows, so gc's grace period starts again now, and brings them back
    /// from the trash if gc just took them — in one write transaction, as a save does.
    public func holdBlobs(_ blobs: [(sha256: String, size: Int64, name: String)]) throws {
        try pool.write { db in
            try ensureBlobFiles(blobs.map { ($0.sha256, $0.name) })
            for b in blobs { try Self.insertBlob(db, sha256: b.sha256, size: b.size) }
        }
    }
}
