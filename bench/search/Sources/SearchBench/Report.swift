import Foundation

enum Targets {
    /// P5 on the first run (100,000 rows), P6 comparing the last run with the first, P7 on the first.
    static func evaluate(_ runs: [SizeRun]) -> [String: TargetResult] {
        var out: [String: TargetResult] = [:]
        guard let small = runs.first else { return out }
        // P5
        var d5: [String: Double] = [:]
        var n5: [String] = []
        var met5 = true
        for k in small.kinds where k.targeted {
            d5[k.kind + " p50/anchor"] = k.p50Ratio ?? .nan
            d5[k.kind + " p99/anchor"] = k.p99Ratio ?? .nan
            d5[k.kind + " recall"] = k.recall
            if k.latencyMet != true {
                met5 = false
                n5.append(String(format: "%@: p50 %.3f× (≤ 0.05), p99 %.3f× (≤ 0.2) of LIKE's median", k.kind, k.p50Ratio ?? .nan, k.p99Ratio ?? .nan))
            }
            if !k.recallMet {
                met5 = false
                n5.append(String(format: "%@: recall %.4f (%d of %d)", k.kind, k.recall, k.found, k.truthHits))
            }
        }
        out["P5"] = TargetResult(
            what: "search, \(small.rows) resources, ranked first page (no facets), 2/3/4-char, pinyin, initials, mixed",
            target: "per kind: p50 ≤ 1/20 and p99 ≤ 1/5 of LIKE '%q%' median; recall 100% against substring truth",
            met: small.kinds.isEmpty ? nil : met5, details: d5, notes: n5)
        // P6
        if runs.count > 1, let large = runs.last {
            var d6: [String: Double] = [:]
            var n6: [String] = []
            var met6 = true
            for k in large.kinds where k.targeted {
                guard let s = small.kinds.first(where: { $0.kind == k.kind }) else { continue }
                let g = k.page.p99 / s.page.p99
                d6[k.kind + " p99 growth"] = g
                if !(g <= 5) {
                    met6 = false
                    n6.append(String(format: "%@: p99 %.1f ms → %.1f ms (%.1f×)", k.kind, s.page.p99, k.page.p99, g))
                }
            }
            out["P6"] = TargetResult(
                what: "search at \(large.rows) resources vs \(small.rows)", target: "p99 grows ≤ 5× (per kind)", met: met6, details: d6,
                notes: n6)
        }
        // P7
        let i = small.importResult
        out["P7"] = TargetResult(
            what: "bulk import of \(i.rows) metadata records (indexing included), batches of \(i.batchSize)",
            target: "≥ 0.2× a plain SQLite insert of the same rows (rows/s)", met: i.ratio >= 0.2,
            details: ["ratio": i.ratio, "zyk rows/s": i.zykRowsPerSecond, "plain rows/s": i.plainRowsPerSecond, "paired ratio median": i.pairedRatioMedian],
            notes: [String(format: "zyk %.0f rows/s, plain %.0f rows/s: %.3f×", i.zykRowsPerSecond, i.plainRowsPerSecond, i.ratio)])
        return out
    }
}

enum Markdown {
    static func f(_ x: Double?, _ digits: Int = 1) -> String {
        guard let x, x.isFinite else { return "–" }
        return String(format: "%.\(digits)f", x)
    }

    static func ratio(_ x: Double?) -> String {
        guard let x, x.isFinite else { return "–" }
        return x < 0.01 ? String(format: "%.4f", x) : String(format: "%.3f", x)
    }

    static func met(_ b: Bool?) -> String { b == nil ? "–" : (b! ? "yes" : "**no**") }

