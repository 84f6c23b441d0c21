import Foundation
import GRDB
import ZiyuankuCore
import ZiyuankuStore

@inline(__always) func nowNs() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
@inline(__always) func ms(_ t0: UInt64, _ t1: UInt64) -> Double { Double(t1 - t0) / 1e6 }

func log(_ s: String) {
    FileHandle.standardError.write(Data(("[search-bench \(Timestamp.now())] " + s + "\n").utf8))
}

struct SizeConfig: Sendable {
    var rows: Int
    var reps: Int
    var facetReps: Int
    var anchorReps: Int
    /// Anchor (LIKE) on at most this many queries per kind (the 1M anchor is informative only).
    var anchorQueries: Int
    /// Untimed runs per query before measuring (page and, when facetReps > 0, faceted).
    var warmup: Int
    /// Seconds of measuring per query: slow queries get fewer repetitions (never below minReps).
    var queryBudget: Double
    var minReps: Int
    /// Repetitions of the diagnostic FTS-only timings.
    var diagReps: Int
}

struct BenchConfig: Sendable {
    var sizes: [SizeConfig]
    var batchSize = 5000
    var workDir: String
    var seed: UInt64 = 20_260_701
    var kinds: Set<QueryKind> = Set(QueryKind.allCases)
    var maxQueriesPerKind = 100
    var keep = false
}

/// Cores kept busy by other processes over one second (from /proc/stat minus this process's
/// own time): other load on a shared machine.
func backgroundCpuCores() -> Double {
    func read() -> (busy: Double, total: Double, own: Double)? {
        guard let s = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = s.split(separator: "\n").first,
            let me = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = me.lastIndex(of: ")")
        else { return nil }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        let f = me[me.index(after: close)...].split(separator: " ")
        guard v.count >= 5, f.count > 13, let ut = Double(f[11]), let st = Double(f[12]) else { return nil }
        let idle = v[3] + v[4]
        let total = v.reduce(0, +)
        return (total - idle, total, ut + st)
    }
    guard let a = read() else { return .nan }
    Thread.sleep(forTimeInterval: 1)
    guard let b = read(), b.total > a.total else { return .nan }
    let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
    return max(0, (b.busy - a.busy - (b.own - a.own)) / (b.total - a.total) * cores)
}

func directorySize(_ path: String) -> Int {
    guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
    var total = 0
    for case let f as String in e {
        if let a = try? FileManager.default.attributesOfItem(atPath: path + "/" + f), let s = a[.size] as? Int { total += s }
    }
    return total
}

func fileSize(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0 }

/// One library size: import (P7), index size, queries (P5/P6).
final class SizeBench {
    let cfg: BenchConfig
    let size: SizeConfig
    let gen: Generator
    let dir: String
    var notes: [String] = []

    init(cfg: BenchConfig, size: SizeConfig) {
        self.cfg = cfg
        self.size = size
        gen = Generator(seed: cfg.seed)
        dir = cfg.workDir + "/rows-\(size.rows)"
    }

    func run() async throws -> SizeRun {
        let t0 = nowNs()
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let root = DataRoot(path: dir + "/zyk")
        let catalog = try Catalog.open(root: root)
        SearchText.prepare()

        let (owners, file) = try await seedOwners(catalog: catalog, root: root)
        return try measure(catalog: catalog, root: root, owners: owners, file: file, t0: t0)
    }

    func measure(catalog: Catalog, root: DataRoot, owners: [Principal], file: NewFile, t0: UInt64) throws -> SizeRun {
        let majorInfo = try catalog.majorInfo(codes: Vocabulary.domains.map(\.majorCode))

        // The anchor's table, same pragmas as the catalog (WAL, synchronous = FULL).
        let plainPath = dir + "/plain.sqlite"
        var pc = Configuration()
        pc.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let plain = try DatabaseQueue(path: plainPath, configuration: pc)
        try plain.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE plain (id INTEGER PRIMARY KEY, title TEXT NOT NULL, keywords TEXT NOT NULL, description TEXT NOT NULL, extra TEXT NOT NULL)")
        }

