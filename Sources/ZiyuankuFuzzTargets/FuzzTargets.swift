import Foundation
import ZiyuankuCore

/// One harness per pure parser of user input in ZiyuankuCore (issue 12). Each takes arbitrary
/// bytes, never traps on its own, and checks the parser's promises: a broken promise is a
/// `fatalError`, which libFuzzer (bench/fuzz) reports as a crash and the corpus replay test
/// (Tests/ZiyuankuCoreTests/FuzzCorpusReplayTests.swift) as a failure.
///
/// Inputs are capped at `maxInput` bytes and every harness is linear or close to it in its
/// input, so one run stays well under a millisecond for typical inputs.
public enum FuzzTargets {
    public typealias Run = @Sendable (UnsafeRawBufferPointer) -> Void

    /// Longest input looked at (libFuzzer runs with -max_len=65536 too).
    public static let maxInput = 64 * 1024

    /// Every target by name; the name is also its corpus folder under Tests/fuzz/corpus/.
    public static let all: [(name: String, run: Run)] = [
        ("httpDate", httpDate),
        ("httpFramer", httpFramer),
        ("addressRange", addressRange),
        ("byteRanges", byteRanges),
        ("multipart", multipart),
        ("filenames", filenames),
        ("digest", digest),
        ("tusHeaders", tusHeaders),
        ("csv", csv),
        ("jsonMetadata", jsonMetadata),
        ("searchQuery", searchQuery),
        ("searchText", searchText),
        ("searchHighlighter", searchHighlighter),
        ("zipEntryNames", zipEntryNames),
    ]

    public static func target(named name: String) -> Run? { all.first { $0.name == name }?.run }

    // MARK: helpers

    static func check(_ ok: Bool, _ target: StaticString, _ message: @autoclosure () -> String) {
        if !ok { fatalError("fuzz target \(target): \(message())") }
    }

    static func capped(_ data: UnsafeRawBufferPointer, _ limit: Int = maxInput) -> UnsafeRawBufferPointer {
        data.count <= limit ? data : UnsafeRawBufferPointer(rebasing: data[0..<limit])
    }

    static func text(_ data: UnsafeRawBufferPointer, _ limit: Int = maxInput) -> String {
        String(decoding: capped(data, limit), as: UTF8.self)
    }

    /// Splits at the first `\n` (the line without it, and the rest after it).
    static func firstLine(_ data: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        guard let nl = data.firstIndex(of: 0x0A) else { return (data, UnsafeRawBufferPointer(rebasing: data[data.count...])) }
        return (UnsafeRawBufferPointer(rebasing: data[..<nl]), UnsafeRawBufferPointer(rebasing: data[(nl + 1)...]))
    }

    // MARK: HTTP

    /// `HTTPDate.parse` never traps; what it accepts formats back to the same instant (years
    /// 1000–9999, where `format` writes the four-digit year IMF-fixdate needs); `format` never
    /// traps on any Double and writes something `parse` reads.
    public static func httpDate(_ data: UnsafeRawBufferPointer) {
        let s = text(data, 256)
        let year1000: Double = -30_610_224_000  // 1000-01-01T00:00:00Z
        let lastSecond: Double = 253_402_300_799  // 9999-12-31T23:59:59Z
        if let d = HTTPDate.parse(s) {
            let t = d.timeIntervalSince1970
            check(t.isFinite && t >= -62_135_596_800 && t <= lastSecond + 86_400, "httpDate", "\(s) parsed to \(t)")
            let f = HTTPDate.format(d)
            if t >= year1000 && t <= lastSecond {
                check(HTTPDate.parse(f) == d, "httpDate", "\(s) → \(t) → \(f) does not parse back")
            }
        }
        if data.count >= 8 {
            var bits: UInt64 = 0
            for k in 0..<8 { bits = bits << 8 | UInt64(data[k]) }
            let date = Date(timeIntervalSince1970: Double(bitPattern: bits))
            let t = date.timeIntervalSince1970  // what Date keeps (it counts from 2001)
            let f = HTTPDate.format(date)
            let clamped = t.isFinite ? max(-62_135_596_800, min(lastSecond, t.rounded(.down))) : 0
            if clamped >= year1000 {
                check(
                    HTTPDate.parse(f)?.timeIntervalSince1970 == clamped, "httpDate",
                    "format(\(t)) = \(f) does not parse back to \(clamped)")
            }
        }
    }

