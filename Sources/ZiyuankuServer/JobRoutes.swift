import Foundation
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// `GET /v1/admin/jobs` (the recent runs of the upkeep jobs) and `GET /v1/admin/report` (the
/// library report), for admins.
struct JobRoutes {
    let services: AppServices

    func register(_ r: Routes) {
        r.on(.get, "/v1/admin/jobs") { req, ctx in
            _ = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["kind", "limit"])
            let kind: JobKind? = q.enumValue("kind")
            let limit = q.int("limit", default: 20, range: 1...1000)
            try q.check()
            return try JSONResponse.make(JobsPage(items: try services.catalog.jobRuns(kind: kind, limit: limit), last: try services.catalog.lastRuns()))
        }
        r.on(.get, "/v1/admin/report") { req, ctx in
            _ = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["from", "to"])
            let toDay = q.day("to")
            let fromDay = q.day("from")
            try q.check()
            let to = toDay.flatMap { Timestamp.parse($0 + "T00:00:00Z") } ?? Date()
            let from = fromDay.flatMap { Timestamp.parse($0 + "T00:00:00Z") } ?? to.addingTimeInterval(-365 * 86_400)
            guard from < to else { throw DomainError.validation([.init(field: "from", message: "must be before 'to'")]) }
            let upkeep = Upkeep(catalog: services.catalog, root: services.root)
            let (_, report) = try services.catalog.recordRun(.report, trigger: .api) { try upkeep.report(from: from, to: to) }
            return try JSONResponse.make(report)
        }
    }
}

struct JobsPage: Encodable {
    /// Newest first.
    var items: [JobRun]
    /// The last finished run of each job.
    var last: [JobRun]
}

/// The metrics read from the catalog: the upkeep jobs' runs (so runs from the CLI count as
/// well as the scheduler's) and the sync outbox. Refreshed when `/metrics` is read; a series
/// whose labels are no longer in the catalog (a count the last run did not report) is removed.
final class CatalogMetrics: Sendable {
    private typealias Name = ServerMetrics.Name
    private let state: Mutex<State>

    init(factory: any MetricsFactory) {
        state = Mutex(State(factory: factory))
    }

    func refresh(from catalog: Catalog) {
        // Under the lock for the whole refresh: two scrapes at once must not interleave the
        // counters' catch-up.
        state.withLock { s in
            if let runs = try? catalog.lastRuns(), let totals = try? catalog.jobRunTotals() {
                s.seen = []
                for t in totals {
                    s.count(Name.jobRuns, [("job", t.kind), ("outcome", t.outcome)], total: t.count)
                }
                for r in runs {
                    let job = ("job", r.kind.rawValue)
                    s.set(Name.jobLastRunTime, [job], Timestamp.parse(r.endedAt ?? "")?.timeIntervalSince1970 ?? 0)
                    s.set(Name.jobLastRunOK, [job], r.outcome == .ok ? 1 : 0)
                    for (k, v) in r.counts { s.set(Name.jobLastRunCount, [job, ("count", k)], Double(v)) }
                }
                s.removeUnseen(among: [Name.jobRuns, Name.jobLastRunTime, Name.jobLastRunOK, Name.jobLastRunCount])
            }
            if let sync = try? catalog.syncCounts() {
                s.seen = []
                for (entryState, n) in [
                    ("pending", sync.pending), ("inFlight", sync.inFlight), ("done", sync.done), ("failed", sync.failed), ("dead", sync.dead),
                ] {
                    s.set(Name.syncOutbox, [("state", entryState)], Double(n))
                }
                s.removeUnseen(among: [Name.syncOutbox])
            }
        }
    }

    private struct Series: Hashable {
        var name: String
        var labelValues: [String]
    }

    private struct State {
        let factory: any MetricsFactory
        /// Each counter with the catalog total it has counted up to.
        var counters: [Series: (counter: Counter, total: Int)] = [:]
        var gauges: [Series: Gauge] = [:]
        var seen: Set<Series> = []

        init(factory: any MetricsFactory) { self.factory = factory }

        /// A counter kept equal to a total read from the catalog: it counts up by the runs
        /// since the last refresh, and starts again from zero if the total went down (a catalog
        /// restored from a backup), which Prometheus reads as a counter reset.
        mutating func count(_ name: String, _ labels: [(String, String)], total: Int) {
            let key = Series(name: name, labelValues: labels.map(\.1))
            seen.insert(key)
            var entry = counters[key] ?? (counter: Counter(label: name, dimensions: labels, factory: factory), total: 0)
            if total < entry.total {
                entry.counter.reset()
                entry.total = 0
            }
            if total > entry.total { entry.counter.increment(by: total - entry.total) }
            entry.total = total
            counters[key] = entry
        }

