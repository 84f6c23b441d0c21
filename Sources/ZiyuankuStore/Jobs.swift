import Foundation
import GRDB
import ZiyuankuCore

public enum JobKind: String, Sendable, CaseIterable, Codable {
    case fixity, gc, verify, optimize, reindex, backup, restore, report
}

public enum JobTrigger: String, Sendable, Codable {
    case cli, schedule, api
}

public enum JobOutcome: String, Sendable, Codable {
    /// Still running (or killed: marked `interrupted` when jobs next start).
    case running
    /// Finished and found nothing wrong.
    case ok
    /// Finished and found something wrong (see counts and details); the CLI exits non-zero.
    case problems
    /// Could not finish (an error).
    case failed
    case interrupted
}

/// One recorded run of an upkeep job: a row of `job_runs`, read as a GRDB record (its closed
/// vocabularies through `Row.decode`, which names an unknown stored value).
public struct JobRun: Sendable, Codable, Equatable, FetchableRecord, TableRecord {
    public static let databaseTableName = "job_runs"

    public enum Columns {
        public static let id = Column("id")
        public static let kind = Column("kind")
        public static let outcome = Column("outcome")
    }

    public var id: Int64
    public var kind: JobKind
    public var trigger: JobTrigger
    public var startedAt: String
    public var endedAt: String?
    public var outcome: JobOutcome
    public var counts: [String: Int64]
    /// The job's report (JSON), capped in size.
    public var details: JSONValue

    public init(row: Row) throws {
        id = row["id"]
        kind = try row.decode(JobKind.self, "kind")
        trigger = try row.decode(JobTrigger.self, "trigger")
        startedAt = row["started_at"]
        endedAt = row["ended_at"]
        outcome = try row.decode(JobOutcome.self, "outcome")
        counts = (try? JSONDecoder().decode([String: Int64].self, from: Data((row["counts"] as String).utf8))) ?? [:]
        details = (try? JSONValue.parse(Array((row["details"] as String).utf8))) ?? .object([:])
    }
}

/// What a job reports: whether it found problems, its counts (also shown as metrics), and
/// its details for the run row.
public protocol JobReport: Encodable, Sendable {
    var problemCount: Int { get }
    var counts: [String: Int64] { get }
}

extension Catalog {
    /// Records the start of a run; returns its id.
    func startRun(_ kind: JobKind, trigger: JobTrigger) throws -> Int64 {
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO job_runs (kind, trigger, started_at, outcome) VALUES (?, ?, ?, 'running')",
                arguments: [kind.rawValue, trigger.rawValue, Timestamp.now()])
            return db.lastInsertedRowID
        }
    }

    func finishRun(_ id: Int64, outcome: JobOutcome, counts: [String: Int64], details: JSONValue) throws {
        var text = Catalog.canonicalJSON(details)
        if text.utf8.count > 256 * 1024 { text = Catalog.canonicalJSON(.object(["truncated": .bool(true), "bytes": .number(Double(text.utf8.count))])) }
        let countsText = String(decoding: try JSONEncoder().encode(counts), as: UTF8.self)
        try pool.write { db in
            try db.execute(
                sql: "UPDATE job_runs SET ended_at = ?, outcome = ?, counts = ?, details = ? WHERE id = ?",
                arguments: [Timestamp.now(), outcome.rawValue, countsText, text, id])
        }
    }

    /// Runs left `running` by a process that died are marked `interrupted` (called when the
    /// server starts; a run that is in fact still going overwrites this when it ends).
    public func markInterruptedRuns() throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE job_runs SET outcome = 'interrupted', ended_at = ? WHERE outcome = 'running'", arguments: [Timestamp.now()])
        }
    }

    /// The newest runs, of one kind or all.
    public func jobRuns(kind: JobKind? = nil, limit: Int = 50) throws -> [JobRun] {
        var runs = JobRun.order(JobRun.Columns.id.desc).limit(limit)
        if let kind { runs = runs.filter(JobRun.Columns.kind == kind.rawValue) }
        return try pool.read { db in try runs.fetchAll(db) }
    }

    /// The last finished run of each kind (for metrics and the admin page).
    public func lastRuns() throws -> [JobRun] {
        try pool.read { db in
            try JobRun.fetchAll(
                db,
                sql: """
                    SELECT * FROM job_runs WHERE id IN (SELECT max(id) FROM job_runs WHERE outcome <> 'running' GROUP BY kind) ORDER BY kind
                    """)
        }
    }

    /// Finished runs by kind and outcome (for metrics).
    public func jobRunTotals() throws -> [(kind: String, outcome: String, count: Int)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT kind, outcome, count(*) FROM job_runs WHERE outcome <> 'running' GROUP BY kind, outcome ORDER BY kind, outcome")
                .map { ($0[0], $0[1], $0[2]) }
        }
    }

    /// Runs `body` as a recorded job: a run row when it starts, its outcome, counts and report
    /// when it ends (`failed` with the error when it throws, and the error is rethrown).
    public func recordRun<R: JobReport>(_ kind: JobKind, trigger: JobTrigger, _ body: () throws -> R) throws -> (run: JobRun, report: R) {
        let id = try startRun(kind, trigger: trigger)
        let report: R
        do {
            report = try body()
        } catch {
            let message = (error as? DomainError)?.message ?? "\(error)"
            try? finishRun(id, outcome: .failed, counts: [:], details: .object(["error": .string(message)]))
            throw error
        }
        let details = (try? JSONValue.parse(Array(JSONEncoder().encode(report)))) ?? .object([:])
        try finishRun(id, outcome: report.problemCount > 0 ? .problems : .ok, counts: report.counts, details: details)
        guard let run = try jobRuns(kind: kind, limit: 5).first(where: { $0.id == id }) else { throw DomainError(.internal, "the job run vanished") }
        return (run, report)
    }
}
