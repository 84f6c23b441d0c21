/// Marks what a query matched in a field: HTML-escaped text with `<mark>…</mark>` around each
/// match, computed with the same normalisation as the index (so 藥學 is marked for 药学, 康复 for
/// `kfzl`), and an excerpt around the first match for long text.
public enum SearchHighlighter {
    /// Only this many code points of a field are looked at (a description may hold 20,000):
    /// a snippet comes from the start of the text, so the cost per hit stays bounded.
    public static let maxScalars = 4_096
    /// Only the first patterns of a long query are marked.
    public static let maxPatterns = 16

    public static func highlight(_ text: String, patterns allPatterns: [SearchQuery.Pattern], excerpt: Int? = nil) -> String? {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(min(text.unicodeScalars.underestimatedCount, maxScalars))
        var truncated = false
        for u in text.unicodeScalars {
            if scalars.count == maxScalars {
                truncated = true
                break
            }
            scalars.append(u)
        }
        let patterns = allPatterns.prefix(maxPatterns)
        let n = scalars.count
        guard n > 0 else { return nil }
        // Normalised view: Han code point, or word text, per scalar.
        var han = [UInt32](repeating: 0, count: n)
        var word = [String?](repeating: nil, count: n)
        for (i, u) in scalars.enumerated() {
            switch SearchText.normalize(u.value, mode: .document) {
            case .han(let h): han[i] = h
            case .word(let c): word[i] = String(UnicodeScalar(c))
            case .wordOther(let s): word[i] = s
            default: break
            }
        }
        var marked = [Bool](repeating: false, count: n)
        func mark(_ a: Int, _ b: Int) { for k in a..<b { marked[k] = true } }
        for p in patterns {
            switch p {
            case .han(let q):
                guard !q.isEmpty, q.count <= n else { continue }
                for i in 0...(n - q.count) where han[i] == q[0] {
                    var ok = true
                    for j in 1..<q.count where han[i + j] != q[j] {
                        ok = false
                        break
                    }
                    if ok { mark(i, i + q.count) }
                }
            case .wordPrefix(let prefix):
                guard !prefix.isEmpty else { continue }
                // One pass per word: the prefix is matched piece by piece as the word is walked.
                var i = 0
                while i < n {
                    guard word[i] != nil, i == 0 || word[i - 1] == nil else {
                        i += 1
                        continue
                    }
                    var j = i
                    var rest = Substring(prefix)
                    var matchedEnd: Int?
                    var failed = false
                    while j < n, let c = word[j] {
                        if matchedEnd == nil && !failed {
                            if rest.hasPrefix(c) {
                                rest = rest.dropFirst(c.count)
                                if rest.isEmpty { matchedEnd = j + 1 }
                            } else if c.hasPrefix(rest) {
                                matchedEnd = j + 1
                            } else {
                                failed = true
                            }
                        }
                        j += 1
                    }
                    if let matchedEnd { mark(i, matchedEnd) }
                    i = j
                }
            case .pinyin(let syllables, let partial):
                let k = syllables.count
                guard k > 0, k <= n else { continue }
                for i in 0...(n - k) {
                    var ok = true
                    for j in 0..<k {
                        let readings = han[i + j] == 0 ? [] : SearchText.readings(of: han[i + j])
                        let fits = readings.contains { j == k - 1 && partial ? $0.hasPrefix(syllables[j]) : $0 == syllables[j] }
                        if !fits {
                            ok = false
                            break
                        }
                    }
                    if ok { mark(i, i + k) }
                }
            case .initials(let letters):
                let k = letters.count
                guard k > 0, k <= n else { continue }
                for i in 0...(n - k) {
                    var ok = true
                    for j in 0..<k {
                        guard han[i + j] != 0, SearchText.readings(of: han[i + j]).contains(where: { $0.utf8.first == letters[j] }) else {
                            ok = false
                            break
                        }
                    }
                    if ok { mark(i, i + k) }
                }
            }
        }
        var from = 0
        var to = n
        if let excerpt, n > excerpt {
            let first = marked.firstIndex(of: true) ?? 0
            from = max(0, min(first - excerpt / 4, n - excerpt))
            to = min(n, from + excerpt)
        }
        var out = from > 0 ? "…" : ""
        var open = false
        for i in from..<to {
            if marked[i] != open {
                out += marked[i] ? "<mark>" : "</mark>"
                open = marked[i]
            }
            switch scalars[i] {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalars[i])
            }
        }
        if open { out += "</mark>" }
        if to < n || truncated { out += "…" }
        return out
    }
}
