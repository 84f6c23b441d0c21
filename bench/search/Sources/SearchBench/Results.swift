import Foundation

/// Milliseconds: nearest-rank percentiles.
struct Dist: Codable, Sendable {
    var n: Int
    var p50: Double
    var p99: Double
    var min: Double
    var max: Double
    var mean: Double

    init(_ samples: [Double]) {
        let s = samples.sorted()
        n = s.count
        func rank(_ p: Double) -> Double { s.isEmpty ? .nan : s[Swift.max(0, Swift.min(s.count - 1, Int((p * Double(s.count)).rounded(.up)) - 1))] }
        p50 = rank(0.5)
        p99 = rank(0.99)
        min = s.first ?? .nan
        max = s.last ?? .nan
        mean = s.isEmpty ? .nan : s.reduce(0, +) / Double(s.count)
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

struct QueryResult: Codable, Sendable {
    var kind: String
    var input: String
    var truth: [String]
    var note: String?
    /// The FTS5 expression `SearchQuery` built.
    var expression: String
    /// Records the substring truth holds for.
    var truthHits: Int
    /// `total` reported by `searchResources`.
    var apiTotal: Int
    /// Size of the complete result set (same MATCH on a read connection).
    var resultSet: Int
    var found: Int
    var missed: Int
    /// Results outside the substring truth (expected for pinyin, initials and Latin prefixes).
    var extra: Int
    var recall: Double
    var missedExamples: [String]
    /// Rows `LIKE` returned (misses the traditional-character records by design).
    var likeHits: Int?
    var anchorMs: [Double]
    var anchorMedianMs: Double?
    /// Ranked first page without facets (the P5/P6 figure).
    var page: Dist
    /// Ranked first page with facets and total (the API's default).
    var pageWithFacets: Dist?
    var pageSamples: [Double]
    var facetSamples: [Double]
    /// Parts of the search SQL and suggested alternatives, timed alone (ms, median).
    var diagnosticsMs: [String: Double]
    /// Timed repetitions of the page (fewer than configured for slow queries, see queryBudget).
    var reps: Int
    var firstPageSize: Int
}

struct KindResult: Codable, Sendable {
    var kind: String
    var queries: Int
    var targeted: Bool
    var medianHits: Double
    var page: Dist
    var pageWithFacets: Dist?
    /// Median over the kind's queries of each query's anchor median.
    var anchorMedianMs: Double?
    var p50Ratio: Double?
    var p99Ratio: Double?
    var worstQueryP99Ratio: Double?
    var worstQuery: String?
    var truthHits: Int
    var found: Int
    var recall: Double
    var minQueryRecall: Double
    var extra: Int
    var latencyMet: Bool?
    var recallMet: Bool
}

struct ImportResult: Codable, Sendable {
    var rows: Int
    var batchSize: Int
    var batches: Int
    var zykSeconds: Double
    var plainSeconds: Double
    var zykRowsPerSecond: Double
    var plainRowsPerSecond: Double
    var ratio: Double
    /// Per batch: plain ms / zyk ms (the two ran back to back, alternating which went first).
    var pairedRatioMedian: Double
    var zykBatchMs: Dist
    var plainBatchMs: Dist
    /// Rates over the first and the last 10% of batches (does the index slow down as it grows?).
    var zykRowsPerSecondFirst10: Double
    var zykRowsPerSecondLast10: Double
    var generateSeconds: Double
    var validateSeconds: Double
    var traditionalRecords: Int
}

struct IndexSize: Codable, Sendable {
    var method: String
    /// Bytes of the FTS5 table and its shadow tables.
    var ftsBytes: Int
    var ftsBytesPerRecord: Double
    var ftsTables: [String: Int]
    var catalogFileBytes: Int
    var catalogBytesPerRecord: Double
    var plainFileBytes: Int
    var plainTableBytes: Int?
    var ftsSegments: Int?
}

struct SizeRun: Codable, Sendable {
    var rows: Int
    var seconds: Double
    var backgroundCpuCores: Double
    var reps: Int
    var minReps: Int
    var queryBudgetSeconds: Double
    var facetReps: Int
    var anchorReps: Int
    var importResult: ImportResult
    var index: IndexSize
    var kinds: [KindResult]
    var queries: [QueryResult]
    var notes: [String]
}

struct TargetResult: Codable, Sendable {
    var what: String
    var target: String
    var met: Bool?
    var details: [String: Double]
    var notes: [String]
}

struct Report: Codable, Sendable {
    var benchmark = "search (P5, P6, P7)"
    var date: String
    var machine: [String: String]
    var config: [String: String]
    var runs: [SizeRun]
    var results: [String: TargetResult]
    var allMet: Bool
    var totalSeconds: Double
    var notes: [String]
}
