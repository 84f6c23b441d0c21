import Foundation
import GRDB
import ZiyuankuCore
import ZiyuankuStore

// SearchBench run   --sizes 100000,1000000 --work DIR --out-json F --out-md F [options]
// SearchBench probe --rows 100000        (generator check: hits per query, expressions; no database)
// SearchBench sample --rows 5            (prints a few generated records)
// SearchBench make-root --rows 100000 --root DIR   (only builds a data root; used by bench/upkeep)

var args = Array(CommandLine.arguments.dropFirst())
let command = args.isEmpty ? "help" : args.removeFirst()
var options: [String: String] = [:]
var flags = Set<String>()
var machine: [String: String] = [:]
while !args.isEmpty {
    let a = args.removeFirst()
    guard a.hasPrefix("--") else { fatalError("unexpected argument \(a)") }
    let key = String(a.dropFirst(2))
    if ["keep"].contains(key) {
        flags.insert(key)
    } else if key == "machine" {
        let kv = args.removeFirst().split(separator: "=", maxSplits: 1).map(String.init)
        machine[kv[0]] = kv.count > 1 ? kv[1] : ""
    } else {
        options[key] = args.isEmpty ? "" : args.removeFirst()
    }
}
@MainActor func ints(_ key: String, _ def: [Int]) -> [Int] { options[key].map { $0.split(separator: ",").map { Int($0)! } } ?? def }

