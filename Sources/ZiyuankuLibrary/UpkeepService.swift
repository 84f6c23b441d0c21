import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// The upkeep jobs — fixity, gc, verify, optimize, backup, the report, reindexing — each run
/// recorded with its trigger, outcome and counts, whoever starts it: the server's schedule, an
/// admin through the API, or the operator with the CLI. Also the job history and restore.
public struct UpkeepService: Sendable {
    let library: Library

    public init(library: Library) { self.library = library }

    /// Progress of a long job: units done of a total (blobs, bytes, rows).
    public typealias Progress = (Int64, Int64) -> Void

    var upkeep: Upkeep { Upkeep(catalog: library.catalog, root: library.root) }
    var catalog: any JobRepository { library.catalog }

    /// Re-hashes stored files, those checked longest ago first, for at most `budget` seconds.
    public func fixity(
        budget: Double?, trigger: JobTrigger, as actor: AdminActor, shouldStop: () -> Bool = { false }, progress: Progress = { _, _ in }
    ) throws -> (run: JobRun, report: FixityReport) {
        _ = try actor.authorize()
        if let budget, !(budget > 0) { throw DomainError.validation([.init(field: "budget", message: "must be a positive number of seconds")]) }
        return try catalog.recordRun(.fixity, trigger: trigger) { try upkeep.fixity(budget: budget, shouldStop: shouldStop, progress: progress) }
    }

    /// Removes unused blobs, old trash and abandoned uploads older than `graceHours`.
    public func gc(
        graceHours: Double, dryRun: Bool, trigger: JobTrigger, as actor: AdminActor, progress: Progress = { _, _ in }
    ) throws -> (
        run: JobRun, report: GCReport
    ) {
        _ = try actor.authorize()
        guard graceHours >= 1, graceHours.isFinite else {
            throw DomainError.validation([.init(field: "graceHours", message: "must be at least 1 (uploads in flight are younger)")])
        }
        return try catalog.recordRun(.gc, trigger: trigger) { try upkeep.gc(grace: graceHours * 3600, dryRun: dryRun, progress: progress) }
    }

    public func verify(trigger: JobTrigger, as actor: AdminActor, progress: Progress = { _, _ in }) throws -> (run: JobRun, report: VerifyReport) {
        _ = try actor.authorize()
        return try catalog.recordRun(.verify, trigger: trigger) { try upkeep.verify(progress: progress) }
    }

    public func optimize(trigger: JobTrigger, as actor: AdminActor) throws -> (run: JobRun, report: OptimizeReport) {
        _ = try actor.authorize()
        return try catalog.recordRun(.optimize, trigger: trigger) { try upkeep.optimize() }
    }

    public func reindex(trigger: JobTrigger, as actor: AdminActor, progress: Progress = { _, _ in }) throws -> (run: JobRun, report: ReindexReport) {
        _ = try actor.authorize()
        return try catalog.recordRun(.reindex, trigger: trigger) { try upkeep.reindex(progress: progress) }
    }

    /// Backs up the catalog and the blobs to `target` (default: the configured backup folder,
    /// else `backups/latest` in the data root).
    public func backup(
        to target: String? = nil, trigger: JobTrigger, as actor: AdminActor, progress: Progress = { _, _ in }
    ) throws -> (
        run: JobRun, report: BackupReport
    ) {
        _ = try actor.authorize()
        let folder = target ?? library.config.backupDir ?? (library.root.backupsPath + "/latest")
        return try catalog.recordRun(.backup, trigger: trigger) { try upkeep.backup(to: folder, progress: progress) }
    }

    /// The library report over [from, to); by default the 365 days up to now.
    public func report(from: Date?, to: Date?, trigger: JobTrigger, as actor: AdminActor) throws -> (run: JobRun, report: LibraryReport) {
        _ = try actor.authorize()
        let end = to ?? Date()
        let start = from ?? end.addingTimeInterval(-365 * 86_400)
        guard start < end else { throw DomainError.validation([.init(field: "from", message: "must be before the end of the period ('to')")]) }
        return try catalog.recordRun(.report, trigger: trigger) { try upkeep.report(from: start, to: end) }
    }

    /// Runs `kind` as the schedule does, with the configured settings; its outcome.
    public func runScheduled(_ kind: JobKind, shouldStop: @escaping () -> Bool) throws -> JobOutcome {
        let c = library.config
        let me = AdminActor.local(userId: nil)
        switch kind {
        case .fixity: return try fixity(budget: Double(c.fixityBudgetSeconds), trigger: .schedule, as: me, shouldStop: shouldStop).run.outcome
        case .gc: return try gc(graceHours: c.gcGraceHours, dryRun: false, trigger: .schedule, as: me).run.outcome
        case .verify: return try verify(trigger: .schedule, as: me).run.outcome
        case .backup: return try backup(trigger: .schedule, as: me).run.outcome
        case .report: return try report(from: nil, to: nil, trigger: .schedule, as: me).run.outcome
        case .reindex: return try reindex(trigger: .schedule, as: me).run.outcome
        case .optimize: return try optimize(trigger: .schedule, as: me).run.outcome
        case .restore: return .ok  // never scheduled
        }
    }

    /// The jobs the schedule runs, with their intervals in minutes (those set to 0 are off).
    public var schedule: [(kind: JobKind, minutes: Int)] {
        let c = library.config
        return [
            (JobKind.fixity, c.fixityIntervalMinutes), (.gc, c.gcIntervalMinutes), (.verify, c.verifyIntervalMinutes), (.optimize, c.optimizeIntervalMinutes),
            (.backup, c.backupIntervalMinutes), (.report, c.reportIntervalMinutes), (.reindex, c.reindexIntervalMinutes),
        ].filter { $0.1 > 0 }.map { (kind: $0.0, minutes: $0.1) }
    }

    /// Whether the schedule should run `kind` now: its interval has passed since its last run
    /// ended, and no run of it is going (a run still marked running blocks it for six hours at
    /// most: a CLI run killed with Ctrl-C never records its end).
    public func isDue(_ kind: JobKind, every minutes: Int, now: Date = Date()) -> Bool {
        let last = (try? catalog.jobRuns(kind: kind, limit: 1).first).flatMap { $0 }
        let lastTime = last.flatMap { Timestamp.parse($0.endedAt ?? $0.startedAt) } ?? .distantPast
        let busy = last?.outcome == .running && now.timeIntervalSince(lastTime) < 6 * 3600
        return !busy && now.timeIntervalSince(lastTime) >= Double(minutes) * 60
    }

    /// Recent runs (newest first, of one job or all), and the last finished run of each job.
    public func runs(kind: JobKind?, limit: Int, as actor: AdminActor) throws -> (items: [JobRun], last: [JobRun]) {
        _ = try actor.authorize()
        guard (1...1000).contains(limit) else { throw DomainError.validation([.init(field: "limit", message: "must be 1–1000")]) }
        return (try catalog.jobRuns(kind: kind, limit: limit), try catalog.lastRuns())
    }

    /// Restores a backup into an empty data root, checks it (fixity and verify) and records the
    /// run in the restored catalog.
    public static func restore(
        from source: String, into root: DataRoot, progress: Progress = { _, _ in }
    ) throws -> (
        run: JobRun, report: RestoreReport
    ) {
        let (catalog, report) = try Upkeep.restore(from: source, into: root, progress: progress)
        return try catalog.recordRun(.restore, trigger: .cli) { report }
    }
}

extension Library {
    public var upkeep: UpkeepService { UpkeepService(library: self) }
}
