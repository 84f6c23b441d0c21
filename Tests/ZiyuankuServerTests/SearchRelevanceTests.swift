import Foundation
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuTestSupport

/// Search relevance (docs/product.md#search) against `Fixtures/relevance.json`: a few hundred teaching
/// resources of six majors and queries whose expected results are computed here by an oracle
/// that knows nothing about the index (Foundation's ICU transforms + plain substring checks).
///
/// Required: full recall for every query; nothing for must-return-nothing queries; full
/// precision for Chinese substring queries; pinyin precision reported (≥ 0.5 overall); titles
/// outrank description-only mentions; `total` equals the hits; highlights are marked and escaped.
@Suite struct SearchRelevanceTests {
    // MARK: fixture

    struct Record: Decodable {
        var title: String
        var description: String
        var keywords: [String]
        var knowledgePoints: [String]?
        var course: String?
        var authors: [String]
        var resourceType: String
        var majorCode: String

        /// Every searchable field value, one string per value (lists are not joined).
        var fields: [String] { [title, description] + keywords + (knowledgePoints ?? []) + [course].compactMap { $0 } + authors }
        /// Every searchable field value except the description.
        var fieldsButDescription: [String] { [title] + keywords + (knowledgePoints ?? []) + [course].compactMap { $0 } + authors }
    }