switch command {
case "sample":
    let g = Generator()
    for i in 0..<(Int(options["rows"] ?? "5") ?? 5) {
        let r = g.record(i)
        print("#\(i) [\(r.majorCode) \(r.resourceType)\(r.traditional ? " trad" : "")] \(r.title)\n  kw: \(r.keywordText)\n  kp: \(r.knowledgePoints)\n  course: \(r.course ?? "-")  authors: \(r.authors)\n  \(r.description)\n")
    }
    let trad = (0..<20000).filter { g.record($0).traditional }.first.map { g.record($0) }
    if let trad { print("traditional example: \(trad.title) / \(trad.description)") }

case "probe":
    let rows = Int(options["rows"] ?? "100000") ?? 100000
    let g = Generator()
    let truth = TruthIndex()
    let t0 = nowNs()
    var bytes = 0
    var trad = 0
    for i in 0..<rows {
        let r = g.record(i)
        truth.append(r.truth)
        bytes += r.title.utf8.count + r.description.utf8.count + r.keywordText.utf8.count + r.extra.utf8.count
        if r.traditional { trad += 1 }
    }
    print(String(format: "generated %d records in %.1f s, %d text bytes/record, %d traditional", rows, Double(nowNs() - t0) / 1e9, bytes / rows, trad))
    // Our traditional map must come back to the simplified form under ICU (what the search uses).
    for (s, t) in Vocabulary.traditional where s != t {
        let back = String(t).applyingTransform(StringTransform("Traditional-Simplified"), reverse: false)
        let tok = SearchText.tokens(String(t) + String(t), mode: .document).first?.token
        if back != String(s) || tok != String(s) + String(s) { print("traditional map: \(t) → ICU \(back ?? "nil"), zyk token \(tok ?? "nil"), expected \(s)") }
    }
    for q in QuerySet.all {
        let n = truth.records(all: q.truth).count
        let e = (SearchQuery(q.input).expression ?? "nil").replacingOccurrences(of: "\u{E002}", with: "~").replacingOccurrences(of: "\u{E003}", with: "^")
        print("\(q.kind.rawValue)\t\(q.input)\t\(n)\t\(e)")
    }

case "run":
    let started = nowNs()
    let sizes = ints("sizes", [100_000, 1_000_000])
    func perSize(_ key: String, _ def: [Int]) -> [Int] {
        let v = ints(key, def)
        return sizes.indices.map { $0 < v.count ? v[$0] : v.last! }
    }
    let reps = perSize("reps", [20])
    let facetReps = perSize("facet-reps", [10, 1])
    let anchorReps = perSize("anchor-reps", [5, 1])
    let anchorQueries = perSize("anchor-queries", [100, 2])
    let warmups = perSize("warmup", [2, 1])
    let budgets = perSize("query-budget", [0, 3])
    let minReps = perSize("min-reps", [20, 5])
    let diagReps = perSize("diag-reps", [3, 1])
    var cfg = BenchConfig(
        sizes: sizes.indices.map {
            SizeConfig(
                rows: sizes[$0], reps: reps[$0], facetReps: facetReps[$0], anchorReps: anchorReps[$0], anchorQueries: anchorQueries[$0],
                warmup: warmups[$0], queryBudget: Double(budgets[$0]), minReps: minReps[$0], diagReps: diagReps[$0])
        },
        workDir: options["work"] ?? "bench/work/search-\(getpid())")
    cfg.batchSize = Int(options["batch"] ?? "5000") ?? 5000
    cfg.keep = flags.contains("keep")
    if let k = options["kinds"] { cfg.kinds = Set(k.split(separator: ",").compactMap { QueryKind(rawValue: String($0).replacingOccurrences(of: "_", with: " ")) }) }
    if let m = options["max-queries"] { cfg.maxQueriesPerKind = Int(m) ?? 100 }
    let outJSON = options["out-json"]
    let outMD = options["out-md"]

    machine["sqlite"] = try DatabaseQueue().read { try String.fetchOne($0, sql: "SELECT sqlite_version()") } ?? "?"
    var config: [String: String] = [
        "sizes": sizes.map(String.init).joined(separator: ","), "batch": String(cfg.batchSize), "warmup": warmups.map(String.init).joined(separator: ","),
        "query_budget_seconds": budgets.map(String.init).joined(separator: ","), "min_reps": minReps.map(String.init).joined(separator: ","),
        "reps": reps.map(String.init).joined(separator: ","), "facet_reps": facetReps.map(String.init).joined(separator: ","),
        "anchor_reps": anchorReps.map(String.init).joined(separator: ","),
        "anchor_queries_per_kind": anchorQueries.map(String.init).joined(separator: ","), "seed": String(cfg.seed),
        "anchor": "LIKE '%q%' on title OR keywords OR description OR extra (knowledge points, course, authors), system SQLite via GRDB, same process",
        "subject": "Catalog.searchResources(pageSize 20, sort .relevance, anonymous, facets false|true)",
        "recall": "complete MATCH result set (same expression, same tokenizer code) vs substring truth from the generator's simplified lower-case text",
    ]
    config["build"] = "swift build -c release"
    var runs: [SizeRun] = []
    let notes: [String] = [
        "All records are published and public; 8 organizations; one 60-byte PDF per record.",
        "P5 applies to the kinds marked targeted; 1-character queries are reported only.",
        "Relevance ranking is bounded (README, Search): with more than \(Catalog.rankWindow) visible matches BM25 ranks the newest \(Catalog.rankWindow); 'hits' is the complete MATCH result set, the API total without facets stops at \(Catalog.rankWindow) (totalExact false).",
        "For pinyin and initials the truth is the Chinese word they stand for; results with other characters of the same sound are counted as extra, not as errors.",
        "The LIKE anchor does not fold traditional characters, so its hit count is below the truth for ~2% of records; it is a timing anchor only.",
    ]
    func write() throws {
        let date = ISO8601DateFormatter().string(from: Date())
        let results = Targets.evaluate(runs)
        let report = Report(
            date: date, machine: machine, config: config, runs: runs, results: results,
            allMet: !results.isEmpty && results.values.allSatisfy { $0.met == true }, totalSeconds: Double(nowNs() - started) / 1e9, notes: notes)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        if let outJSON { try enc.encode(report).write(to: URL(fileURLWithPath: outJSON)) }
        if let outMD { try Markdown.render(report).write(toFile: outMD, atomically: true, encoding: .utf8) }
    }
    for s in cfg.sizes {
        let run = try await SizeBench(cfg: cfg, size: s).run()
        runs.append(run)
        try write()
        log("rows=\(s.rows) done in \(Int(run.seconds)) s")
    }
    if !cfg.keep { try? FileManager.default.removeItem(atPath: cfg.workDir) }
    try write()

case "make-root":
    guard let rootPath = options["root"] else { fatalError("make-root needs --root DIR") }
    try await makeRoot(
        rows: Int(options["rows"] ?? "100000") ?? 100_000, rootPath: rootPath, batchSize: Int(options["batch"] ?? "5000") ?? 5000,
        seed: UInt64(options["seed"] ?? "20260701") ?? 20_260_701)

case "render":
    // Re-renders the Markdown from a results JSON: --in F --out-md F
    let dec = JSONDecoder()
    dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    var report = try dec.decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: options["in"]!)))
    report.results = Targets.evaluate(report.runs)
    report.allMet = !report.results.isEmpty && report.results.values.allSatisfy { $0.met == true }
    try Markdown.render(report).write(toFile: options["out-md"]!, atomically: true, encoding: .utf8)

