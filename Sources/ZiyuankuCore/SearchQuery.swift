/// Turns anything a user types into a safe FTS5 expression built only from quoted phrases
/// (docs/product.md#search; R16 in docs/product.md#reliability-targets): FTS syntax characters in the input are data, never
/// operators. Supported on purpose: whitespace-separated terms (all must match),
/// `"quoted phrases"`, and `-term` to exclude.
public struct SearchQuery: Sendable, Equatable {
    /// The FTS5 MATCH expression, or nil when the input has nothing searchable.
    public let expression: String?
    /// The terms understood, for display ("searched for …").
    public let terms: [String]
    /// What to highlight in results (from the positive terms).
    public let patterns: [Pattern]

    public enum Pattern: Sendable, Equatable {
        case han([UInt32])
        case wordPrefix(String)
        case pinyin([String], lastPartial: Bool)
        case initials([UInt8])
    }

    public static let maxTerms = 12
    public static let maxTermLength = 64

    public init(_ input: String) {
        var positives: [String] = []
        var negatives: [String] = []
        var understood: [String] = []
        var patterns: [Pattern] = []
        for (text, negated, quoted) in Self.split(input).prefix(Self.maxTerms) {
            guard let e = Self.termExpression(text, phrase: quoted) else { continue }
            understood.append((negated ? "-" : "") + text)
            if !negated { patterns += Self.patterns(text) }
            if negated { negatives.append(e) } else { positives.append(e) }
        }
        terms = understood
        self.patterns = patterns
        guard !positives.isEmpty else {
            expression = nil
            return
        }
        var expr = positives.joined(separator: " AND ")
        for n in negatives { expr = "(\(expr)) NOT \(n)" }
        expression = expr
    }

    /// Splits on whitespace, honouring double-quoted phrases and a leading `-`.
    static func split(_ input: String) -> [(String, Bool, Bool)] {
        var out: [(String, Bool, Bool)] = []
        var current = ""
        var negated = false
        var inQuotes = false
        var quoted = false
        func finish() {
            if !current.isEmpty { out.append((String(current.prefix(maxTermLength * 4)), negated, quoted)) }
            current = ""
            negated = false
            quoted = false
        }
        for ch in input.prefix(2000) {
            if inQuotes {
                if ch == "\"" || ch == "“" || ch == "”" {
                    inQuotes = false
                    finish()
                } else {
                    current.append(ch)
                }
            } else if ch.isWhitespace || ch == "\u{3000}" {
                finish()
            } else if ch == "\"" || ch == "“" || ch == "”" {
                finish()
                inQuotes = true
                quoted = true
            } else if (ch == "-" || ch == "－") && current.isEmpty && !negated {
                negated = true
            } else {
                current.append(ch)
            }
        }
        finish()
        return out
    }

    /// The normalised segments of a term: Han runs and words, as the tokenizer sees them.
    static func segments(_ term: String) -> [(isHan: Bool, text: String)] {
        var out: [(Bool, String)] = []
        var cur = ""
        var curHan = false
        func flush() {
            if !cur.isEmpty { out.append((curHan, cur)) }
            cur = ""
        }
        for u in term.unicodeScalars {
            switch SearchText.normalize(u.value, mode: .document) {
            case .han(let h):
                if !curHan { flush() }
                curHan = true
                cur.unicodeScalars.append(Unicode.Scalar(h) ?? u)
            case .word(let c):
                if curHan { flush() }
                curHan = false
                cur.unicodeScalars.append(Unicode.Scalar(c))
            case .wordOther(let s):
                if curHan { flush() }
                curHan = false
                cur += s
            default:
                flush()
            }
        }
        flush()
        return out.map { ($0.0, String($0.1.prefix(maxTermLength))) }
    }

    static func patterns(_ term: String) -> [Pattern] {
        segments(term).flatMap { seg -> [Pattern] in
            if seg.isHan { return [.han(seg.text.unicodeScalars.map(\.value))] }
            var out: [Pattern] = [.wordPrefix(seg.text)]
            if seg.text.utf8.allSatisfy({ $0 >= 97 && $0 <= 122 }) {
                if let (s, partial) = pinyinSyllables(seg.text) {
                    out.append(.pinyin(s, lastPartial: partial))
                } else if seg.text.count >= 2 && seg.text.count <= 12 {
                    out.append(.initials(Array(seg.text.utf8)))
                }
            }
            return out
        }
    }

