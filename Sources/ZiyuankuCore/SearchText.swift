import Foundation

/// Chinese-first text analysis for search (PRODUCT.md §6), used identically when indexing and
/// when querying:
/// - normalisation: NFKC-style full-width folding, case folding, traditional → simplified;
/// - Chinese runs → overlapping bigrams, plus the run's last character alone (so every
///   character starts some token: 1-character queries become prefix queries), which also keeps
///   `AB，BC` from matching `ABC`;
/// - each Chinese character also carries its toneless pinyin syllable (`~kang`) and initial
///   (`^k`) as colocated tokens (one reading per character, so polyphones do not multiply);
/// - Latin letters and digits form words (`plc`, `3d`, `python`), matched by prefix.
public enum SearchText {
    /// Marks a pinyin syllable in a query phrase built by `SearchQuery`.
    public static let syllableMarker: Unicode.Scalar = "\u{E002}"
    /// Marks a pinyin initial in a query phrase built by `SearchQuery`.
    public static let initialMarker: Unicode.Scalar = "\u{E003}"

    public enum Mode: Sendable { case document, query }

    // MARK: tables (built once from ICU, ~0.4 s)

    struct Tables: Sendable {
        static let lowA: UInt32 = 0x3400
        static let high: UInt32 = 0x9FFF
        /// Simplified form per code point in lowA...high.
        let simplified: [UInt32]
        /// Index into `syllables` per code point (UInt16.max: none).
        let pinyin: [UInt16]
        let syllables: [String]
        let syllableSet: Set<String>
        let syllablePrefixes: Set<String>

        init() {
            let count = Int(Self.high - Self.lowA + 1)
            var source = ""
            source.unicodeScalars.reserveCapacity(count * 2)
            for v in Self.lowA...Self.high {
                source.unicodeScalars.append(Unicode.Scalar(v)!)
                source.unicodeScalars.append(" ")
            }
            var simplified = Array(Self.lowA...Self.high)
            if let s = source.applyingTransform(StringTransform("Traditional-Simplified"), reverse: false) {
                let scalars = Array(s.unicodeScalars)
                if scalars.count == count * 2 {
                    for i in 0..<count { simplified[i] = scalars[i * 2].value }
                }
            }
            var pinyin = [UInt16](repeating: .max, count: count)
            var syllables: [String] = []
            var index: [String: UInt16] = [:]
            if let p = source.applyingTransform(StringTransform("Han-Latin; Latin-ASCII"), reverse: false) {
                let parts = p.split(separator: " ", omittingEmptySubsequences: false)
                if parts.count >= count {
                    for i in 0..<count {
                        let syl = parts[i].lowercased()
                        guard !syl.isEmpty, syl.utf8.count <= 6, syl.utf8.allSatisfy({ $0 >= 97 && $0 <= 122 }) else { continue }
                        if let k = index[syl] {
                            pinyin[i] = k
                        } else {
                            index[syl] = UInt16(syllables.count)
                            pinyin[i] = UInt16(syllables.count)
                            syllables.append(syl)
                        }
                    }
                }
            }
            self.simplified = simplified
            self.pinyin = pinyin
            self.syllables = syllables
            syllableSet = Set(syllables)
            var prefixes = Set<String>()
            for s in syllables { for n in 1...s.count { prefixes.insert(String(s.prefix(n))) } }
            syllablePrefixes = prefixes
        }
    }

    static let tables = Tables()

    /// Warms the tables (call at start so the first search does not pay for it).
    public static func prepare() { _ = tables.syllables.count }

    public static func isHan(_ v: UInt32) -> Bool {
        (0x3400...0x4DBF).contains(v) || (0x4E00...0x9FFF).contains(v) || (0xF900...0xFAFF).contains(v) || (0x20000...0x2FA1F).contains(v)
    }

    /// The toneless pinyin of one (simplified) Han character, if known.
    public static func pinyin(of v: UInt32) -> String? {
        guard v >= Tables.lowA, v <= Tables.high else { return nil }
        let k = tables.pinyin[Int(v - Tables.lowA)]
        return k == .max ? nil : tables.syllables[Int(k)]
    }

    public static func isSyllable(_ s: String) -> Bool { tables.syllableSet.contains(s) }
    public static func isSyllablePrefix(_ s: String) -> Bool { tables.syllablePrefixes.contains(s) }

    /// One normalised character: its class and value.
    enum Norm {
        case han(UInt32)
        case word(UInt8)  // a-z, 0-9
        case wordOther(String)  // other letters and digits, already case-folded
        case syllableMarker, initialMarker
        case separator
    }

    @inline(__always)
    static func normalize(_ v: UInt32, mode: Mode) -> Norm {
        if v < 0x80 {
            if v >= 0x61 && v <= 0x7A || v >= 0x30 && v <= 0x39 { return .word(UInt8(v)) }
            if v >= 0x41 && v <= 0x5A { return .word(UInt8(v + 32)) }
            return .separator
        }
        if v >= 0xFF01 && v <= 0xFF5E { return normalize(v - 0xFEE0, mode: mode) }  // full-width ASCII
        if v >= Tables.lowA && v <= Tables.high { return .han(tables.simplified[Int(v - Tables.lowA)]) }
        if isHan(v) { return .han(v) }
        if v == syllableMarker.value { return mode == .query ? .syllableMarker : .separator }
        if v == initialMarker.value { return mode == .query ? .initialMarker : .separator }
        guard let u = Unicode.Scalar(v) else { return .separator }
        let p = u.properties
        if p.isAlphabetic || p.numericType != nil {
            let folded = String(u).precomposedStringWithCompatibilityMapping.lowercased()
            if folded.unicodeScalars.count == 1, let f = folded.unicodeScalars.first, f.value != v { return normalize(f.value, mode: mode) }
            return .wordOther(folded)
        }
        return .separator
    }