    static func render(_ r: Report) -> String {
        var s = "# Search benchmark (P5, P6, P7): \(r.date)\n\n"
        s += "Machine: \(r.machine["cpu"] ?? "?"), \(r.machine["nproc"] ?? "?") cores, \(r.machine["memory"] ?? "?"); "
        s += "SQLite \(r.machine["sqlite"] ?? "?"); commit \(r.machine["commit"] ?? "?")"
        if r.machine["sources_dirty"] == "true" { s += " (Sources/ had uncommitted changes)" }
        s += String(format: ". Total run time %.0f s.\n\n", r.totalSeconds)
        s += "Anchor: `LIKE '%q%'` over the same rows' title, keywords, description and other searched fields (plain table, "
        s += "system SQLite through GRDB, same process). Latencies in ms; ratios are zyk / anchor median.\n\n"

        s += "## Targets\n\n| # | what | target | met | notes |\n| --- | --- | --- | --- | --- |\n"
        for key in r.results.keys.sorted() {
            let t = r.results[key]!
            s += "| \(key) | \(t.what) | \(t.target) | \(met(t.met)) | \(t.notes.isEmpty ? "" : t.notes.joined(separator: "; ")) |\n"
        }
        s += "\nAll met: \(r.allMet ? "yes" : "**no**")\n"

        let small = r.runs.first
        let warmups = (r.config["warmup"] ?? "").split(separator: ",").map(String.init)
        for (n, run) in r.runs.enumerated() {
            let warmup = n < warmups.count ? warmups[n] : (warmups.last ?? "?")
            s += "\n## \(run.rows.formatted()) rows: queries (ranked first page of 20)\n\n"
            if run.queryBudgetSeconds > 0 {
                s += String(format: "Each query repeated for about %.0f s (%d–%d times, see the per-query table) after %@ warm-up", run.queryBudgetSeconds, run.minReps, run.reps, warmup)
            } else {
                s += String(format: "%d repetitions per query after %@ warm-up", run.reps, warmup)
            }
            s += String(format: ", %d with facets; LIKE %d× per query%@; other processes kept %.2f cores busy (measured for 1 s before the queries).\n\n",
                run.facetReps, run.anchorReps, run.rows == small?.rows ? "" : " on the first \(r.config["anchor_queries_per_kind"]?.split(separator: ",").last ?? "?") queries of each kind", run.backgroundCpuCores)
            s += "| kind | queries | median hits | p50 | p99 | with facets p50 / p99 | LIKE median | p50 ratio | p99 ratio | recall | extra hits |"
            if run.rows != small?.rows { s += " p99 vs first run |" }
            s += " P5 latency |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            if run.rows != small?.rows { s += " --- |" }
            s += " --- |\n"
            for k in run.kinds {
                s += "| \(k.kind)\(k.targeted ? "" : " (not targeted)") | \(k.queries) | \(Int(k.medianHits)) | \(f(k.page.p50, 2)) | \(f(k.page.p99, 2)) | "
                s += "\(f(k.pageWithFacets?.p50)) / \(f(k.pageWithFacets?.p99)) | \(f(k.anchorMedianMs)) | \(ratio(k.p50Ratio)) | \(ratio(k.p99Ratio)) | "
                s += "\(String(format: "%.4f", k.recall)) (\(k.found)/\(k.truthHits)) | \(k.extra) |"
                if run.rows != small?.rows {
                    let g = small?.kinds.first { $0.kind == k.kind }.map { k.page.p99 / $0.page.p99 }
                    s += " \(f(g, 2))× |"
                }
                s += " \(k.targeted ? met(k.latencyMet) : "–") |\n"
            }
            let i = run.importResult
            s += "\n**Import** (\(i.batches) batches of \(i.batchSize), each one transaction, zyk and plain alternately): "
            s += String(format: "zyk %.0f rows/s, plain insert %.0f rows/s, ratio %.3f (paired per batch: %.3f); ", i.zykRowsPerSecond, i.plainRowsPerSecond, i.ratio, i.pairedRatioMedian)
            s += String(format: "zyk first 10%% of batches %.0f rows/s, last 10%% %.0f rows/s. ", i.zykRowsPerSecondFirst10, i.zykRowsPerSecondLast10)
            s += String(format: "Generating took %.1f s, validating %.1f s (not timed). %d records use traditional characters.\n", i.generateSeconds, i.validateSeconds, i.traditionalRecords)
            let x = run.index
            s += "\n**Index size** (\(x.method)): FTS5 \(x.ftsBytes.formatted()) bytes = \(Int(x.ftsBytesPerRecord)) bytes/record"
            if let seg = x.ftsSegments { s += " (\(seg) segments)" }
            s += "; catalog file \(x.catalogFileBytes.formatted()) bytes (\(Int(x.catalogBytesPerRecord)) per record); "
            s += "plain table \((x.plainTableBytes ?? 0).formatted()) bytes, plain file \(x.plainFileBytes.formatted()) bytes.\n"
            if !run.notes.isEmpty { s += "\nNotes: " + run.notes.joined(separator: "; ") + "\n" }
        }

        for run in r.runs {
            s += "\n## Per query, \(run.rows.formatted()) rows\n\n"
            s += "| kind | query | hits | truth | recall | extra | p50 | p99 | facets p50 | LIKE | FTS-only top 20 | count with join | alt: newest 2000 | reps | expression |\n"
            s += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
            for q in run.queries {
                var e = q.expression.replacingOccurrences(of: "|", with: "\\|")
                if e.count > 60 { e = String(e.prefix(57)) + "…" }
                s += "| \(q.kind) | \(q.input)\(q.note.map { " (\($0))" } ?? "") | \(q.resultSet) | \(q.truthHits) | \(String(format: "%.4f", q.recall)) | \(q.extra) | "
                s += "\(f(q.page.p50, 2)) | \(f(q.page.p99, 2)) | \(f(q.pageWithFacets?.p50)) | \(f(q.anchorMedianMs)) | \(f(q.diagnosticsMs["fts_top20_bm25"], 2)) | \(f(q.diagnosticsMs["api_count_join"], 2)) | \(f(q.diagnosticsMs["alt_newest2000_bm25_page"], 2)) | \(q.reps) | `\(e)` |\n"
            }
        }
        if !r.notes.isEmpty { s += "\n## Notes\n\n" + r.notes.map { "- " + $0 }.joined(separator: "\n") + "\n" }
        return s
    }
}