    static func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    static func termExpression(_ term: String, phrase: Bool) -> String? {
        let segs = segments(term)
        guard !segs.isEmpty else { return nil }
        if phrase && segs.count > 1 {
            // A quoted phrase: its segments in order, adjacent; Chinese words next to each other
            // also match when written without a separator ("康复 治疗" finds 康复治疗 too).
            let spaced = quote(segs.map(\.text).joined(separator: " "))
            var joined = ""
            for (i, seg) in segs.enumerated() {
                if i > 0 && !(seg.isHan && segs[i - 1].isHan) { joined += " " }
                joined += seg.text
            }
            let tight = quote(joined)
            return tight == spaced ? spaced : "(\(spaced) OR \(tight))"
        }
        let parts = segs.map { seg -> String in
            if seg.isHan {
                return seg.text.unicodeScalars.count == 1 ? quote(seg.text) + "*" : quote(seg.text)
            }
            return wordExpression(seg.text)
        }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " AND ") + ")"
    }

    /// A Latin word matches as a word prefix, as pinyin syllables (`kangfu`, `kang`), or as
    /// pinyin initials (`kfzl`). Pinyin is indexed as pairs of neighbouring characters (see
    /// `SearchText`), so a word of k syllables is a phrase of k − 1 pairs.
    static func wordExpression(_ w: String) -> String {
        var options = [quote(w) + "*"]
        let letters = w.utf8.allSatisfy { $0 >= 97 && $0 <= 122 }
        if letters {
            let m = String(SearchText.syllableMarker)
            if let (syllables, partial) = pinyinSyllables(w) {
                if syllables.count == 1 {
                    // One syllable starts a pair (`~kang~fu`) or ends a run (`~kang`).
                    options += partial ? [quote(m + syllables[0]) + "*"] : [quote(m + syllables[0] + m) + "*", quote(m + syllables[0])]
                } else {
                    let pairs = (1..<syllables.count).map { m + syllables[$0 - 1] + m + syllables[$0] }
                    options.append(quote(pairs.joined(separator: " ")) + (partial ? "*" : ""))
                }
            } else if w.count >= 2 && w.count <= 12 {
                // Initials are indexed as pairs and triples: `kf` is one pair, `kfzl` the
                // phrase of its triples `kfz fzl`.
                let im = String(SearchText.initialMarker)
                let l: [String] = Array(w).map { String($0) }
                var grams: [String] = []
                if l.count == 2 {
                    grams.append(l[0] + l[1])
                } else {
                    for k in 2..<l.count { grams.append(l[k - 2] + l[k - 1] + l[k]) }
                }
                options.append(quote(grams.map { im + $0 }.joined(separator: " ")))
            }
        }
        return options.count == 1 ? options[0] : "(" + options.joined(separator: " OR ") + ")"
    }

    /// Segments a run of letters into pinyin syllables (fewest syllables; the last may be an
    /// unfinished prefix, as typed on a phone). Nil when it is not pinyin.
    public static func pinyinSyllables(_ w: String) -> ([String], Bool)? {
        let chars = Array(w)
        let n = chars.count
        guard n > 0, n <= maxTermLength else { return nil }
        // best[i]: fewest syllables for chars[i...], with whether the last one is partial.
        var best = [(count: Int, next: Int, partial: Bool)?](repeating: nil, count: n + 1)
        best[n] = (0, n, false)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: min(n, i + 6), to: i, by: -1) {
                let s = String(chars[i..<j])
                if SearchText.isSyllable(s), let rest = best[j] {
                    if best[i] == nil || rest.count + 1 < best[i]!.count { best[i] = (rest.count + 1, j, rest.partial) }
                } else if j == n, SearchText.isSyllablePrefix(s), best[i] == nil {
                    best[i] = (1, n, true)
                }
            }
        }
        guard best[0] != nil else { return nil }
        var out: [String] = []
        var i = 0
        while i < n, let b = best[i] {
            out.append(String(chars[i..<b.next]))
            i = b.next
        }
        return (out, best[0]!.partial)
    }
}