case "loop":
    // Repeats one search on an existing data root (for perf record): --root DIR --q TEXT --reps N [--facets 1]
    let catalog = try Catalog.open(root: DataRoot(path: options["root"]!))
    SearchText.prepare()
    let q = options["q"] ?? "教学"
    let reps = Int(options["reps"] ?? "100") ?? 100
    let facets = options["facets"] == "1"
    let rq = ResourceQuery()
    var times: [Double] = []
    for _ in 0..<reps {
        let t0 = nowNs()
        let r = try catalog.searchResources(rq, text: SearchQuery(q), sort: .relevance, viewer: nil, allowAnonymous: true, facets: facets)
        times.append(ms(t0, nowNs()))
        precondition(r.total >= 0)
    }
    let d = Dist(times)
    print(String(format: "%@ facets=%@: p50 %.2f ms p99 %.2f ms (n=%d)", q, facets ? "yes" : "no", d.p50, d.p99, d.n))

case "ftsexp":
    // Experiment for the import profile: FTS5 inserts interleaved with statements that open a
    // statement journal (as Catalog.insertResource does) vs. grouped at the end of the batch.
    let rows = Int(options["rows"] ?? "20000") ?? 20000
    let batch = Int(options["batch"] ?? "5000") ?? 5000
    let dir = options["work"] ?? "bench/work/ftsexp-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let g = Generator()
    let recs = (0..<rows).map { g.record($0) }
    SearchText.prepare()
    for mode in ["side table only (no FTS)", "interleaved VALUES", "FTS grouped after the batch", "interleaved DELETE + INSERT…SELECT + UPDATE (as the catalog)", "grouped INSERT…SELECT BETWEEN (one statement per batch)", "interleaved INSERT…SELECT only", "interleaved DELETE + VALUES", "interleaved VALUES + UPDATE"] {
        let path = dir + "/\(mode.hashValue).sqlite"
        var c = Configuration()
        c.prepareDatabase { db in
            db.add(tokenizer: ZykTokenizer.self)
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let q = try DatabaseQueue(path: path, configuration: c)
        try q.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: """
                CREATE TABLE side (id INTEGER PRIMARY KEY, title TEXT NOT NULL CHECK (length(title) > 0), body TEXT NOT NULL, kw TEXT, kp TEXT, course TEXT, authors TEXT, status TEXT);
                CREATE INDEX side_by_title ON side(title);
                CREATE VIRTUAL TABLE fts USING fts5(title, keywords, knowledge_points, course, authors, description, tokenize = 'zyk');
                """)
        }
        let t0 = nowNs()
        for lo in stride(from: 0, to: rows, by: batch) {
            let part = recs[lo..<min(rows, lo + batch)]
            try q.write { db in
                let side = try db.cachedStatement(sql: "INSERT INTO side (id, title, body, kw, kp, course, authors) VALUES (?, ?, ?, ?, ?, ?, ?)")
                let del = try db.cachedStatement(sql: "DELETE FROM fts WHERE rowid = ?")
                let sel = try db.cachedStatement(sql: "INSERT INTO fts (rowid, title, keywords, knowledge_points, course, authors, description) SELECT id, title, kw, kp, course, authors, body FROM side WHERE id = ?")
                let upd = try db.cachedStatement(sql: "UPDATE side SET status = 'published' WHERE id = ?")
                let fts = try db.cachedStatement(sql: "INSERT INTO fts (rowid, title, keywords, knowledge_points, course, authors, description) VALUES (?, ?, ?, ?, ?, ?, ?)")
                func index(_ i: Int, _ r: Record) throws {
                    try fts.execute(arguments: [i + 1, r.title, r.keywordText, r.knowledgePoints.joined(separator: " ; "), r.course, r.authors.joined(separator: " ; "), r.description])
                }
                for (k, r) in part.enumerated() {
                    try side.execute(arguments: [lo + k + 1, r.title, r.description, r.keywordText, r.knowledgePoints.joined(separator: " ; "), r.course, r.authors.joined(separator: " ; ")])
                    if mode == "interleaved VALUES" { try index(lo + k, r) }
                    if mode == "interleaved INSERT…SELECT only" { try sel.execute(arguments: [lo + k + 1]) }
                    if mode == "interleaved DELETE + VALUES" { try del.execute(arguments: [lo + k + 1]); try index(lo + k, r) }
                    if mode == "interleaved VALUES + UPDATE" { try index(lo + k, r); try upd.execute(arguments: [lo + k + 1]) }
                    if mode.hasPrefix("interleaved DELETE +") && mode.hasSuffix("catalog)") {
                        try del.execute(arguments: [lo + k + 1])
                        try sel.execute(arguments: [lo + k + 1])
                        try upd.execute(arguments: [lo + k + 1])
                    }
                }
                if mode.hasPrefix("FTS grouped") { for (k, r) in part.enumerated() { try index(lo + k, r) } }
                if mode.hasPrefix("grouped INSERT") {
                    try db.execute(sql: "INSERT INTO fts (rowid, title, keywords, knowledge_points, course, authors, description) SELECT id, title, kw, kp, course, authors, body FROM side WHERE id BETWEEN ? AND ?", arguments: [lo + 1, lo + part.count])
                }
            }
        }
        let s = Double(nowNs() - t0) / 1e9
        let size = try q.read { db in try Int.fetchOne(db, sql: "SELECT count(DISTINCT segid) FROM fts_idx") ?? 0 }
        print(String(format: "%@: %d rows in %.2f s = %.0f rows/s (%d FTS segments)", mode, rows, s, Double(rows) / s, size))
    }