    /// Tokenizes UTF-8 text, reporting each token with its byte range in the original text.
    /// `emit(token, start, end, colocated)` returns false to stop.
    public static func tokenize(
        _ text: UnsafeBufferPointer<UInt8>, mode: Mode, emit: (UnsafeBufferPointer<UInt8>, Int, Int, Bool) -> Bool
    ) {
        var run: [(v: UInt32, start: Int, end: Int)] = []
        var word: [UInt8] = []
        var wordStart = 0
        var wordEnd = 0
        var wordPrefix: UInt8 = 0  // "~" or "^" for marked query words
        var stopped = false
        var buffer: [UInt8] = []
        // Query mode: a run's trailing single character is emitted only if more tokens follow,
        // so phrases line up with the document's positions ("西门子 PLC", "康复 治疗").
        var pendingTail: (bytes: [UInt8], start: Int, end: Int)?

        func send(_ bytes: [UInt8], _ s: Int, _ e: Int, _ colocated: Bool) {
            if stopped { return }
            if !colocated, let tail = pendingTail {
                pendingTail = nil
                tail.bytes.withUnsafeBufferPointer { if !emit($0, tail.start, tail.end, false) { stopped = true } }
                if stopped { return }
            }
            bytes.withUnsafeBufferPointer { if !emit($0, s, e, colocated) { stopped = true } }
        }
        func appendScalar(_ v: UInt32, to out: inout [UInt8]) {
            if v < 0x80 {
                out.append(UInt8(v))
            } else if v < 0x800 {
                out.append(UInt8(0xC0 | (v >> 6)))
                out.append(UInt8(0x80 | (v & 0x3F)))
            } else if v < 0x10000 {
                out.append(UInt8(0xE0 | (v >> 12)))
                out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
                out.append(UInt8(0x80 | (v & 0x3F)))
            } else {
                out.append(UInt8(0xF0 | (v >> 18)))
                out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
                out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
                out.append(UInt8(0x80 | (v & 0x3F)))
            }
        }
        func flushRun() {
            let n = run.count
            guard n > 0 else { return }
            for i in 0..<n {
                if mode == .query && n > 1 && i == n - 1 {
                    buffer.removeAll(keepingCapacity: true)
                    appendScalar(run[i].v, to: &buffer)
                    pendingTail = (buffer, run[i].start, run[i].end)
                    break
                }
                buffer.removeAll(keepingCapacity: true)
                appendScalar(run[i].v, to: &buffer)
                var end = run[i].end
                if i + 1 < n {
                    appendScalar(run[i + 1].v, to: &buffer)
                    end = run[i + 1].end
                }
                send(buffer, run[i].start, end, false)
                if mode == .document, let py = pinyin(of: run[i].v) {
                    send([UInt8(ascii: "~")] + Array(py.utf8), run[i].start, run[i].end, true)
                    send([UInt8(ascii: "^"), py.utf8.first!], run[i].start, run[i].end, true)
                }
            }
            run.removeAll(keepingCapacity: true)
        }
        func flushWord() {
            guard !word.isEmpty else { return }
            let token = wordPrefix == 0 ? word : [wordPrefix] + word
            send(Array(token.prefix(64)), wordStart, wordEnd, false)
            word.removeAll(keepingCapacity: true)
            wordPrefix = 0
        }

        var i = 0
        let n = text.count
        while i < n && !stopped {
            // Decode one UTF-8 scalar (invalid bytes become separators).
            let b0 = text[i]
            var v: UInt32 = 0xFFFD
            var len = 1
            if b0 < 0x80 {
                v = UInt32(b0)
            } else if b0 & 0xE0 == 0xC0, i + 1 < n {
                v = (UInt32(b0 & 0x1F) << 6) | UInt32(text[i + 1] & 0x3F)
                len = 2
            } else if b0 & 0xF0 == 0xE0, i + 2 < n {
                v = (UInt32(b0 & 0x0F) << 12) | (UInt32(text[i + 1] & 0x3F) << 6) | UInt32(text[i + 2] & 0x3F)
                len = 3
            } else if b0 & 0xF8 == 0xF0, i + 3 < n {
                v = (UInt32(b0 & 0x07) << 18) | (UInt32(text[i + 1] & 0x3F) << 12) | (UInt32(text[i + 2] & 0x3F) << 6) | UInt32(text[i + 3] & 0x3F)
                len = 4
            }
            let start = i
            i += len
            switch normalize(v, mode: mode) {
            case .han(let h):
                flushWord()
                run.append((h, start, i))
            case .word(let c):
                flushRun()
                if word.isEmpty { wordStart = start }
                word.append(c)
                wordEnd = i
            case .wordOther(let s):
                flushRun()
                if word.isEmpty { wordStart = start }
                word.append(contentsOf: s.utf8)
                wordEnd = i
            case .syllableMarker:
                flushRun()
                flushWord()
                wordPrefix = UInt8(ascii: "~")
            case .initialMarker:
                flushRun()
                flushWord()
                wordPrefix = UInt8(ascii: "^")
            case .separator:
                flushRun()
                flushWord()
            }
        }
        flushRun()
        flushWord()
    }

    /// Convenience for tests and tools: the tokens of a string.
    public static func tokens(_ s: String, mode: Mode) -> [(token: String, colocated: Bool)] {
        var out: [(String, Bool)] = []
        var bytes = Array(s.utf8)
        bytes.withUnsafeMutableBufferPointer { buf in
            tokenize(UnsafeBufferPointer(buf), mode: mode) { t, _, _, c in
                out.append((String(decoding: t, as: UTF8.self), c))
                return true
            }
        }
        return out
    }
}
