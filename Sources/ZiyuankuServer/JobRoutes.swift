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
        let upkeep = services.library.upkeep
        r.on(.get, "/v1/admin/jobs") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            var q = QueryReader(req, allowed: ["kind", "limit"])
            let kind: JobKind? = q.enumValue("kind")
            let limit = q.int("limit", default: 20, range: 1...1000)
            try q.check()
            let runs = try upkeep.runs(kind: kind, limit: limit, as: actor)
            return try JSONResponse.make(JobsPage(items: runs.items, last: runs.last))
        }
        r.on(.get, "/v1/admin/report") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            var q = QueryReader(req, allowed: ["from", "to"])
            let to = q.day("to").flatMap { Timestamp.parse($0 + "T00:00:00Z") }
            let from = q.day("from").flatMap { Timestamp.parse($0 + "T00:00:00Z") }
            try q.check()
            return try JSONResponse.make(try upkeep.report(from: from, to: to, trigger: .api, as: actor).report)
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
        let upkeep = services.library.upkeep
        let plan = upkeep.schedule
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
                    guard upkeep.isDue(kind, every: minutes) else { continue }
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
        let upkeep = services.library.upkeep
        let started = Date()
        do {
            let outcome = try await Task.detached { try upkeep.runScheduled(kind, shouldStop: { stop.isSet }) }.value
            let level: Logger.Level = outcome == .ok ? .info : .error
            logger.log(
                level: level, "scheduled job finished",
                metadata: ["job": "\(kind.rawValue)", "outcome": "\(outcome.rawValue)", "seconds": "\(Int(Date().timeIntervalSince(started)))"])
        } catch {
            logger.error("scheduled job failed", metadata: ["job": "\(kind.rawValue)", "error": "\(error)"])
        }
    }
}