        mutating func set(_ name: String, _ labels: [(String, String)], _ value: Double) {
            let key = Series(name: name, labelValues: labels.map(\.1))
            seen.insert(key)
            let gauge = gauges[key] ?? Gauge(label: name, dimensions: labels, factory: factory)
            gauges[key] = gauge
            gauge.record(value)
        }

        /// Removes the series of these metrics that this refresh did not see.
        mutating func removeUnseen(among names: Set<String>) {
            for (key, entry) in counters where names.contains(key.name) && !seen.contains(key) {
                entry.counter.destroy()
                counters[key] = nil
            }
            for (key, gauge) in gauges where names.contains(key.name) && !seen.contains(key) {
                gauge.destroy()
                gauges[key] = nil
            }
        }
    }
}

/// Runs the upkeep jobs on their configured intervals inside the server (off when the interval
/// is 0). Runs one job at a time, on a thread of its own, and stops between jobs at shutdown;
/// a fixity slice is bounded by its time budget.
struct JobScheduler: Service, CustomStringConvertible {
    /// How the service group names it in errors (never a dump of the configuration and its secrets).
    var description: String { "job scheduler" }

    let services: AppServices
    let logger: Logger

    func run() async throws {
        let c = services.config
        let plan: [(JobKind, Int)] = [
            (.fixity, c.fixityIntervalMinutes), (.gc, c.gcIntervalMinutes), (.verify, c.verifyIntervalMinutes), (.optimize, c.optimizeIntervalMinutes),
            (.backup, c.backupIntervalMinutes), (.report, c.reportIntervalMinutes), (.reindex, c.reindexIntervalMinutes),
        ].filter { $0.1 > 0 }
        guard !plan.isEmpty else {
            // Nothing scheduled: wait for shutdown (a service that returns early ends the group, server included).
            try? await gracefulShutdown()
            return
        }
        let stop = StopFlag()
        await withGracefulShutdownHandler {
            while !stop.isSet && !Task.isCancelled {
                for (kind, minutes) in plan {
                    if stop.isSet || Task.isCancelled { return }
                    let last = (try? services.catalog.jobRuns(kind: kind, limit: 1).first).flatMap { $0 }
                    let lastTime = last.flatMap { Timestamp.parse($0.endedAt ?? $0.startedAt) } ?? .distantPast
                    // A run still marked running blocks this kind for 6 hours at most (a CLI run
                    // killed with Ctrl-C never records its end).
                    let busy = last?.outcome == .running && Date().timeIntervalSince(lastTime) < 6 * 3600
                    guard !busy, Date().timeIntervalSince(lastTime) >= Double(minutes) * 60 else { continue }
                    await runOnce(kind, stop: stop)
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(30)) }
            }
        } onGracefulShutdown: {
            stop.set()
        }
    }

    /// Set at graceful shutdown; a fixity slice stops at the next blob.
    final class StopFlag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }

    func runOnce(_ kind: JobKind, stop: StopFlag = StopFlag()) async {
        let upkeep = Upkeep(catalog: services.catalog, root: services.root)
        let c = services.config
        let started = Date()
        do {
            let outcome: JobOutcome = try await Task.detached {
                switch kind {
                case .fixity:
                    try services.catalog.recordRun(kind, trigger: .schedule) {
                        try upkeep.fixity(budget: Double(c.fixityBudgetSeconds), shouldStop: { stop.isSet })
                    }.run.outcome
                case .gc: try services.catalog.recordRun(kind, trigger: .schedule) { try upkeep.gc(grace: c.gcGraceHours * 3600, dryRun: false) }.run.outcome
                case .verify: try services.catalog.recordRun(kind, trigger: .schedule) { try upkeep.verify() }.run.outcome
                case .backup:
                    try services.catalog.recordRun(kind, trigger: .schedule) {
                        try upkeep.backup(to: c.backupDir ?? (services.root.backupsPath + "/latest"))
                    }.run.outcome
                case .report:
                    try services.catalog.recordRun(kind, trigger: .schedule) { try upkeep.report(from: Date().addingTimeInterval(-365 * 86_400), to: Date()) }
                        .run
                        .outcome
                case .reindex: try services.catalog.recordRun(kind, trigger: .schedule) { try upkeep.reindex() }.run.outcome
                case .restore: .ok  // never scheduled
                case .optimize: try services.catalog.recordRun(kind, trigger: .schedule) { try upkeep.optimize() }.run.outcome
                }
            }.value
            let level: Logger.Level = outcome == .ok ? .info : .error
            logger.log(
                level: level, "scheduled job finished",
                metadata: ["job": "\(kind.rawValue)", "outcome": "\(outcome.rawValue)", "seconds": "\(Int(Date().timeIntervalSince(started)))"])
        } catch {
            logger.error("scheduled job failed", metadata: ["job": "\(kind.rawValue)", "error": "\(error)"])
        }
    }
}
