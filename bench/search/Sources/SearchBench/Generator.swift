import Foundation
import ZiyuankuCore

/// SplitMix64: small, fast, and the same on every machine.
struct Rng {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n.
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + int(r.count) }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func chance(_ p: Double) -> Bool { unit() < p }
    mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }

    /// Zipf-like (s ≈ 1): index 0 is the most likely.
    mutating func zipf(_ n: Int, s: Double = 1.0) -> Int {
        // Inverse CDF of a continuous 1/x^s density on [1, n+1), good enough for vocabulary.
        let u = unit()
        if s == 1.0 {
            let x = exp(u * log(Double(n) + 1.0))
            return min(n - 1, max(0, Int(x) - 1))
        }
        let a = 1.0 - s
        let x = pow(1.0 + u * (pow(Double(n) + 1.0, a) - 1.0), 1.0 / a)
        return min(n - 1, max(0, Int(x) - 1))
    }

    mutating func zipfPick(_ a: [String], s: Double = 1.0) -> String { a[zipf(a.count, s: s)] }
}

/// One generated record: the metadata fields that are searched, and the rest.
struct Record: Sendable {
    var title: String
    var description: String
    var keywords: [String]
    var knowledgePoints: [String]
    var course: String?
    var authors: [String]
    var majorCode: String
    var level: String
    var resourceType: String
    var copyrightHolder: String
    /// Written with traditional characters (the simplified original is kept in `truth`).
    var traditional: Bool
    /// The searched text as a reader means it: simplified, lower-case, the fields in index
    /// order separated by newlines. Substring truth is computed over this.
    var truth: String

    /// The metadata object as an API client would send it.
    var json: [String: JSONValue] {
        [
            "title": .string(title), "description": .string(description), "keywords": .array(keywords.map { .string($0) }),
            "resourceType": .string(resourceType), "granularity": .string("asset"), "educationLevel": .string(level),
            "majorCodes": .array([.string(majorCode)]), "course": course.map { .string($0) } ?? .null,
            "knowledgePoints": .array(knowledgePoints.map { .string($0) }), "audience": .array([.string("student")]),
            "language": .string("zh-CN"), "authors": .array(authors.map { .object(["name": .string($0), "role": .string("author")]) }),
            "copyrightHolder": .string(copyrightHolder), "license": .string("CC-BY-NC-4.0"), "originality": .string("original"),
            "visibility": .string("public"), "pushToPlatform": .bool(false),
        ]
    }

    /// What the LIKE anchor's `extra` column holds (the other searched fields).
    var extra: String { knowledgePoints.joined(separator: " ; ") + "\n" + (course ?? "") + "\n" + authors.joined(separator: " ; ") }
    var keywordText: String { keywords.joined(separator: " ; ") }
}

/// Generates record `i` of a library from a fixed seed: the same record for the same (seed, i),
/// whatever the batch size or the order of generation.
struct Generator: Sendable {
    let seed: UInt64
    let traditionalShare: Double
    let domainCumulative: [Double]

    init(seed: UInt64 = 20_260_701, traditionalShare: Double = 0.02) {
        self.seed = seed
        self.traditionalShare = traditionalShare
        var acc = 0.0
        let total = Vocabulary.domains.map(\.weight).reduce(0, +)
        domainCumulative = Vocabulary.domains.map { acc += $0.weight / total; return acc }
    }