case "parts":
    // Per-record costs of the pieces of an import, outside SQLite and inside FTS5.
    let rows = Int(options["rows"] ?? "20000") ?? 20000
    let g = Generator()
    let recs = (0..<rows).map { g.record($0) }
    SearchText.prepare()
    func timeit(_ name: String, _ body: () throws -> Void) rethrows {
        let t0 = nowNs()
        try body()
        let s = Double(nowNs() - t0) / 1e9
        print(String(format: "%@: %.2f µs/record (%.0f records/s)", name, s * 1e6 / Double(rows), Double(rows) / s))
    }
    timeit("Identifiers.uuidV7") { for _ in 0..<rows { _ = Identifiers.uuidV7() } }
    timeit("Timestamp.now") { for _ in 0..<rows { _ = Timestamp.now() } }
    let metas: [ResourceMetadata] = recs.map {
        if case .success(let m) = MetadataValidator.validate($0.json, lookupMajor: { MajorInfo(code: $0, educationLevel: $0 == "770101" ? .secondary : .higherVocational, isMajor: true) }) { return m }
        fatalError()
    }
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    timeit("JSONEncoder (sortedKeys) of the metadata") { for m in metas { _ = try! enc.encode(m) } }
    var tokens = 0
    var coloc = 0
    timeit("SearchText.tokenize of the searched fields (Swift only)") {
        for r in recs {
            for field in [r.title, r.keywordText, r.knowledgePoints.joined(separator: " ; "), r.course ?? "", r.authors.joined(separator: " ; "), r.description] {
                var b = Array(field.utf8)
                b.withUnsafeMutableBufferPointer { p in
                    SearchText.tokenize(UnsafeBufferPointer(p), mode: .document) { _, _, _, c in
                        tokens += 1
                        if c { coloc += 1 }
                        return true
                    }
                }
            }
        }
    }
    print("tokens per record: \(tokens / rows) (of which colocated pinyin/initials \(coloc / rows))")
    let dir = options["work"] ?? "bench/work/parts-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for tok in ["zyk", "zyk_nopinyin", "unicode61"] {
        var c = Configuration()
        c.prepareDatabase { db in
            db.add(tokenizer: ZykTokenizer.self)
            db.add(tokenizer: BenchNoPinyinTokenizer.self)
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let q = try DatabaseQueue(path: dir + "/\(tok).sqlite", configuration: c)
        try q.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE VIRTUAL TABLE fts USING fts5(title, keywords, knowledge_points, course, authors, description, tokenize = '\(tok)')")
        }
        try timeit("FTS5 insert, tokenizer \(tok), batches of 5000 (VALUES)") {
            for lo in stride(from: 0, to: rows, by: 5000) {
                try q.write { db in
                    let st = try db.cachedStatement(sql: "INSERT INTO fts (rowid, title, keywords, knowledge_points, course, authors, description) VALUES (?, ?, ?, ?, ?, ?, ?)")
                    for i in lo..<min(rows, lo + 5000) {
                        let r = recs[i]
                        try st.execute(arguments: [i + 1, r.title, r.keywordText, r.knowledgePoints.joined(separator: " ; "), r.course, r.authors.joined(separator: " ; "), r.description])
                    }
                }
            }
        }
        let bytes = try q.read { db in try Int.fetchOne(db, sql: "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'fts%'") ?? 0 }
        print("   index \(bytes / rows) bytes/record")
    }

