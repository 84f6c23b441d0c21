import Foundation

/// Chinese-first text analysis for search (docs/product.md#search), used identically when indexing and
/// when querying:
/// - normalisation: NFKC-style full-width folding, case folding, traditional → simplified;
/// - Chinese runs → overlapping bigrams, plus the run's last character alone (so every
///   character starts some token: 1-character queries become prefix queries), which also keeps
///   `AB，BC` from matching `ABC`;
/// - each Chinese character also carries, as colocated tokens, the toneless pinyin pair and the
///   initials pair and triple it starts (`~kang~fu`, `^kf`, `^kfz`; the run's last character its
///   own `~fu`, `^f`), with second readings only for a short list of common polyphones;
/// - Latin letters and digits form words (`plc`, `3d`, `python`), matched by prefix.
public enum SearchText {
    /// Marks a pinyin syllable in a query phrase built by `SearchQuery`.
    public static let syllableMarker: Unicode.Scalar = "\u{E002}"
    /// Marks a pinyin initial in a query phrase built by `SearchQuery`.
    public static let initialMarker: Unicode.Scalar = "\u{E003}"

    public enum Mode: Sendable { case document, query }

    /// Changes whenever the tokens for a text change; a catalog indexed by another version is
    /// rebuilt when opened. 2: pinyin pairs, initials pairs and triples, polyphones, ü as v.
    public static let version = 2

    // MARK: tables (built once from ICU, ~0.4 s)

    struct Tables: Sendable {
        static let lowA: UInt32 = 0x3400
        static let high: UInt32 = 0x9FFF
        /// Simplified form per code point in lowA...high.
        let simplified: [UInt32]
        /// Indexes into `syllables` of each code point's readings (ICU's first), starting at
        /// `readingStart[i]` and ending before `readingStart[i + 1]`.
        let readingStart: [Int32]
        let readings: [UInt16]
        let syllables: [String]
        /// `syllables` as UTF-8, for building tokens without allocating.
        let syllableBytes: [[UInt8]]
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
            var perChar = [[String]](repeating: [], count: count)
            // ICU's Han-Latin gives one reading per character; ü becomes u after Latin-ASCII, and
            // phone keyboards type it as v (lv 绿, nv 女), so both spellings are kept.
            if let withMarks = source.applyingTransform(StringTransform("Han-Latin"), reverse: false) {
                let parts = withMarks.split(separator: " ", omittingEmptySubsequences: false)
                if parts.count >= count {
                    for i in 0..<count {
                        let marked = String(parts[i]).lowercased()
                        let hasUmlaut = marked.unicodeScalars.contains { [0xFC, 0x1D6, 0x1D8, 0x1DA, 0x1DC].contains($0.value) }
                        guard let plain = marked.applyingTransform(StringTransform("Latin-ASCII"), reverse: false)?.lowercased(),
                            !plain.isEmpty, plain.utf8.count <= 6, plain.utf8.allSatisfy({ $0 >= 97 && $0 <= 122 })
                        else { continue }
                        perChar[i] = [plain]
                        if hasUmlaut { perChar[i].append(plain.replacingOccurrences(of: "u", with: "v")) }
                    }
                }
            }
            for (ch, extra) in SearchText.polyphones {
                guard let v = ch.unicodeScalars.first?.value, v >= Self.lowA, v <= Self.high else { continue }
                let i = Int(v - Self.lowA)
                for r in extra where !perChar[i].contains(r) && perChar[i].count < 3 { perChar[i].append(r) }
            }
            var syllables: [String] = []
            var index: [String: UInt16] = [:]
            var readingStart: [Int32] = []
            var readings: [UInt16] = []
            readingStart.reserveCapacity(count + 1)
            for list in perChar {
                readingStart.append(Int32(readings.count))
                for syl in list {
                    if let k = index[syl] {
                        readings.append(k)
                    } else {
                        index[syl] = UInt16(syllables.count)
                        readings.append(UInt16(syllables.count))
                        syllables.append(syl)
                    }
                }
            }
            readingStart.append(Int32(readings.count))
            self.simplified = simplified
            self.readingStart = readingStart
            self.readings = readings
            self.syllables = syllables
            syllableBytes = syllables.map { Array($0.utf8) }
            syllableSet = Set(syllables)
            var prefixes = Set<String>()
            for s in syllables { for n in 1...s.count { prefixes.insert(String(s.prefix(n))) } }
            syllablePrefixes = prefixes
        }