    struct OneOrMany: Decodable {
        var values: [String]
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { values = [s] } else { values = try c.decode([String].self) }
        }
    }

    struct Query: Decodable {
        var q: String
        var kind: String
        /// All must be contained (after folding) in some field.
        var substring: OneOrMany?
        /// Some Latin word must start with it.
        var wordPrefix: String?
        /// The parts, in order, separated only by non-letters (spaces, punctuation).
        var adjacent: [String]?
        /// None may be contained.
        var exclude: [String]?
        /// The exact titles (usually empty: must return nothing).
        var expected: [String]?
        /// Pinyin and initials may match other words with the same sounds: precision is only reported.
        var recallOnly: Bool?
    }

    struct Fixture: Decodable {
        var records: [Record]
        var queries: [Query]
    }

    static func loadFixture() throws -> Fixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/relevance.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    /// Kinds whose results must be exactly the expected set.
    static let strictKinds: Set<String> = ["han1", "han2", "han3", "han4plus", "traditional", "multiWord", "phrase", "exclude", "none"]
    static let pinyinKinds: Set<String> = ["pinyinFull", "pinyinInitials"]
    static let kindOrder = [
        "han1", "han2", "han3", "han4plus", "pinyinFull", "pinyinInitials", "traditional", "fullWidth", "english", "mixed", "multiWord",
        "phrase", "exclude", "none",
    ]

    // MARK: the oracle (independent of SearchText)

    enum Oracle {
        /// Traditional → simplified, full-width → ASCII (NFKC), lower case.
        static func fold(_ s: String) -> String {
            (s.applyingTransform(StringTransform("Traditional-Simplified"), reverse: false) ?? s)
                .precomposedStringWithCompatibilityMapping.lowercased()
        }

        static func isHan(_ u: Unicode.Scalar) -> Bool {
            switch u.value {
            case 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0x20000...0x2FA1F: true
            default: false
            }
        }

        /// Latin (and other non-Han) words: runs of letters and digits.
        static func words(_ folded: String) -> [Substring] {
            folded.split { c in !(c.isLetter || c.isNumber) || c.unicodeScalars.contains(where: isHan) }
        }

        static func adjacentRegex(_ parts: [String]) throws -> NSRegularExpression {
            let pieces = parts.map { part -> String in
                let f = fold(part)
                var p = NSRegularExpression.escapedPattern(for: f)
                if let first = f.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || ("0"..."9").contains(first) {
                    p = "(?<![a-z0-9])" + p
                }
                if let last = f.unicodeScalars.last, last.isASCII, last.properties.isAlphabetic || ("0"..."9").contains(last) {
                    p += "(?![a-z0-9])"
                }
                return p
            }
            return try NSRegularExpression(pattern: pieces.joined(separator: "[^\\p{L}\\p{N}]*"))
        }

        struct Compiled {
            var substrings: [String]
            var wordPrefix: String?
            var adjacent: NSRegularExpression?
            var excluded: [String]
            var titles: Set<String>?

            init(_ q: Query) throws {
                substrings = (q.substring?.values ?? []).map(fold)
                wordPrefix = q.wordPrefix.map(fold)
                adjacent = try q.adjacent.map(adjacentRegex)
                excluded = (q.exclude ?? []).map(fold)
                titles = q.expected.map(Set.init)
            }

            func matches(_ r: Record, folded fields: [String]) -> Bool {
                if let titles { return titles.contains(r.title) }
                for s in substrings where !fields.contains(where: { $0.contains(s) }) { return false }
                if let wordPrefix, !fields.contains(where: { words($0).contains { $0.hasPrefix(wordPrefix) } }) { return false }
                if let adjacent,
                    !fields.contains(where: { adjacent.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil })
                {
                    return false
                }
                for e in excluded where fields.contains(where: { $0.contains(e) }) { return false }
                return true
            }
        }
    }

    // MARK: loading and searching

    struct Loaded {
        var env: TestEnv
        var records: [Record]
        var byId: [String: Int]
    }

    static func load(_ fixture: Fixture) async throws -> Loaded {
        let env = try TestEnv()
        let catalog = env.services.catalog
        let owner = env.principals["owner"]!
        let blob = try await SampleFiles.store(Fixtures.pdf, in: env.services.blobs)
        let file = NewFile(name: "资源.pdf", sha256: blob.sha256, size: blob.size, mediaType: "application/pdf", role: .primary)
        let majors = try catalog.majorInfo(codes: Array(Set(fixture.records.map(\.majorCode))).sorted())
        var byId: [String: Int] = [:]
        for (i, r) in fixture.records.enumerated() {
            guard let major = majors[r.majorCode] else {
                Issue.record("unknown major \(r.majorCode) for \(r.title)")
                continue
            }
            var object: [String: JSONValue] = [
                "title": .string(r.title), "description": .string(r.description), "keywords": .array(r.keywords.map { .string($0) }),
                "knowledgePoints": .array((r.knowledgePoints ?? []).map { .string($0) }), "resourceType": .string(r.resourceType),
                "granularity": .string("asset"), "educationLevel": .string(major.educationLevel.rawValue),
                "majorCodes": .array([.string(r.majorCode)]),
                "authors": .array(r.authors.map { .object(["name": .string($0), "role": .string("author")]) }),
                "copyrightHolder": .string("康复职业技术学院"), "license": .string("CC-BY-4.0"), "originality": .string("original"),
                "visibility": .string("public"),
            ]
            if let course = r.course { object["course"] = .string(course) }
            let metadata: ResourceMetadata
            switch MetadataValidator.validate(object, lookupMajor: { majors[$0] }) {
            case .success(let m): metadata = m
            case .failure(let e):
                Issue.record("record \(i) \(r.title) is invalid: \(e.errors)")
                continue
            }
            let id = try catalog.createResource(owner: owner, metadata: metadata, files: [file], changeNote: "").state.id
            _ = try catalog.publish(id: id, authorize: { _ in })
            byId[id] = i
        }
        return Loaded(env: env, records: fixture.records, byId: byId)
    }

    struct Outcome {
        var hits: [SearchHit]
        var totals: Set<Int>
        var ids: [String] { hits.map(\.view.state.id) }
    }

    /// Every page of an anonymous relevance search.
    static func search(_ catalog: Catalog, _ text: String) throws -> Outcome {
        var q = ResourceQuery()
        q.pageSize = 100
        var out = Outcome(hits: [], totals: [])
        for page in 1...100 {
            q.page = page
            let r = try catalog.searchResources(q, text: SearchQuery(text), sort: .relevance, viewer: nil, allowAnonymous: true, facets: false)
            out.totals.insert(r.total)
            out.hits += r.hits
            if r.hits.count < q.pageSize { break }
        }
        return out
    }

    // MARK: the test

    struct Score {
        var query: Query
        var expected: Int
        var returned: Int
        var correct: Int
        /// Titles returned but not expected (for the report).
        var extras: [String] = []
        /// Whether every expected record ranks above every unexpected one.
        var expectedFirst = true
        var recall: Double { expected == 0 ? 1 : Double(correct) / Double(expected) }
        var precision: Double { returned == 0 ? 1 : Double(correct) / Double(returned) }
    }

    @Test func recallPrecisionRankingAndHighlights() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let fixture = try Self.loadFixture()
        let loaded = try await Self.load(fixture)
        let catalog = loaded.env.services.catalog
        let records = loaded.records
        #expect(loaded.byId.count == records.count, "only \(loaded.byId.count) of \(records.count) records were created")
        let folded = records.map { $0.fields.map(Oracle.fold) }
        let loadedAt = clock.now

        var scores: [Score] = []
        var highlightProblems: [String] = []
        for query in fixture.queries {
            let oracle = try Oracle.Compiled(query)
            let expected = Set(records.indices.filter { oracle.matches(records[$0], folded: folded[$0]) })
            let outcome = try Self.search(catalog, query.q)
            let ids = outcome.ids
            let returned = Set(ids.compactMap { loaded.byId[$0] })
            let correct = expected.intersection(returned)
            let order = ids.compactMap { loaded.byId[$0] }
            var score = Score(query: query, expected: expected.count, returned: returned.count, correct: correct.count)
            score.extras = order.filter { !expected.contains($0) }.map { records[$0].title }
            if let firstExtra = order.firstIndex(where: { !expected.contains($0) }),
                let lastExpected = order.lastIndex(where: { expected.contains($0) })
            {
                score.expectedFirst = lastExpected < firstExtra
            }
            scores.append(score)
            let label = "[\(query.kind)] \(query.q)"

            // The fixture must exercise every query it lists.
            if query.kind != "none" {
                #expect(!expected.isEmpty, "\(label): the fixture has no record this query should find")
            }
            // Counts and paging.
            #expect(Set(ids).count == ids.count, "\(label): a resource appears on two pages")
            #expect(outcome.totals == [ids.count], "\(label): total \(outcome.totals.sorted()) but \(ids.count) hits")
            // Recall: every expected record is found.
            let missed = expected.subtracting(returned).sorted().map { records[$0].title }
            #expect(missed.isEmpty, "\(label): recall \(correct.count)/\(expected.count), missed \(missed)")
            // Precision: exact for Chinese substring queries, phrases, exclusions and must-return-nothing.
            if Self.strictKinds.contains(query.kind) && query.recallOnly != true {
                let extra = returned.subtracting(expected).sorted().map { records[$0].title }
                #expect(extra.isEmpty, "\(label): \(extra.count) unexpected results, e.g. \(extra.prefix(8))")
            }
            // Highlights: escaped, reversible, and marking the Chinese term where the title holds it.
            let term =
                query.substring?.values.count == 1 && Self.strictKinds.contains(query.kind) && query.exclude == nil
                ? Oracle.fold(query.substring!.values[0]) : nil
            for hit in outcome.hits {
                let title = hit.view.version.metadata.title
                guard let h = hit.titleHighlight else {
                    highlightProblems.append("\(label): no titleHighlight for \(title)")
                    continue
                }
                if let problem = Self.highlightProblem(h, original: title) { highlightProblems.append("\(label): \(problem)") }
                if let snippet = hit.descriptionSnippet {
                    let bare = snippet.replacingOccurrences(of: "<mark>", with: "").replacingOccurrences(of: "</mark>", with: "")
                    if bare.contains("<") || bare.contains(">") { highlightProblems.append("\(label): raw < or > in snippet \(snippet)") }
                }
                if let term {
                    let marked = Self.markedTexts(h).map(Oracle.fold)
                    if Oracle.fold(title).contains(term) {
                        if !marked.contains(where: { $0.contains(term) }) { highlightProblems.append("\(label): \(term) not marked in \(h)") }
                    } else if !marked.isEmpty {
                        highlightProblems.append("\(label): marks \(marked) in a title without \(term): \(h)")
                    }
                }
            }
        }
        #expect(highlightProblems.isEmpty, "\(highlightProblems.count) highlight problems, e.g. \(highlightProblems.prefix(10))")
        let queriedAt = clock.now

        // Pinyin precision is reported per query and required to be at least 0.5 overall.
        let pinyin = scores.filter { Self.pinyinKinds.contains($0.query.kind) }
        let pinyinPrecision = Double(pinyin.map(\.correct).reduce(0, +)) / Double(max(1, pinyin.map(\.returned).reduce(0, +)))
        #expect(pinyinPrecision >= 0.5, "pinyin precision \(pinyinPrecision)")

        // Ranking: a title containing the term outranks a record mentioning it only in its description.
        var pairs = 0
        var rankingLines: [String] = []
        for term in ["康复", "护理", "中药", "实训", "注射", "治疗", "艾灸", "质量控制"] {
            let f = Oracle.fold(term)
            let order = try Self.search(catalog, term).ids.compactMap { loaded.byId[$0] }
            var titleRanks: [Int] = []
            var descriptionOnlyRanks: [Int] = []
            for (rank, i) in order.enumerated() {
                let r = records[i]
                if Oracle.fold(r.title).contains(f) {
                    titleRanks.append(rank)
                } else if Oracle.fold(r.description).contains(f) && !r.fieldsButDescription.contains(where: { Oracle.fold($0).contains(f) }) {
                    descriptionOnlyRanks.append(rank)
                }
            }
            #expect(!titleRanks.isEmpty && !descriptionOnlyRanks.isEmpty, "\(term): the fixture has no title/description-only pair")
            for t in titleRanks {
                for d in descriptionOnlyRanks {
                    pairs += 1
                    #expect(
                        t < d,
                        "\(term): \(records[order[t]].title) (title, rank \(t + 1)) is below \(records[order[d]].title) (description only, rank \(d + 1))")
                }
            }
            rankingLines.append(
                "  \(term): \(titleRanks.count) title hits ranked \(titleRanks.map { $0 + 1 }.max() ?? 0) at worst; "
                    + "description-only hits ranked \(descriptionOnlyRanks.map { $0 + 1 })")
        }
        #expect(pairs >= 5, "only \(pairs) ranking pairs")

        // Specific highlights.
        let highlightCases: [(query: String, title: String, highlight: String)] = [
            ("藥學", "藥學概論：藥物的發現與發展", "<mark>藥學</mark>概論：藥物的發現與發展"),
            ("藥學", "药学英语：Drug Instructions阅读", "<mark>药学</mark>英语：Drug Instructions阅读"),
            ("kfzl", "康复治疗技术专业导论", "<mark>康复治疗</mark>技术专业导论"),
            ("kangfu", "康復評定技術：平衡功能評定", "<mark>康復</mark>評定技術：平衡功能評定"),
            ("ＰＬＣ", "制药设备ＰＬＣ编程基础", "制药设备<mark>ＰＬＣ</mark>编程基础"),
            ("ＰＬＣ", "PLC控制的旋转式压片机", "<mark>PLC</mark>控制的旋转式压片机"),
            ("pyth", "用Python处理表面肌电（sEMG）信号", "用<mark>Pyth</mark>on处理表面肌电（sEMG）信号"),
            ("3D打印", "3D打印矫形器的设计与制作", "<mark>3D打印</mark>矫形器的设计与制作"),
            ("低血糖", "血糖<3.9 mmol/L：低血糖的识别与护理", "血糖&lt;3.9 mmol/L：<mark>低血糖</mark>的识别与护理"),
            ("人文关怀", "护理人文关怀Q&A", "护理<mark>人文关怀</mark>Q&amp;A"),
            ("晨检", "幼儿园晨检流程：\"一摸二看三问四查\"", "幼儿园<mark>晨检</mark>流程：&quot;一摸二看三问四查&quot;"),
        ]
        for c in highlightCases {
            let hit = try Self.search(catalog, c.query).hits.first { $0.view.version.metadata.title == c.title }
            #expect(hit != nil, "\(c.query): \(c.title) not found")
            if let hit { #expect(hit.titleHighlight == c.highlight, "\(c.query): highlight \(hit.titleHighlight ?? "nil"), expected \(c.highlight)") }
        }
        let finishedAt = clock.now

        Self.report(scores, records: records.count, pinyinPrecision: pinyinPrecision, pairs: pairs, rankingLines: rankingLines)
        print(
            "SearchRelevance timing: load \(loadedAt - started), \(scores.count) queries \(queriedAt - loadedAt), "
                + "ranking+highlight checks \(finishedAt - queriedAt), total \(finishedAt - started)")
    }

    // MARK: helpers

    /// Nil when the highlight is well-formed: balanced marks, no raw `<`/`>` besides them, and the
    /// original title after removing marks and unescaping.
    static func highlightProblem(_ h: String, original: String) -> String? {
        let opens = h.components(separatedBy: "<mark>").count - 1
        let closes = h.components(separatedBy: "</mark>").count - 1
        if opens != closes { return "unbalanced marks in \(h)" }
        let bare = h.replacingOccurrences(of: "<mark>", with: "").replacingOccurrences(of: "</mark>", with: "")
        if bare.contains("<") || bare.contains(">") { return "raw < or > in \(h)" }
        if unescape(bare) != original { return "\(h) does not reproduce \(original)" }
        return nil
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The (unescaped) texts between `<mark>` and `</mark>`.
    static func markedTexts(_ h: String) -> [String] {
        h.components(separatedBy: "<mark>").dropFirst().compactMap { part in
            part.components(separatedBy: "</mark>").first.map(unescape)
        }
    }

    static func report(_ scores: [Score], records: Int, pinyinPrecision: Double, pairs: Int, rankingLines: [String]) {
        func pct(_ x: Double) -> String { String(format: "%5.1f%%", x * 100) }
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        var lines = ["", "Search relevance: \(records) records, \(scores.count) queries", ""]
        lines.append("kind            queries  expected  returned  correct  recall(micro/min)  precision(micro/min)")
        func row(_ name: String, _ s: [Score]) {
            let e = s.map(\.expected).reduce(0, +)
            let r = s.map(\.returned).reduce(0, +)
            let c = s.map(\.correct).reduce(0, +)
            let recall = e == 0 ? 1 : Double(c) / Double(e)
            let precision = r == 0 ? 1 : Double(c) / Double(r)
            lines.append(
                pad(name, 16) + pad("\(s.count)", 9) + pad("\(e)", 10) + pad("\(r)", 10) + pad("\(c)", 9)
                    + pad("\(pct(recall)) / \(pct(s.map(\.recall).min() ?? 1))", 19) + "\(pct(precision)) / \(pct(s.map(\.precision).min() ?? 1))")
        }
        for kind in kindOrder { row(kind, scores.filter { $0.query.kind == kind }) }
        for kind in Set(scores.map(\.query.kind)).subtracting(kindOrder).sorted() { row(kind, scores.filter { $0.query.kind == kind }) }
        row("overall", scores)
        lines.append("pinyin/initials precision (micro): \(pct(pinyinPrecision))")
        lines.append("")
        lines.append("per query (expected / returned / correct, recall, precision):")
        for s in scores {
            let flag =
                s.recall < 1
                ? "  << MISSED" : (s.precision < 1 ? "  extra\(s.expectedFirst ? " (ranked after all expected)" : " (mixed in)"): \(s.extras.prefix(4))" : "")
            lines.append(
                "  " + pad("[\(s.query.kind)] \(s.query.q)", 34) + "\(s.expected) / \(s.returned) / \(s.correct)  \(pct(s.recall)) \(pct(s.precision))\(flag)")
        }
        lines.append("")
        lines.append("ranking: \(pairs) title-vs-description-only pairs")
        lines += rankingLines
        print(lines.joined(separator: "\n"))
    }
}
