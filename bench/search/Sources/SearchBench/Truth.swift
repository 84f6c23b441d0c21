import Foundation

/// glibc's memmem (two-way, vectorised); not exported by the Glibc module without _GNU_SOURCE.
@_silgen_name("memmem")
func c_memmem(_ haystack: UnsafeRawPointer?, _ haystackLength: Int, _ needle: UnsafeRawPointer?, _ needleLength: Int) -> UnsafeMutableRawPointer?

/// The substring truth: every record's searched text (simplified, lower-case; from the
/// generator, not from the search code) in one buffer, records separated by a NUL byte.
final class TruthIndex {
    private var bytes: [UInt8] = []
    /// Start offset of each record's text.
    private var starts: [Int] = []

    var count: Int { starts.count }
    var byteCount: Int { bytes.count }

    init() {}

    func append(_ text: String) {
        starts.append(bytes.count)
        bytes.append(contentsOf: text.utf8)
        bytes.append(0)
    }

    func reserve(records: Int, bytesPerRecord: Int) {
        starts.reserveCapacity(records)
        bytes.reserveCapacity(records * bytesPerRecord)
    }

    /// The record that holds byte offset `o`.
    private func record(at o: Int) -> Int {
        var lo = 0
        var hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= o { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Records (0-based, ascending) where `part` holds.
    func records(_ part: TruthPart) -> [Int] {
        let needle = Array(part.text.lowercased().utf8)
        var out: [Int] = []
        guard !needle.isEmpty else { return out }
        let wordStart: Bool
        if case .wordPrefix = part { wordStart = true } else { wordStart = false }
        bytes.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { nd in
                guard let base = hay.baseAddress, let nb = nd.baseAddress else { return }
                var offset = 0
                let total = hay.count
                while offset < total {
                    guard let p = c_memmem(base + offset, total - offset, nb, nd.count) else { break }
                    let at = base.distance(to: p.assumingMemoryBound(to: UInt8.self))
                    if wordStart && at > 0 {
                        let b = hay[at - 1]
                        if (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) {
                            offset = at + 1
                            continue
                        }
                    }
                    let r = record(at: at)
                    out.append(r)
                    // Next record.
                    offset = r + 1 < starts.count ? starts[r + 1] : total
                }
            }
        }
        return out
    }

    /// Records where every part holds.
    func records(all parts: [TruthPart]) -> [Int] {
        guard var acc = parts.first.map({ records($0) }) else { return [] }
        for p in parts.dropFirst() {
            let s = Set(records(p))
            acc = acc.filter { s.contains($0) }
        }
        return acc
    }

    func text(_ i: Int) -> String {
        let end = i + 1 < starts.count ? starts[i + 1] - 1 : bytes.count - 1
        return String(decoding: bytes[starts[i]..<end], as: UTF8.self)
    }
}