        /// The readings of a (simplified) code point, as indexes into `syllables`.
        @inline(__always)
        func readingRange(_ v: UInt32) -> Range<Int> {
            guard v >= Self.lowA, v <= Self.high else { return 0..<0 }
            let i = Int(v - Self.lowA)
            return Int(readingStart[i])..<Int(readingStart[i + 1])
        }
    }

    /// Second (and third) toneless readings of common polyphonic characters, as used in
    /// vocational subjects (会计 kuaiji, 银行 yinhang, 模具 muju, 音乐 yinyue, 调剂 tiaoji).
    /// Kept small on purpose: every reading multiplies the pinyin pair tokens at its position.
    static let polyphones: [(Character, [String])] = [
        ("乐", ["le", "yue"]), ("调", ["tiao", "diao"]), ("行", ["xing", "hang"]), ("会", ["hui", "kuai"]),
        ("重", ["zhong", "chong"]), ("长", ["chang", "zhang"]), ("模", ["mo", "mu"]), ("藏", ["cang", "zang"]),
        ("传", ["chuan", "zhuan"]), ("率", ["lv", "shuai"]), ("还", ["hai", "huan"]), ("便", ["bian", "pian"]),
        ("降", ["jiang", "xiang"]), ("省", ["sheng", "xing"]), ("角", ["jiao", "jue"]), ("曾", ["zeng", "ceng"]),
        ("差", ["cha", "chai", "ci"]), ("给", ["gei", "ji"]), ("解", ["jie", "xie"]), ("觉", ["jue", "jiao"]),
        ("系", ["xi", "ji"]), ("校", ["xiao", "jiao"]), ("强", ["qiang", "jiang"]), ("奇", ["qi", "ji"]),
        ("区", ["qu", "ou"]), ("单", ["dan", "shan"]), ("卡", ["ka", "qia"]), ("宿", ["su", "xiu"]),
        ("薄", ["bo", "bao"]), ("血", ["xue", "xie"]), ("削", ["xiao", "xue"]), ("塞", ["sai", "se"]),
        ("车", ["che", "ju"]), ("朝", ["chao", "zhao"]), ("参", ["can", "shen", "cen"]), ("称", ["cheng", "chen"]),
        ("都", ["du", "dou"]), ("地", ["di", "de"]), ("的", ["de", "di"]), ("得", ["de", "dei"]),
        ("大", ["da", "dai"]), ("没", ["mei", "mo"]), ("弹", ["tan", "dan"]), ("似", ["si", "shi"]),
        ("提", ["ti", "di"]), ("露", ["lu", "lou"]), ("扎", ["zha", "za"]), ("将", ["jiang", "qiang"]),
        ("了", ["le", "liao"]), ("食", ["shi", "si"]), ("属", ["shu", "zhu"]), ("仔", ["zi", "zai"]),
        ("茄", ["qie", "jia"]), ("柏", ["bai", "bo"]), ("石", ["shi", "dan"]), ("厦", ["sha", "xia"]),
        ("秘", ["mi", "bi"]), ("查", ["cha", "zha"]), ("番", ["fan", "pan"]), ("盛", ["sheng", "cheng"]),
        ("着", ["zhe", "zhao", "zhuo"]), ("尿", ["niao", "sui"]), ("膀", ["bang", "pang"]), ("脯", ["fu", "pu"]),
        ("核", ["he", "hu"]), ("伯", ["bo", "bai"]), ("色", ["se", "shai"]), ("恶", ["e", "wu"]),
        ("和", ["he", "huo", "hu"]), ("折", ["zhe", "she"]), ("匙", ["chi", "shi"]), ("说", ["shuo", "shui"]),
        ("识", ["shi", "zhi"]), ("拓", ["tuo", "ta"]), ("佛", ["fo", "fu"]), ("刨", ["bao", "pao"]),
        ("劲", ["jin", "jing"]), ("扁", ["bian", "pian"]), ("咖", ["ka", "ga"]), ("约", ["yue", "yao"]),
        ("夹", ["jia", "ga"]), ("炮", ["pao", "bao"]), ("冲", ["chong"]), ("曲", ["qu"]), ("数", ["shu"]),
        ("期", ["qi"]), ("处", ["chu"]), ("量", ["liang"]), ("散", ["san"]), ("空", ["kong"]), ("教", ["jiao"]),
    ]

    static let tables = Tables()

    /// Warms the tables (call at start so the first search does not pay for it).
    public static func prepare() { _ = tables.syllables.count }

    public static func isHan(_ v: UInt32) -> Bool {
        (0x3400...0x4DBF).contains(v) || (0x4E00...0x9FFF).contains(v) || (0xF900...0xFAFF).contains(v) || (0x20000...0x2FA1F).contains(v)
    }

    /// The toneless pinyin readings of one (simplified) Han character (ICU's first; a few
    /// polyphones have two or three; empty when unknown).
    public static func readings(of v: UInt32) -> [String] {
        tables.readingRange(v).map { tables.syllables[Int(tables.readings[$0])] }
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
        var state = Tokenizer(mode: mode)
        var i = 0
        while i < text.count && !state.stopped {
            let (v, length) = decodeScalar(text, at: i)
            state.take(v, start: i, end: i + length, emit)
            i += length
        }
        state.flushRun(emit)
        state.flushWord(emit)
    }

    /// Decodes one UTF-8 scalar at `i`: (value, byte length). Invalid bytes become U+FFFD, one
    /// byte at a time (a separator).
    @inline(__always)
    static func decodeScalar(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int) {
        let n = text.count
        let b0 = text[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        if b0 & 0xE0 == 0xC0, i + 1 < n { return ((UInt32(b0 & 0x1F) << 6) | UInt32(text[i + 1] & 0x3F), 2) }
        if b0 & 0xF0 == 0xE0, i + 2 < n {
            return ((UInt32(b0 & 0x0F) << 12) | (UInt32(text[i + 1] & 0x3F) << 6) | UInt32(text[i + 2] & 0x3F), 3)
        }
        if b0 & 0xF8 == 0xF0, i + 3 < n {
            return ((UInt32(b0 & 0x07) << 18) | (UInt32(text[i + 1] & 0x3F) << 12) | (UInt32(text[i + 2] & 0x3F) << 6) | UInt32(text[i + 3] & 0x3F), 4)
        }
        return (0xFFFD, 1)
    }

    /// Appends a scalar's UTF-8 bytes.
    static func appendScalar(_ v: UInt32, to out: inout [UInt8]) {
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

    /// The tokenizer between scalars: a run of Han characters (emitted as overlapping bigrams,
    /// with pinyin alongside in document mode) or a word of letters and digits.
    struct Tokenizer {
        typealias Emit = (UnsafeBufferPointer<UInt8>, Int, Int, Bool) -> Bool
        let mode: Mode
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

        init(mode: Mode) { self.mode = mode }

        mutating func send(_ bytes: [UInt8], _ s: Int, _ e: Int, _ colocated: Bool, _ emit: Emit) {
            if stopped { return }
            if !colocated, let tail = pendingTail {
                pendingTail = nil
                tail.bytes.withUnsafeBufferPointer { if !emit($0, tail.start, tail.end, false) { stopped = true } }
                if stopped { return }
            }
            bytes.withUnsafeBufferPointer { if !emit($0, s, e, colocated) { stopped = true } }
        }

        /// Takes one decoded scalar spanning `start..<end` of the text.
        mutating func take(_ v: UInt32, start: Int, end: Int, _ emit: Emit) {
            switch normalize(v, mode: mode) {
            case .han(let h):
                flushWord(emit)
                run.append((h, start, end))
            case .word(let c):
                flushRun(emit)
                if word.isEmpty { wordStart = start }
                word.append(c)
                wordEnd = end
            case .wordOther(let s):
                flushRun(emit)
                if word.isEmpty { wordStart = start }
                word.append(contentsOf: s.utf8)
                wordEnd = end
            case .syllableMarker:
                flushRun(emit)
                if wordPrefix == UInt8(ascii: "~") && !word.isEmpty {
                    // Inside a marked pair (`~kang~fu`): the marker joins the two syllables.
                    word.append(UInt8(ascii: "~"))
                    wordEnd = end
                } else {
                    flushWord(emit)
                    wordPrefix = UInt8(ascii: "~")
                }
            case .initialMarker:
                flushRun(emit)
                flushWord(emit)
                wordPrefix = UInt8(ascii: "^")
            case .separator:
                flushRun(emit)
                flushWord(emit)
            }
        }

        mutating func flushRun(_ emit: Emit) {
            let n = run.count
            guard n > 0 else { return }
            for i in 0..<n {
                if mode == .query && n > 1 && i == n - 1 {
                    buffer.removeAll(keepingCapacity: true)
                    SearchText.appendScalar(run[i].v, to: &buffer)
                    pendingTail = (buffer, run[i].start, run[i].end)
                    break
                }
                buffer.removeAll(keepingCapacity: true)
                SearchText.appendScalar(run[i].v, to: &buffer)
                var end = run[i].end
                if i + 1 < n {
                    SearchText.appendScalar(run[i + 1].v, to: &buffer)
                    end = run[i + 1].end
                }
                send(buffer, run[i].start, end, false, emit)
                if mode == .document { sendPinyin(i, end: end, emit) }
            }
            run.removeAll(keepingCapacity: true)
        }

        // Pinyin rides along each character as colocated tokens: the syllable pair and the
        // initials pair it starts (`~kang~fu`, `^kf`), or its own syllable and initial when
        // it ends the run (`~fu`, `^f`). Pairs keep pinyin and initials queries as selective
        // as the character bigrams (a lone `^k` would be in nearly every record).
        mutating func sendPinyin(_ i: Int, end: Int, _ emit: Emit) {
            let t = tables
            let here = t.readingRange(run[i].v)
            guard !here.isEmpty else { return }
            let next = i + 1 < run.count ? t.readingRange(run[i + 1].v) : 0..<0
            let e = next.isEmpty ? run[i].end : end
            var initials: [UInt16] = []
            for a in here {
                let sa = t.syllableBytes[Int(t.readings[a])]
                if next.isEmpty {
                    buffer.removeAll(keepingCapacity: true)
                    buffer.append(UInt8(ascii: "~"))
                    buffer.append(contentsOf: sa)
                    send(buffer, run[i].start, e, true, emit)
                    let key = UInt16(sa[0])
                    if !initials.contains(key) { initials.append(key) }
                    continue
                }
                for b in next {
                    let sb = t.syllableBytes[Int(t.readings[b])]
                    buffer.removeAll(keepingCapacity: true)
                    buffer.append(UInt8(ascii: "~"))
                    buffer.append(contentsOf: sa)
                    buffer.append(UInt8(ascii: "~"))
                    buffer.append(contentsOf: sb)
                    send(buffer, run[i].start, e, true, emit)
                    let key = UInt16(sa[0]) << 8 | UInt16(sb[0])
                    if !initials.contains(key) { initials.append(key) }
                }
            }
            for key in initials {
                buffer.removeAll(keepingCapacity: true)
                buffer.append(UInt8(ascii: "^"))
                if key > 0xFF { buffer.append(UInt8(key >> 8)) }
                buffer.append(UInt8(key & 0xFF))
                send(buffer, run[i].start, e, true, emit)
            }
            // Initials triples too: a pair like `^zy` is in a large share of all records, so
            // longer initials queries (`zyzl`) would be phrases of very common tokens.
            guard i + 2 < run.count, !next.isEmpty else { return }
            let third = t.readingRange(run[i + 2].v)
            guard !third.isEmpty else { return }
            var triples: [UInt32] = []
            for pair in initials {
                for c in third {
                    let key = UInt32(pair) << 8 | UInt32(t.syllableBytes[Int(t.readings[c])][0])
                    if !triples.contains(key) { triples.append(key) }
                }
            }
            for key in triples {
                buffer.removeAll(keepingCapacity: true)
                buffer.append(UInt8(ascii: "^"))
                buffer.append(UInt8((key >> 16) & 0xFF))
                buffer.append(UInt8((key >> 8) & 0xFF))
                buffer.append(UInt8(key & 0xFF))
                send(buffer, run[i].start, run[i + 2].end, true, emit)
            }
        }

        mutating func flushWord(_ emit: Emit) {
            guard !word.isEmpty else { return }
            let token = wordPrefix == 0 ? word : [wordPrefix] + word
            send(Array(token.prefix(64)), wordStart, wordEnd, false, emit)
            word.removeAll(keepingCapacity: true)
            wordPrefix = 0
        }
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