    func record(_ i: Int) -> Record {
        var r = Rng(seed: seed ^ (UInt64(i) &* 0xD1B5_4A32_D192_ED03))
        _ = r.next()
        let u = r.unit()
        let d = Vocabulary.domains[domainCumulative.firstIndex { u < $0 } ?? (Vocabulary.domains.count - 1)]
        let course = r.zipfPick(d.courses, s: 0.8)
        let topic = r.zipfPick(d.topics, s: 0.9)
        var topic2 = r.zipfPick(d.topics, s: 0.9)
        if topic2 == topic { topic2 = r.pick(d.topics) }
        let form = r.zipfPick(Vocabulary.forms, s: 0.7)
        let rare: String? = r.chance(0.06) ? r.zipfPick(Vocabulary.rare, s: 0.6) : nil
        let english: String? = r.chance(0.12) ? r.zipfPick(d.english, s: 0.8) : nil
        func englishPhrase(_ e: String) -> String {
            r.pick(Vocabulary.englishPhrases[e] ?? ["\(e) {t}"]).replacingOccurrences(of: "{t}", with: topic)
        }

        // Title.
        var title: String
        switch r.int(7) {
        case 0: title = "\(topic)\(form)"
        case 1: title = "《\(course)》\(topic)\(form)"
        case 2: title = "\(topic)——\(course)第\(r.int(1...16))讲"
        case 3: title = "\(topic)的\(r.pick(Vocabulary.aspects))"
        case 4: title = "\(course)：\(topic)与\(topic2)"
        case 5: title = "项目\(r.int(1...12)) \(topic)\(r.zipfPick(Vocabulary.generic))\(form)"
        default: title = english.map { englishPhrase($0) } ?? "\(topic)\(r.pick(Vocabulary.stages))\(form)"
        }
        if let rare, r.chance(0.3) { title += "（\(rare)）" }

        // Description: 2–4 sentences.
        var sentences: [String] = []
        let g1 = r.zipfPick(Vocabulary.generic)
        let g2 = r.zipfPick(Vocabulary.generic)
        sentences.append(
            r.chance(0.5)
                ? "本资源介绍了\(topic)的\(r.pick(Vocabulary.aspects))，包括\(topic2)、\(r.zipfPick(d.topics))和\(r.pick(Vocabulary.aspects))。"
                : "适用于\(course)课程的\(r.pick(Vocabulary.stages))\(g1)，帮助\(r.pick(["学生", "学员", "学习者"]))掌握\(topic)的\(r.pick(Vocabulary.aspects))。")
        sentences.append("通过\(r.pick(Vocabulary.methods))，\(r.pick(["学生能够", "学习者能够", "学员可以", "能够", "读者可以"]))\(r.pick(Vocabulary.abilities))，提升\(g2)能力。")
        if r.chance(0.6) {
            sentences.append("资源结合\(r.pick(d.scenes))中的真实\(r.zipfPick(Vocabulary.generic))，讲解\(topic)与\(topic2)的\(r.pick(Vocabulary.aspects))。")
        }
        if let english, r.chance(0.7) { sentences.append("配套\(englishPhrase(english))的\(r.pick(["练习", "资料", "演示", "素材"]))。") }
        if let rare { sentences.append("拓展内容涉及\(rare)的\(r.pick(Vocabulary.aspects))。") }
        if r.chance(0.4) { sentences.append("内容符合\(r.pick(Vocabulary.standards))的要求。") }
        if r.chance(0.25) { sentences.append("建议学时\(r.int(1...4))学时，配有\(r.int(3...30))道\(r.pick(["习题", "选择题", "案例题"]))。") }
        let description = sentences.joined()

        // Keywords, knowledge points, authors.
        var keywords: [String] = [topic]
        for _ in 0..<r.int(1...4) {
            let k = r.chance(0.5) ? r.zipfPick(d.topics) : r.zipfPick(Vocabulary.generic)
            if !keywords.contains(k) { keywords.append(k) }
        }
        if let english, r.chance(0.5) { keywords.append(english) }
        if let rare, r.chance(0.5), !keywords.contains(rare) { keywords.append(rare) }
        var kps: [String] = []
        for _ in 0..<r.int(0...3) {
            let k = r.zipfPick(d.topics) + r.pick(["", "的" + r.pick(Vocabulary.aspects)])
            if !kps.contains(k) { kps.append(k) }
        }
        var authors: [String] = []
        for _ in 0..<r.int(1...3) {
            var name = r.pick(Vocabulary.surnames)
            for _ in 0..<r.int(1...2) { name += r.pick(Vocabulary.givenChars) }
            authors.append(name)
        }
        let holder = r.pick(Vocabulary.cities) + r.pick(Vocabulary.schoolKinds)
        let courseField: String? = r.chance(0.85) ? course : nil
        let types = Vocabulary.resourceTypes[form] ?? ["document"]
        let type = types[r.int(types.count)]

        var rec = Record(
            title: title, description: description, keywords: keywords, knowledgePoints: kps, course: courseField, authors: authors,
            majorCode: d.majorCode, level: d.level, resourceType: type, copyrightHolder: holder, traditional: false, truth: "")
        rec.truth = [
            rec.title, rec.keywordText, rec.knowledgePoints.joined(separator: " ; "), rec.course ?? "", rec.authors.joined(separator: " ; "),
            rec.description,
        ].joined(separator: "\n").lowercased()
        if r.chance(traditionalShare) {
            rec.traditional = true
            func t(_ s: String) -> String { String(s.map { Vocabulary.traditional[$0] ?? $0 }) }
            rec.title = t(rec.title)
            rec.description = t(rec.description)
            rec.keywords = rec.keywords.map(t)
            rec.knowledgePoints = rec.knowledgePoints.map(t)
            rec.course = rec.course.map(t)
        }
        return rec
    }
}