case "reindex":
    // Times Catalog.reindex (batched INSERT … SELECT into the FTS table) on an existing data root.
    let catalog = try Catalog.open(root: DataRoot(path: options["root"]!))
    SearchText.prepare()
    let t0 = nowNs()
    let n = try catalog.reindex(batchSize: Int(options["batch"] ?? "5000") ?? 5000)
    let s = Double(nowNs() - t0) / 1e9
    print(String(format: "reindex of %d resources: %.1f s = %.0f rows/s", n, s, Double(n) / s))

case "diag":
    // Times the catalog's search SQL piece by piece on an existing data root: --root DIR --q a,b --reps N
    let root = DataRoot(path: options["root"]!)
    let reps = Int(options["reps"] ?? "10") ?? 10
    for variant in ["default", "cache_size=-262144", "mmap_size=1073741824"] {
        var c = Configuration()
        c.readonly = true
        c.prepareDatabase { db in
            db.add(tokenizer: ZykTokenizer.self)
            if variant != "default" { try db.execute(sql: "PRAGMA " + variant) }
        }
        let dbq = try DatabaseQueue(path: root.catalogPath, configuration: c)
        print("-- connection: \(variant)")
        for q in (options["q"] ?? "教学").split(separator: ",").map(String.init) {
            let e = SearchQuery(q).expression!
            let vis = "r.deleted_at IS NULL AND (r.status = 'published' AND r.visibility = 'public')"
            let from = "resource_search JOIN resources r ON r.rowid = resource_search.rowid"
            let bm = "bm25(resource_search, 10.0, 6.0, 4.0, 3.0, 2.0, 1.0)"
            let sqls: [(String, String)] = [
                ("fts count", "SELECT count(*) FROM resource_search WHERE resource_search MATCH ?"),
                ("api count (join)", "SELECT count(*) FROM \(from) WHERE resource_search MATCH ? AND \(vis)"),
                ("fts top20 bm25", "SELECT rowid FROM resource_search WHERE resource_search MATCH ? ORDER BY \(bm) LIMIT 20"),
                ("api page (join, r.*)", "SELECT r.* FROM \(from) WHERE resource_search MATCH ? AND \(vis) ORDER BY \(bm), r.updated_at DESC, r.id DESC LIMIT 20 OFFSET 0"),
                ("api page, rowid only", "SELECT r.rowid FROM \(from) WHERE resource_search MATCH ? AND \(vis) ORDER BY \(bm), r.updated_at DESC, r.id DESC LIMIT 20 OFFSET 0"),
                ("fts-first top200 then join", "SELECT r.* FROM (SELECT rowid, \(bm) AS s FROM resource_search WHERE resource_search MATCH ? ORDER BY s LIMIT 200) f JOIN resources r ON r.rowid = f.rowid WHERE \(vis) ORDER BY f.s, r.updated_at DESC, r.id DESC LIMIT 20"),
                ("newest 2000 candidates, bm25", "SELECT r.* FROM (SELECT rowid, \(bm) AS s FROM resource_search WHERE resource_search MATCH ? ORDER BY rowid DESC LIMIT 2000) f JOIN resources r ON r.rowid = f.rowid WHERE \(vis) ORDER BY f.s, r.updated_at DESC, r.id DESC LIMIT 20"),
                ("fts rowid-order first 20", "SELECT rowid FROM resource_search WHERE resource_search MATCH ? ORDER BY rowid DESC LIMIT 20"),
                ("count capped 10001", "SELECT count(*) FROM (SELECT rowid FROM resource_search WHERE resource_search MATCH ? LIMIT 10001)"),
            ]
            for (name, sql) in sqls {
                var t: [Double] = []
                try dbq.read { db in
                    _ = try Row.fetchAll(db, sql: sql, arguments: [e])
                    for _ in 0..<reps {
                        let t0 = nowNs()
                        _ = try Row.fetchAll(db, sql: sql, arguments: [e])
                        t.append(ms(t0, nowNs()))
                    }
                }
                print(String(format: "%@\t%-30@\tp50 %8.2f ms", q, name, median(t)))
            }
        }
    }

default:
    print("usage: SearchBench run|probe|sample|make-root [options]; see bench/README.md")
}
