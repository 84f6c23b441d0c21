/// `Range: bytes=…` parsing per RFC 9110 §14.
public enum ByteRangeRequest: Equatable, Sendable {
    /// No usable Range header: send the whole representation with 200.
    case full
    /// One or more satisfiable ranges (coalesced when they overlap), inclusive bounds.
    case ranges([ClosedRange<Int64>])
    /// Every range lies outside the representation: 416.
    case unsatisfiable
    /// More ranges than the server serves in one response: 416 with an explanation.
    case tooMany

    public static let defaultMaxRanges = 16

    public static func parse(_ header: String?, size: Int64, maxRanges: Int = defaultMaxRanges) -> ByteRangeRequest {
        guard let header, size > 0 else { return .full }
        let trimmed = header.trimmingPrefixWhitespace()
        guard trimmed.count > 6, trimmed.prefix(6).lowercased() == "bytes=" else { return .full }
        let specs = trimmed.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false)
        if specs.count > maxRanges * 4 { return .tooMany }
        var out: [ClosedRange<Int64>] = []
        for raw in specs {
            let spec = raw.trimmingSpaces()
            if spec.isEmpty { continue }  // RFC 9110 allows empty list elements
            guard let dash = spec.firstIndex(of: "-") else { return .full }
            let first = spec[..<dash]
            let last = spec[spec.index(after: dash)...]
            if first.isEmpty {
                guard let n = parseNumber(last) else { return .full }
                if n == 0 { continue }
                out.append(max(0, size - n)...(size - 1))
            } else {
                guard let a = parseNumber(first) else { return .full }
                let b: Int64
                if last.isEmpty {
                    b = size - 1
                } else {
                    guard let parsed = parseNumber(last) else { return .full }
                    if parsed < a { return .full }  // invalid range-spec: the field is ignored
                    b = min(parsed, size - 1)
                }
                if a >= size { continue }
                out.append(a...b)
            }
        }
        if out.isEmpty { return .unsatisfiable }
        if out.count > maxRanges { return .tooMany }
        // Coalesce overlapping ranges so that a hostile client cannot make us send the same bytes many times.
        let hasOverlap =
            out.count > 1
            && zip(out.sorted { $0.lowerBound < $1.lowerBound }, out.sorted { $0.lowerBound < $1.lowerBound }.dropFirst())
                .contains { $0.upperBound + 1 >= $1.lowerBound }
        if hasOverlap {
            var merged: [ClosedRange<Int64>] = []
            for r in out.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if let l = merged.last, r.lowerBound <= l.upperBound + 1 {
                    merged[merged.count - 1] = l.lowerBound...max(l.upperBound, r.upperBound)
                } else {
                    merged.append(r)
                }
            }
            out = merged
        }
        return .ranges(out)
    }

    /// Digits only; values beyond 10^18 saturate (they are beyond any file anyway).
    static func parseNumber(_ s: Substring) -> Int64? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        if s.count > 18 { return Int64.max / 2 }
        return Int64(s)
    }
}

extension StringProtocol {
    func trimmingPrefixWhitespace() -> SubSequence { self.drop(while: { $0 == " " || $0 == "\t" }) }
    func trimmingSpaces() -> Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
