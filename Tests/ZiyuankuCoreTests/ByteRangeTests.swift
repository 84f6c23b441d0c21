import Testing

@testable import ZiyuankuCore

@Suite struct ByteRangeTests {
    @Test func singleAndSuffixRanges() {
        #expect(ByteRangeRequest.parse("bytes=100-199", size: 1000) == .ranges([100...199]))
        #expect(ByteRangeRequest.parse("bytes=900-", size: 1000) == .ranges([900...999]))
        #expect(ByteRangeRequest.parse("bytes=-100", size: 1000) == .ranges([900...999]))
        #expect(ByteRangeRequest.parse("bytes=-5000", size: 1000) == .ranges([0...999]))
        #expect(ByteRangeRequest.parse("bytes=0-99999999999999999999999", size: 1000) == .ranges([0...999]))
        #expect(ByteRangeRequest.parse("BYTES=0-0", size: 1000) == .ranges([0...0]))
    }

    @Test func absurdRanges() {
        #expect(ByteRangeRequest.parse("bytes=1000-", size: 1000) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=5000-6000", size: 1000) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=-0", size: 1000) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=99999999999999999999999-", size: 1000) == .unsatisfiable)
        // Invalid syntax or an inverted range: the header is ignored (RFC 9110 §14.2).
        #expect(ByteRangeRequest.parse("bytes=200-100", size: 1000) == .full)
        #expect(ByteRangeRequest.parse("bytes=abc", size: 1000) == .full)
        #expect(ByteRangeRequest.parse("items=0-1", size: 1000) == .full)
        #expect(ByteRangeRequest.parse("bytes=--1", size: 1000) == .full)
        #expect(ByteRangeRequest.parse("bytes=1-2-3", size: 1000) == .full)
        let thousand = "bytes=" + (0..<1000).map { "\($0)-\($0)" }.joined(separator: ",")
        #expect(ByteRangeRequest.parse(thousand, size: 100_000) == .tooMany)
    }

    @Test func overlappingRangesAreCoalesced() {
        #expect(ByteRangeRequest.parse("bytes=0-99,50-149,10-20", size: 1000) == .ranges([0...149]))
        #expect(ByteRangeRequest.parse("bytes=0-9,100-109", size: 1000) == .ranges([0...9, 100...109]))
        let same = "bytes=" + Array(repeating: "0-999", count: 16).joined(separator: ",")
        #expect(ByteRangeRequest.parse(same, size: 1000) == .ranges([0...999]))
    }
}