        // MARK: import (P7)
        let truth = TruthIndex()
        truth.reserve(records: size.rows, bytesPerRecord: 700)
        var ids: [String] = []
        ids.reserveCapacity(size.rows)
        var zykNs: [UInt64] = []
        var plainNs: [UInt64] = []
        var genNs: UInt64 = 0
        var validateNs: UInt64 = 0
        var traditional = 0
        let batches = (size.rows + cfg.batchSize - 1) / cfg.batchSize
        log("rows=\(size.rows): importing in \(batches) batches of \(cfg.batchSize) (zyk and plain alternately)")
        for b in 0..<batches {
            let lo = b * cfg.batchSize
            let hi = min(size.rows, lo + cfg.batchSize)
            let g0 = nowNs()
            let records = (lo..<hi).map { gen.record($0) }
            let g1 = nowNs()
            var items: [(owner: Principal, metadata: ResourceMetadata, files: [NewFile])] = []
            items.reserveCapacity(records.count)
            for (k, r) in records.enumerated() {
                switch MetadataValidator.validate(r.json, lookupMajor: { majorInfo[$0] }) {
                case .success(let m): items.append((owners[(lo + k) % owners.count], m, [file]))
                case .failure(let e): throw BenchError("record \(lo + k) is invalid: \(e.errors)")
                }
                truth.append(r.truth)
                if r.traditional { traditional += 1 }
            }
            let g2 = nowNs()
            genNs += g1 - g0
            validateNs += g2 - g1
            func insertPlain() throws {
                try plain.write { db in
                    let st = try db.cachedStatement(sql: "INSERT INTO plain (id, title, keywords, description, extra) VALUES (?, ?, ?, ?, ?)")
                    for (k, r) in records.enumerated() {
                        try st.execute(arguments: [lo + k + 1, r.title, r.keywordText, r.description, r.extra])
                    }
                }
            }
            var newIds: [String] = []
            if b % 2 == 0 {
                let a = nowNs(); try insertPlain(); let z = nowNs()
                newIds = try catalog.createResources(items, changeNote: "bulk import", publish: true)
                let e = nowNs()
                plainNs.append(z - a); zykNs.append(e - z)
            } else {
                let a = nowNs()
                newIds = try catalog.createResources(items, changeNote: "bulk import", publish: true)
                let z = nowNs(); try insertPlain(); let e = nowNs()
                zykNs.append(z - a); plainNs.append(e - z)
            }
            ids += newIds
            if b % max(1, batches / 10) == 0 || b == batches - 1 {
                let zr = Double(hi) / (Double(zykNs.reduce(0, +)) / 1e9)
                let pr = Double(hi) / (Double(plainNs.reduce(0, +)) / 1e9)
                log("  \(hi) rows: zyk \(Int(zr)) rows/s, plain \(Int(pr)) rows/s (last batch zyk \(Int(Double(zykNs.last!) / 1e6)) ms)")
            }
        }
        let zykS = Double(zykNs.reduce(0, +)) / 1e9
        let plainS = Double(plainNs.reduce(0, +)) / 1e9
        let tenth = max(1, batches / 10)
        func rate(_ slice: ArraySlice<UInt64>, rows: Int) -> Double { Double(rows) / (Double(slice.reduce(0, +)) / 1e9) }
        let firstRows = min(size.rows, tenth * cfg.batchSize)
        let lastRows = size.rows - (batches - tenth) * cfg.batchSize
        let imp = ImportResult(
            rows: size.rows, batchSize: cfg.batchSize, batches: batches, zykSeconds: zykS, plainSeconds: plainS,
            zykRowsPerSecond: Double(size.rows) / zykS, plainRowsPerSecond: Double(size.rows) / plainS, ratio: plainS / zykS,
            pairedRatioMedian: median(zip(plainNs, zykNs).map { Double($0) / Double($1) }),
            zykBatchMs: Dist(zykNs.map { Double($0) / 1e6 }), plainBatchMs: Dist(plainNs.map { Double($0) / 1e6 }),
            zykRowsPerSecondFirst10: rate(zykNs.prefix(tenth), rows: firstRows),
            zykRowsPerSecondLast10: rate(zykNs.suffix(tenth), rows: lastRows),
            generateSeconds: Double(genNs) / 1e9, validateSeconds: Double(validateNs) / 1e9, traditionalRecords: traditional)
        log(String(format: "  import done: zyk %.0f rows/s, plain %.0f rows/s, ratio %.3f", imp.zykRowsPerSecond, imp.plainRowsPerSecond, imp.ratio))

        // MARK: the benchmark's own connections
        var rc = Configuration()
        rc.readonly = true
        rc.prepareDatabase { db in db.add(tokenizer: ZykTokenizer.self) }
        // Checkpoint both databases so the file sizes are the data (nothing else writes now).
        try DatabaseQueue(path: root.catalogPath).writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try plain.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        let reader = try DatabaseQueue(path: root.catalogPath, configuration: rc)