    /// `HTTPRequestFramer.feed`: escape offsets are strictly increasing, inside the buffer, and
    /// point at bytes ≥ 0x80; splitting the bytes anywhere (the split point comes from the first
    /// input byte) gives the same escapes as feeding them whole, and so does byte by byte.
    public static func httpFramer(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let bytes = capped(UnsafeRawBufferPointer(rebasing: data[1...]))
        let n = bytes.count
        var whole = HTTPRequestFramer()
        let escapes = whole.feed(bytes)
        var previous = -1
        for o in escapes {
            check(o > previous && o < n && bytes[o] >= 0x80, "httpFramer", "bad escape offset \(o) (previous \(previous), count \(n))")
            previous = o
        }
        let k = Int(first) * (n + 1) / 256
        var split = HTTPRequestFramer()
        let a = split.feed(UnsafeRawBufferPointer(rebasing: bytes[0..<k]))
        let b = split.feed(UnsafeRawBufferPointer(rebasing: bytes[k..<n]))
        check(a + b.map { $0 + k } == escapes, "httpFramer", "split at \(k) of \(n): \(a) + \(b) ≠ \(escapes)")
        check(split.isPassthrough == whole.isPassthrough, "httpFramer", "split at \(k): pass-through differs")
        if n <= 2048 {
            var single = HTTPRequestFramer()
            var one: [Int] = []
            for i in 0..<n where single.feed(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + 1)])) == [0] { one.append(i) }
            check(one == escapes, "httpFramer", "byte by byte: \(one) ≠ \(escapes)")
        }
    }

    /// `AddressRange`: a range contains its own address; `parse` gives 16 bytes or nil; lines
    /// after the first are tried as addresses.
    public static func addressRange(_ data: UnsafeRawBufferPointer) {
        let (line, rest) = firstLine(capped(data, 4096))
        let s = String(decoding: line, as: UTF8.self)
        if let bytes = AddressRange.parse(s) { check(bytes.count == 16, "addressRange", "\(s) parsed to \(bytes.count) bytes") }
        guard let range = AddressRange(s) else { return }
        let own = String(s.trimmingCharacters(in: .whitespaces).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)[0])
        check(range.contains(own), "addressRange", "\(s) does not contain its own address \(own)")
        for address in String(decoding: rest, as: UTF8.self).split(separator: "\n").prefix(16) {
            _ = [range].contains(address: String(address))
        }
    }

    /// `ByteRangeRequest.parse`: every range lies within 0..<size, at most `maxRanges` of them,
    /// none overlapping or touching another (those are coalesced). Byte 0 picks the size, byte 1
    /// the limit; the rest is the header.
    public static func byteRanges(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 2 else { return }
        let sizes: [Int64] = [0, 1, 2, 10, 100, 1000, 65_536, 1 << 20, 1 << 40, Int64.max / 2, Int64.max - 1, Int64.max]
        let b0 = Int(data[0])
        let size = b0 < sizes.count ? sizes[b0] : Int64(b0 - sizes.count)
        let maxRanges = 1 + Int(data[1]) % 32
        let header = text(UnsafeRawBufferPointer(rebasing: data[2...]), 8192)
        for limit in [ByteRangeRequest.defaultMaxRanges, maxRanges] {
            let result = ByteRangeRequest.parse(header, size: size, maxRanges: limit)
            if size <= 0 { check(result == .full, "byteRanges", "size \(size) gave \(result)") }
            guard case .ranges(let ranges) = result else { continue }
            check(!ranges.isEmpty && ranges.count <= limit, "byteRanges", "\(ranges.count) ranges for a limit of \(limit)")
            for r in ranges {
                check(r.lowerBound >= 0 && r.upperBound < size, "byteRanges", "\(r) outside 0..<\(size) for \(header)")
            }
            let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
            for (x, y) in zip(sorted, sorted.dropFirst()) {
                check(x.upperBound + 1 < y.lowerBound, "byteRanges", "\(x) and \(y) overlap or touch for \(header)")
            }
        }
        _ = ByteRangeRequest.parse(nil, size: size)
    }

    // MARK: multipart

    /// `MultipartParser.feed`, incremental: the first line is the boundary (or a Content-Type
    /// carrying one), the next two bytes seed the chunk sizes, and the rest is the body. Fed
    /// whole and fed in chunks, the parser gives the same parts (body events merged) and the
    /// same outcome; the one allowed difference is the header-size limit, which a chunked feed
    /// may hit up to three bytes early (the end of the headers not yet seen).
    public static func multipart(_ data: UnsafeRawBufferPointer) {
        let (line, afterLine) = firstLine(capped(data))
        guard afterLine.count >= 2 else { return }
        let lineText = String(decoding: line.prefix(200), as: UTF8.self)
        let boundary = MultipartParser.boundary(fromContentType: lineText) ?? lineText
        var seed = UInt32(afterLine[0]) << 8 | UInt32(afterLine[1])
        let body = UnsafeRawBufferPointer(rebasing: afterLine[2...])
        let maxChunk = [1, 3, 17, 64, 500, 4096][Int(seed % 6)]

        func run(chunked: Bool) -> (events: [MultipartParser.Event], error: String?)? {
            guard var parser = try? MultipartParser(boundary: boundary, maxHeaderBytes: 1024, maxParts: 16) else { return nil }
            var events: [MultipartParser.Event] = []
            func add(_ new: [MultipartParser.Event]) {
                for e in new {
                    if case .body(let more) = e, case .body(let had)? = events.last {
                        events[events.count - 1] = .body(had + more)
                    } else {
                        events.append(e)
                    }
                }
            }
            do {
                if chunked {
                    var i = 0
                    while i < body.count {
                        seed = seed &* 1_103_515_245 &+ 12_345
                        let k = min(body.count - i, 1 + Int((seed >> 16) % UInt32(maxChunk)))
                        add(try parser.feed(UnsafeRawBufferPointer(rebasing: body[i..<(i + k)])))
                        i += k
                    }
                    add(try parser.feed([UInt8]()))
                } else {
                    add(try parser.feed(body))
                }
                try parser.finish()
                return (events, nil)
            } catch {
                return (events, error.reason)
            }
        }
        guard let whole = run(chunked: false), let chunked = run(chunked: true) else { return }
        // The events make sense: begin, bodies, end, begin …
        var inPart = false
        for e in whole.events {
            switch e {
            case .begin: check(!inPart, "multipart", "begin inside a part")
            case .body(let b): check(inPart && !b.isEmpty, "multipart", "body outside a part or empty")
            case .end: check(inPart, "multipart", "end outside a part")
            }
            if case .begin = e { inPart = true } else if case .end = e { inPart = false }
        }
        let headerLimit = "part headers exceed"
        if whole.error?.hasPrefix(headerLimit) == true || chunked.error?.hasPrefix(headerLimit) == true { return }
        check(
            (whole.error == nil) == (chunked.error == nil), "multipart",
            "whole: \(whole.error ?? "ok"), chunked (max \(maxChunk)): \(chunked.error ?? "ok")")
        if whole.error == nil {
            check(whole.events == chunked.events, "multipart", "whole and chunked (max \(maxChunk)) events differ")
        }
    }

    // MARK: filenames

    /// `Filenames.clean` gives nil or a non-empty name of at most 255 bytes without path
    /// separators or control characters; `truncate` never exceeds its budget and never empties
    /// a non-empty name (byte 0 picks the budget, 4…259); `contentDisposition` is ASCII and its
    /// `filename*` (RFC 8187) decodes back to the exact name; `HeaderParameters.parse` and
    /// `decodeRFC8187` take the raw input too.
    public static func filenames(_ data: UnsafeRawBufferPointer) {
        guard let b0 = data.first else { return }
        let s = text(UnsafeRawBufferPointer(rebasing: data[1...]), 8192)
        let budget = Int(b0) + 4
        let t = Filenames.truncate(s, maxBytes: budget)
        check(t.utf8.count <= budget, "filenames", "truncate to \(budget) gave \(t.utf8.count) bytes")
        check(s.isEmpty || !t.isEmpty, "filenames", "truncate to \(budget) emptied a name")
        if s.utf8.count <= budget { check(t == s, "filenames", "truncate changed a name that fits") }
        if let c = Filenames.clean(s) {
            check(!c.isEmpty && c.utf8.count <= Filenames.maxBytes, "filenames", "clean gave \(c.utf8.count) bytes")
            check(
                !c.unicodeScalars.contains { $0 == "/" || $0 == "\\" || $0.value < 0x20 || (0x7F...0x9F).contains($0.value) },
                "filenames", "clean left a separator or control character in \(c.debugDescription)")
            let cd = Filenames.contentDisposition(c, inline: b0 & 1 == 1)
            check(cd.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "filenames", "Content-Disposition is not printable ASCII: \(cd)")
            let p = HeaderParameters.parse(cd)
            check(p.value == (b0 & 1 == 1 ? "inline" : "attachment"), "filenames", "disposition \(p.value) in \(cd)")
            let star = p.parameters["filename*"].flatMap(HeaderParameters.decodeRFC8187)
            check(star == c, "filenames", "filename* of \(cd) decodes to \(star ?? "nil"), not \(c.debugDescription)")
        }
        let params = HeaderParameters.parse(s)
        if let star = params.parameters["filename*"] { _ = HeaderParameters.decodeRFC8187(star) }
        if let decoded = HeaderParameters.decodeRFC8187(s) {
            let again = HeaderParameters.decodeRFC8187("UTF-8''" + Filenames.rfc8187Encode(decoded))
            check(again == decoded, "filenames", "rfc8187Encode does not round-trip \(decoded.debugDescription)")
        }
    }

    // MARK: digests and tus

    /// `DigestHeader.sha256`: a sha-256 member yields exactly 32 bytes, and the field value
    /// written for those bytes parses back to them.
    public static func digest(_ data: UnsafeRawBufferPointer) {
        let s = text(data, 8192)
        if case .sha256(let d) = DigestHeader.sha256(s) {
            check(d.count == 32, "digest", "\(d.count) bytes from \(s)")
            check(DigestHeader.sha256(DigestHeader.value(sha256: d)) == .sha256(d), "digest", "value(sha256:) does not round-trip \(s)")
        }
    }

    /// `TusHeaders`: `byteCount` is nil or a non-negative value of a digits-only header;
    /// `filename(fromMetadata:)` is nil, an error, or a clean non-empty name of at most 255
    /// bytes; `checksum` gives 20 bytes for sha1 and 32 for sha256.
    public static func tusHeaders(_ data: UnsafeRawBufferPointer) {
        let s = text(data, 8192)
        if let v = TusHeaders.byteCount(s) {
            check(v >= 0 && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }, "tusHeaders", "byteCount(\(s)) = \(v)")
        }
        if let name = try? TusHeaders.filename(fromMetadata: s) {
            check(!name.isEmpty && name.utf8.count <= Filenames.maxBytes, "tusHeaders", "filename of \(name.utf8.count) bytes")
            check(!name.unicodeScalars.contains { $0 == "/" || $0 == "\\" }, "tusHeaders", "filename with a separator: \(name)")
        }
        if let c = try? TusHeaders.checksum(s) {
            check(
                (c.algorithm == "sha1" && c.digest.count == 20) || (c.algorithm == "sha256" && c.digest.count == 32), "tusHeaders",
                "checksum \(c.algorithm) with \(c.digest.count) bytes")
        }
    }

    // MARK: CSV

    /// `CSV.parse`: what it parses, written back with every field quoted, parses to the same
    /// rows. `MajorCatalogCSV.parse`: rows are from line 2 on, with unique codes.
    public static func csv(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(capped(data))
        if let rows = try? CSV.parse(bytes) {
            // Quotes doubled by code point (String's replacingOccurrences works on Characters and
            // misses a quote that a combining mark joins).
            var out: [UInt8] = []
            for row in rows {
                for (k, field) in row.enumerated() {
                    if k > 0 { out.append(0x2C) }
                    out.append(0x22)
                    for b in field.utf8 {
                        out.append(b)
                        if b == 0x22 { out.append(0x22) }
                    }
                    out.append(0x22)
                }
                out.append(0x0A)
            }
            let again = try? CSV.parse(out)
            check(again == rows, "csv", "rows do not survive being written back")
        }
        if case .success(let rows) = MajorCatalogCSV.parse(bytes, knownParent: { $0.hasPrefix("99") }) {
            check(Set(rows.map(\.code)).count == rows.count, "csv", "duplicate codes accepted")
            check(rows.allSatisfy { $0.line >= 2 }, "csv", "a row before line 2")
        }
    }

    // MARK: JSON metadata

    /// `JSONValue.parse` then `MetadataValidator.validate`: the error list stays small whatever
    /// the input (each field is reported once, element problems are summarised).
    public static func jsonMetadata(_ data: UnsafeRawBufferPointer) {
        guard let value = try? JSONValue.parse(capped(data)) else { return }
        guard case .object(let object) = value else { return }
        let result = MetadataValidator.validate(object) { code in
            if code.hasSuffix("00") { return MajorInfo(code: code, educationLevel: .secondary, isMajor: false) }
            if code.hasPrefix("52") { return MajorInfo(code: code, educationLevel: .higherVocational, isMajor: true) }
            if code.hasPrefix("7") { return MajorInfo(code: code, educationLevel: .secondary, isMajor: true) }
            return nil
        }
        if case .failure(let e) = result {
            check(!e.errors.isEmpty && e.errors.count <= 64, "jsonMetadata", "\(e.errors.count) errors")
        }
    }

    // MARK: search

    /// `SearchQuery`: at most `maxTerms` terms, and the expression is only quoted phrases
    /// (with `""` escapes), an optional `*` after a phrase, `AND`/`OR`/`NOT` and balanced
    /// parentheses: nothing a user types becomes FTS5 syntax.
    public static func searchQuery(_ data: UnsafeRawBufferPointer) {
        let s = text(data, 8192)
        let q = SearchQuery(s)
        check(q.terms.count <= SearchQuery.maxTerms, "searchQuery", "\(q.terms.count) terms")
        check(q.patterns.isEmpty || q.expression != nil, "searchQuery", "patterns without an expression")
        if let e = q.expression {
            check(isSafeFTS5(e), "searchQuery", "unsafe FTS5 expression \(e.debugDescription) for \(s.debugDescription)")
        }
        for case .initials(let letters) in q.patterns {
            check(letters.allSatisfy { $0 >= 0x61 && $0 <= 0x7A }, "searchQuery", "initials that are not a-z")
        }
    }

    static func isSafeFTS5(_ e: String) -> Bool {
        let u = Array(e.utf8)
        var i = 0
        var depth = 0
        var afterPhrase = false
        while i < u.count {
            switch u[i] {
            case 0x22:  // a phrase, `""` inside it is a quote
                i += 1
                while true {
                    guard i < u.count else { return false }
                    if u[i] == 0x22 {
                        if i + 1 < u.count && u[i + 1] == 0x22 {
                            i += 2
                            continue
                        }
                        break
                    }
                    i += 1
                }
                i += 1
                afterPhrase = true
                continue
            case 0x2A:
                guard afterPhrase else { return false }
            case 0x28: depth += 1
            case 0x29:
                depth -= 1
                guard depth >= 0 else { return false }
            case 0x20: break
            default:
                let word = u[i...].prefix { $0 >= 0x41 && $0 <= 0x5A }
                guard ["AND", "OR", "NOT"].contains(String(decoding: word, as: UTF8.self)) else { return false }
                i += word.count
                afterPhrase = false
                continue
            }
            afterPhrase = false
            i += 1
        }
        return depth == 0
    }

    /// `SearchText.tokenize` on raw bytes (invalid UTF-8 included), both modes: tokens are
    /// non-empty, at most 64 bytes, with byte ranges inside the text.
    public static func searchText(_ data: UnsafeRawBufferPointer) {
        let bytes = capped(data).assumingMemoryBound(to: UInt8.self)
        let n = bytes.count
        for mode in [SearchText.Mode.document, .query] {
            var count = 0
            SearchText.tokenize(bytes, mode: mode) { token, start, end, _ in
                check(!token.isEmpty && token.count <= 64, "searchText", "token of \(token.count) bytes")
                check(0 <= start && start < end && end <= n, "searchText", "range \(start)..<\(end) in \(n) bytes")
                count += 1
                return count < 100_000
            }
        }
        if n <= 4096 { _ = SearchText.tokens(String(decoding: bytes, as: UTF8.self), mode: .query) }
    }

    /// `SearchHighlighter.highlight`: byte 0 is the query's length, the query follows, then a
    /// byte for the excerpt length (0: none), then the text. The result is nil only for empty
    /// text; `<mark>` and `</mark>` alternate and are the only markup (everything else is
    /// escaped); without them and unescaped it is a piece of the text, `…` at either end aside.
    public static func searchHighlighter(_ data: UnsafeRawBufferPointer) {
        let d = capped(data)
        guard let b0 = d.first else { return }
        let qEnd = min(d.count, 1 + Int(b0))
        let query = String(decoding: UnsafeRawBufferPointer(rebasing: d[1..<qEnd]), as: UTF8.self)
        let excerptByte = qEnd < d.count ? Int(d[qEnd]) : 0
        let textStart = min(d.count, qEnd + 1)
        let textString = String(decoding: UnsafeRawBufferPointer(rebasing: d[textStart...]), as: UTF8.self)
        let patterns = SearchQuery(query).patterns
        let out = SearchHighlighter.highlight(textString, patterns: patterns, excerpt: excerptByte == 0 ? nil : excerptByte)
        guard let out else {
            check(textString.isEmpty, "searchHighlighter", "nil for non-empty text")
            return
        }
        check(!textString.isEmpty, "searchHighlighter", "a highlight of empty text")
        // Walked by code point: an excerpt may start or end inside a grapheme cluster, and a
        // combining mark after `>` or `;` would join it as one Character.
        let o = Array(out.unicodeScalars)
        func at(_ i: Int, _ literal: String) -> Bool {
            let l = Array(literal.unicodeScalars)
            return i + l.count <= o.count && o[i..<(i + l.count)].elementsEqual(l)
        }
        let entities: [(String, Unicode.Scalar)] = [("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'")]
        var core: [UInt32] = []
        var open = false
        var i = 0
        while i < o.count {
            if at(i, "<mark>") {
                check(!open, "searchHighlighter", "nested <mark> in \(out)")
                open = true
                i += 6
            } else if at(i, "</mark>") {
                check(open, "searchHighlighter", "</mark> without <mark> in \(out)")
                open = false
                i += 7
            } else if o[i] == "&" {
                guard let (entity, u) = entities.first(where: { at(i, $0.0) }) else {
                    return check(false, "searchHighlighter", "unescaped & in \(out)")
                }
                core.append(u.value)
                i += entity.unicodeScalars.count
            } else {
                let c = o[i]
                check(c != "<" && c != ">" && c != "\"" && c != "'", "searchHighlighter", "unescaped \(c) in \(out)")
                core.append(c.value)
                i += 1
            }
        }
        check(!open, "searchHighlighter", "unclosed <mark> in \(out)")
        let hay = textString.unicodeScalars.map(\.value)
        let ellipsis: UInt32 = 0x2026
        var candidates = [core[...]]
        if core.first == ellipsis { candidates.append(core.dropFirst()) }
        for c in candidates where c.last == ellipsis { candidates.append(c.dropLast()) }
        let found = candidates.contains { needle in
            guard let first = needle.first else { return true }
            guard needle.count <= hay.count else { return false }
            return (0...(hay.count - needle.count)).contains { i in hay[i] == first && hay[i..<(i + needle.count)].elementsEqual(needle) }
        }
        check(found, "searchHighlighter", "\(out.debugDescription) is not a piece of the text")
    }

    // MARK: zip entry names

    /// `ZipEntryNames.safeRelativePath`: what it accepts is a non-empty relative path with `/`
    /// separators, no empty or `..` component, no `:` in its first component, and accepted
    /// again unchanged. Checked on the bytes, as the file system reads the path.
    public static func zipEntryNames(_ data: UnsafeRawBufferPointer) {
        let name = text(data, 4096)
        guard let path = ZipEntryNames.safeRelativePath(name) else { return }
        let bytes = Array(path.utf8)
        let parts = bytes.split(separator: 0x2F, omittingEmptySubsequences: false)
        check(!bytes.isEmpty && bytes.first != 0x2F && !bytes.contains(0x5C), "zipEntryNames", "accepted \(path.debugDescription)")
        check(!parts.contains { $0.isEmpty || $0.elementsEqual([0x2E, 0x2E]) }, "zipEntryNames", "accepted \(path.debugDescription)")
        check(!parts[0].contains(0x3A), "zipEntryNames", "accepted a drive or scheme in \(path.debugDescription)")
        check(ZipEntryNames.safeRelativePath(path) == path, "zipEntryNames", "not idempotent on \(path.debugDescription)")
    }
}