        // rowid → record number (rows were inserted in order; checked, not assumed).
        let importedIds = ids
        let rowToRecord: [Int32] = try reader.read { db in
            let idIndex = Dictionary(uniqueKeysWithValues: importedIds.enumerated().map { ($1, Int32($0)) })
            let maxRow = try Int.fetchOne(db, sql: "SELECT max(rowid) FROM resources") ?? 0
            var map = [Int32](repeating: -1, count: maxRow + 1)
            let rows = try Row.fetchCursor(db, sql: "SELECT rowid, id FROM resources")
            while let row = try rows.next() {
                let id: String = row[1]
                map[row[0] as Int] = idIndex[id] ?? -1
            }
            return map
        }

        // MARK: index size
        let index = try indexSize(reader: reader, plain: plain, root: root, plainPath: plainPath)
        log("  index: \(index.ftsBytes) bytes (\(Int(index.ftsBytesPerRecord)) per record), catalog \(index.catalogFileBytes) bytes, plain \(index.plainFileBytes) bytes")

        // MARK: queries (P5/P6)
        let bg = backgroundCpuCores()
        _ = try reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM resources") }
        log(String(format: "  background load before queries: %.2f cores", bg))
        let likeSQL: (Int) -> String = { parts in
            "SELECT id FROM plain WHERE "
                + (1...parts).map { "(title LIKE ?\($0) OR keywords LIKE ?\($0) OR description LIKE ?\($0) OR extra LIKE ?\($0))" }
                .joined(separator: " AND ")
        }
        func like(_ q: BenchQuery) throws -> (Double, Int) {
            let t0 = nowNs()
            let n = try plain.read { db in try Int64.fetchAll(db, sql: likeSQL(q.likePatterns.count), arguments: StatementArguments(q.likePatterns)).count }
            return (ms(t0, nowNs()), n)
        }
        _ = try like(BenchQuery(kind: .char2Frequent, input: "教学", truth: [.substring("教学")]))  // pages in the table
        var queryResults: [QueryResult] = []
        var anchorCount: [QueryKind: Int] = [:]
        let queries = QuerySet.all.filter { cfg.kinds.contains($0.kind) }
        var perKindSeen: [QueryKind: Int] = [:]
        for q in queries {
            perKindSeen[q.kind, default: 0] += 1
            if perKindSeen[q.kind]! > cfg.maxQueriesPerKind { continue }
            let sq = SearchQuery(q.input)
            guard let expression = sq.expression else { throw BenchError("query \(q.input) has no expression") }
            var rq = ResourceQuery()
            rq.pageSize = 20
            func search(_ facets: Bool) throws -> SearchResult {
                try catalog.searchResources(rq, text: SearchQuery(q.input), sort: .relevance, viewer: nil, allowAnonymous: true, facets: facets)
            }
            var warm = 0.0
            for _ in 0..<size.warmup {
                let t0 = nowNs()
                _ = try search(false)
                warm = ms(t0, nowNs())
                if size.facetReps > 0 { _ = try search(true) }
            }
            // Slow queries get fewer repetitions (so the 1M run fits in time); the count is reported.
            let reps = size.queryBudget > 0 && warm > 0
                ? min(size.reps, max(size.minReps, Int(size.queryBudget * 1000 / warm))) : size.reps
            let doAnchor = anchorCount[q.kind, default: 0] < size.anchorQueries && size.anchorReps > 0
            if doAnchor { anchorCount[q.kind, default: 0] += 1 }
            var page: [Double] = []
            var faceted: [Double] = []
            var anchor: [Double] = []
            var likeHits: Int?
            var apiTotal = 0
            var firstPage = 0
            // Interleaved: the anchor runs spread over the repetitions, so both meet the same noise.
            let anchorEvery = doAnchor ? max(1, reps / size.anchorReps) : Int.max
            for rep in 0..<reps {
                if doAnchor && rep % anchorEvery == 0 && anchor.count < size.anchorReps {
                    let (t, n) = try like(q)
                    anchor.append(t)
                    likeHits = n
                }
                var t0 = nowNs()
                let r = try search(false)
                page.append(ms(t0, nowNs()))
                // Without facets the total is a lower bound past the ranking window; with facets it is exact.
                if r.totalExact { apiTotal = r.total }
                firstPage = r.hits.count
                if rep < size.facetReps {
                    t0 = nowNs()
                    let rf = try search(true)
                    faceted.append(ms(t0, nowNs()))
                    apiTotal = rf.total
                }
            }
            // The complete result set, for recall, and the parts of the search SQL alone (diagnosis).
            var diag: [String: Double] = [:]
            let resultSet: [Int64] = try reader.read { db in
                let all = try Int64.fetchAll(db, sql: "SELECT rowid FROM resource_search WHERE resource_search MATCH ?", arguments: [expression])
                for (name, sql) in Diagnostics.sql {
                    var t: [Double] = []
                    for _ in 0..<size.diagReps {
                        let t0 = nowNs()
                        _ = try Row.fetchAll(db, sql: sql, arguments: [expression])
                        t.append(ms(t0, nowNs()))
                    }
                    diag[name] = median(t)
                }
                return all
            }
            let truthSet = truth.records(all: q.truth)
            var resultRecords = Set<Int32>()
            resultRecords.reserveCapacity(resultSet.count)
            for rowid in resultSet {
                let r = rowid < rowToRecord.count ? rowToRecord[Int(rowid)] : -1
                resultRecords.insert(r)
            }
            let missedList = truthSet.filter { !resultRecords.contains(Int32($0)) }
            let found = truthSet.count - missedList.count
            let extra = resultRecords.count - found
            let qr = QueryResult(
                kind: q.kind.rawValue, input: q.input, truth: q.truth.map(\.text), note: q.note,
                expression: expression.replacingOccurrences(of: "\u{E002}", with: "~").replacingOccurrences(of: "\u{E003}", with: "^"),
                truthHits: truthSet.count, apiTotal: apiTotal, resultSet: resultSet.count, found: found, missed: missedList.count,
                extra: extra, recall: truthSet.isEmpty ? 1 : Double(found) / Double(truthSet.count),
                missedExamples: missedList.prefix(3).map { "#\($0): " + truth.text($0).prefix(80).replacingOccurrences(of: "\n", with: " | ") },
                likeHits: likeHits, anchorMs: anchor, anchorMedianMs: anchor.isEmpty ? nil : median(anchor), page: Dist(page),
                pageWithFacets: faceted.isEmpty ? nil : Dist(faceted), pageSamples: page, facetSamples: faceted, diagnosticsMs: diag, reps: reps, firstPageSize: firstPage)
            if apiTotal != resultSet.count { notes.append("\(q.input): API total \(apiTotal) ≠ MATCH count \(resultSet.count)") }
            log(String(
                format: "  %@ %@: hits %d (truth %d, recall %.4f, extra %d) page p50 %.2f p99 %.2f ms, facets p50 %.2f ms, LIKE %@ ms",
                q.kind.rawValue, q.input, resultSet.count, truthSet.count, qr.recall, extra, qr.page.p50, qr.page.p99,
                qr.pageWithFacets?.p50 ?? .nan, qr.anchorMedianMs.map { String(format: "%.1f", $0) } ?? "-"))
            queryResults.append(qr)
        }
        let kinds = QueryKind.allCases.compactMap { k -> KindResult? in
            let qs = queryResults.filter { $0.kind == k.rawValue }
            guard !qs.isEmpty else { return nil }
            return Self.summarize(k, qs, reps: size.reps)
        }
        if !cfg.keep {
            try? FileManager.default.removeItem(atPath: dir)
        }
        return SizeRun(
            rows: size.rows, seconds: Double(nowNs() - t0) / 1e9, backgroundCpuCores: bg, reps: size.reps, minReps: size.minReps, queryBudgetSeconds: size.queryBudget, facetReps: size.facetReps,
            anchorReps: size.anchorReps, importResult: imp, index: index, kinds: kinds, queries: queryResults, notes: notes)
    }

    static func summarize(_ k: QueryKind, _ qs: [QueryResult], reps: Int) -> KindResult {
        // All samples of the kind's queries pooled: p99 over (queries × repetitions).
        let page = Dist(qs.flatMap(\.pageSamples))
        let facets = qs.contains { !$0.facetSamples.isEmpty } ? Dist(qs.flatMap(\.facetSamples)) : nil
        let anchors = qs.compactMap(\.anchorMedianMs)
        let anchorMedian = anchors.isEmpty ? nil : median(anchors)
        let worst = qs.filter { $0.anchorMedianMs != nil }.max { $0.page.p99 / $0.anchorMedianMs! < $1.page.p99 / $1.anchorMedianMs! }
        let truthHits = qs.map(\.truthHits).reduce(0, +)
        let found = qs.map(\.found).reduce(0, +)
        let p50r = anchorMedian.map { page.p50 / $0 }
        let p99r = anchorMedian.map { page.p99 / $0 }
        return KindResult(
            kind: k.rawValue, queries: qs.count, targeted: k.targeted, medianHits: median(qs.map { Double($0.resultSet) }), page: page,
            pageWithFacets: facets, anchorMedianMs: anchorMedian, p50Ratio: p50r, p99Ratio: p99r,
            worstQueryP99Ratio: worst.map { $0.page.p99 / $0.anchorMedianMs! }, worstQuery: worst?.input, truthHits: truthHits, found: found,
            recall: truthHits == 0 ? 1 : Double(found) / Double(truthHits), minQueryRecall: qs.map(\.recall).min() ?? 1,
            extra: qs.map(\.extra).reduce(0, +),
            latencyMet: p50r.flatMap { a in p99r.map { b in a <= 1.0 / 20 && b <= 1.0 / 5 } }, recallMet: found == truthHits)
    }

    func indexSize(reader: DatabaseQueue, plain: DatabaseQueue, root: DataRoot, plainPath: String) throws -> IndexSize {
        let catalogBytes = fileSize(root.catalogPath) + fileSize(root.catalogPath + "-wal")
        let plainBytes = fileSize(plainPath) + fileSize(plainPath + "-wal")
        do {
            let (tables, segments): ([String: Int], Int?) = try reader.read { db in
                var t: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'resource_search%' GROUP BY name") {
                    t[row[0]] = row[1]
                }
                let segs = try? Int.fetchOne(db, sql: "SELECT count(DISTINCT segid) FROM resource_search_idx")
                return (t, segs)
            }
            let plainTable = try plain.read { db in try Int.fetchOne(db, sql: "SELECT sum(pgsize) FROM dbstat WHERE name = 'plain'") }
            let fts = tables.values.reduce(0, +)
            return IndexSize(
                method: "dbstat (sum of page sizes)", ftsBytes: fts, ftsBytesPerRecord: Double(fts) / Double(size.rows), ftsTables: tables,
                catalogFileBytes: catalogBytes, catalogBytesPerRecord: Double(catalogBytes) / Double(size.rows), plainFileBytes: plainBytes,
                plainTableBytes: plainTable, ftsSegments: segments)
        } catch {
            notes.append("dbstat unavailable (\(error)); index size not measured separately")
            return IndexSize(
                method: "unavailable", ftsBytes: 0, ftsBytesPerRecord: 0, ftsTables: [:], catalogFileBytes: catalogBytes,
                catalogBytesPerRecord: Double(catalogBytes) / Double(size.rows), plainFileBytes: plainBytes, plainTableBytes: nil, ftsSegments: nil)
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

/// The catalog's search SQL taken apart (anonymous viewer, as in the benchmark), plus the
/// suggested alternatives, timed on the benchmark's own read connection.
enum Diagnostics {
    static let vis = "r.deleted_at IS NULL AND (r.status = 'published' AND r.visibility = 'public')"
    static let from = "resource_search JOIN resources r ON r.rowid = resource_search.rowid"
    static let bm = "bm25(resource_search, 10.0, 6.0, 4.0, 3.0, 2.0, 1.0)"
    static let sql: [(String, String)] = [
        ("fts_count", "SELECT count(*) FROM resource_search WHERE resource_search MATCH ?"),
        ("api_count_join", "SELECT count(*) FROM \(from) WHERE resource_search MATCH ? AND \(vis)"),
        ("fts_top20_bm25", "SELECT rowid FROM resource_search WHERE resource_search MATCH ? ORDER BY \(bm) LIMIT 20"),
        ("api_page_join", "SELECT r.* FROM \(from) WHERE resource_search MATCH ? AND \(vis) ORDER BY \(bm), r.updated_at DESC, r.id DESC LIMIT 20 OFFSET 0"),
        // Suggested: rank only the 2,000 newest matches (FTS5 walks the doclist by rowid and stops), count capped.
        ("alt_newest2000_bm25_page", "SELECT r.* FROM (SELECT rowid, \(bm) AS s FROM resource_search WHERE resource_search MATCH ? ORDER BY rowid DESC LIMIT 2000) f JOIN resources r ON r.rowid = f.rowid WHERE \(vis) ORDER BY f.s, r.updated_at DESC, r.id DESC LIMIT 20"),
        ("alt_count_capped_10001", "SELECT count(*) FROM (SELECT rowid FROM resource_search WHERE resource_search MATCH ? LIMIT 10001)"),
    ]
}
