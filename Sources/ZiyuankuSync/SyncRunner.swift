import Foundation
import Logging
import Synchronization
import ZiyuankuCore
import ZiyuankuStore

/// How the runner paces itself.
public struct SyncSettings: Sendable, Equatable {
    /// Entries sent at once (each a HEAD/PUT-file/PUT-record sequence).
    public var concurrency = 4
    /// Attempts before a retryable failure goes dead.
    public var maxAttempts = 25
    /// Backoff: the n-th retry waits a random time in [0, min(cap, base·2ⁿ⁻¹)] (full jitter).
    public var backoffBaseSeconds = 2.0
    public var backoffCapSeconds = 600.0

    public init() {}

    public func backoff(attempt: Int) -> Double {
        let ceiling = min(backoffCapSeconds, backoffBaseSeconds * pow(2, Double(max(0, min(attempt - 1, 40)))))
        return Double.random(in: 0...max(ceiling, 0))
    }
}

public struct SyncProgress: Sendable {
    public var done = 0
    public var failed = 0
    public var dead = 0
    /// Entries waiting or in flight when this was taken.
    public var remaining = 0
    public var bytesSent: Int64 = 0
    public init() {}
    init(done: Int, failed: Int, dead: Int, remaining: Int, bytesSent: Int64) {
        self.done = done
        self.failed = failed
        self.dead = dead
        self.remaining = remaining
        self.bytesSent = bytesSent
    }
}

/// What one run did, for the final table and `sync status`.
public struct SyncRunSummary: Codable, Sendable {
    public var startedAt: String
    public var endedAt: String
    public var seconds: Double
    /// Attempts that ended done, failed (to be retried), dead, or cancelled by shutdown.
    public var done: Int
    public var failed: Int
    public var dead: Int
    public var cancelled: Int
    public var bytesSent: Int64
    /// Why the run stopped: `idle` (nothing left), `waiting` (retries fall due later than the
    /// run was willing to wait), or `stopped` (shutdown).
    public var stoppedBecause: String
    /// When the next retry falls due, if any.
    public var nextAttemptAt: String?
    /// The whole outbox after the run.
    public var outbox: SyncCounts
}

/// Drains the outbox into a platform adapter with bounded concurrency. One runner at a time per
/// catalog (a lock in `settings` with a heartbeat; a dead runner's lock is taken over).
public final class SyncRunner: Sendable {
    let catalog: Catalog
    let blobs: FileBlobStore
    let adapter: any PlatformAdapter
    let settings: SyncSettings
    let logger: Logger

    public init(catalog: Catalog, root: DataRoot, adapter: any PlatformAdapter, settings: SyncSettings, logger: Logger) {
        self.catalog = catalog
        blobs = FileBlobStore(root: root)
        self.adapter = adapter
        self.settings = settings
        self.logger = logger
    }

    private final class Tally: Sendable {
        let done = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let dead = Atomic<Int>(0)
        let cancelled = Atomic<Int>(0)
        let active = Atomic<Int>(0)
        let bytes = ByteCounter()
    }

    /// Runs until nothing is due and no retry falls due within `maxWait` seconds, or the task is
    /// cancelled (in-flight transfers are aborted and their entries go back to the queue).
    public func run(maxWait: Double, progress: (@Sendable (SyncProgress) -> Void)? = nil) async throws -> SyncRunSummary {
        let owner = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName), run \(UUID().uuidString.prefix(8))"
        try catalog.acquireSyncLock(owner: owner, pid: getpid(), host: ProcessInfo.processInfo.hostName)
        let started = Date()
        let tally = Tally()
        let catalog = catalog
        let workers = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<max(1, self.settings.concurrency) {
                    group.addTask { await self.worker(tally: tally, maxWait: maxWait) }
                }
            }
        }
        let logger = logger
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(10))
                if Task.isCancelled { break }
                // Another runner took the lock over (this one was silent too long): stop at once,
                // so two runners never drain the outbox together.
                if (try? catalog.heartbeatSyncLock(owner: owner)) == false {
                    logger.error("sync: another run took over the lock; stopping this one")
                    workers.cancel()
                    break
                }
            }
        }
        let reporter: Task<Void, Never>? = progress.map { report in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    report(self.snapshot(tally))
                }
            }
        }
        defer {
            heartbeat.cancel()
            reporter?.cancel()
            try? catalog.releaseSyncLock(owner: owner)
        }
        await withTaskCancellationHandler {
            await workers.value
        } onCancel: {
            workers.cancel()
        }
        progress?(snapshot(tally))
        let next = try catalog.nextSyncDue()
        let ended = Date()
        let stopped = Task.isCancelled || workers.isCancelled ? "stopped" : (next == nil ? "idle" : "waiting")
        let summary = SyncRunSummary(
            startedAt: Timestamp.format(started), endedAt: Timestamp.format(ended), seconds: ended.timeIntervalSince(started),
            done: tally.done.load(ordering: .relaxed), failed: tally.failed.load(ordering: .relaxed), dead: tally.dead.load(ordering: .relaxed),
            cancelled: tally.cancelled.load(ordering: .relaxed), bytesSent: tally.bytes.total, stoppedBecause: stopped,
            nextAttemptAt: next.map(Timestamp.format), outbox: try catalog.syncCounts())
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try? catalog.recordSyncRun(String(decoding: try e.encode(summary), as: UTF8.self))
        logger.info(
            "sync run finished",
            metadata: ["done": "\(summary.done)", "failed": "\(summary.failed)", "dead": "\(summary.dead)", "seconds": "\(Int(summary.seconds))"])
        return summary
    }

    private func snapshot(_ t: Tally) -> SyncProgress {
        let counts = (try? catalog.syncCounts()) ?? SyncCounts()
        return SyncProgress(
            done: t.done.load(ordering: .relaxed), failed: t.failed.load(ordering: .relaxed), dead: t.dead.load(ordering: .relaxed),
            remaining: counts.waiting, bytesSent: t.bytes.total)
    }

    private func worker(tally: Tally, maxWait: Double) async {
        while !Task.isCancelled {
            let work: Catalog.SyncWork?
            do { work = try catalog.claimSyncWork(record: Self.recordBody) } catch {
                logger.error("sync: cannot read the outbox: \(error)")
                return
            }
            guard let work else {
                // Nothing due now. Wait for a retry that falls due soon, or for another worker
                // whose entry may fail and come back; otherwise this worker is done.
                let next = (try? catalog.nextSyncDue()) ?? nil
                let soon = next.map { $0.timeIntervalSinceNow <= maxWait } ?? false
                let busy = tally.active.load(ordering: .relaxed) > 0
                if !soon && !busy { return }
                // While others are sending, look again soon (their entry may come back, or the
                // run may be over); otherwise sleep until the next retry falls due.
                let cap = busy ? 0.02 : 0.2
                let pause = min(max(next?.timeIntervalSinceNow ?? cap, 0.005), cap)
                try? await Task.sleep(for: .seconds(pause))
                continue
            }
            tally.active.add(1, ordering: .relaxed)
            await process(work, tally: tally)
            tally.active.subtract(1, ordering: .relaxed)
        }
    }

    struct NotSendable: Error, CustomStringConvertible {
        let description: String
    }

    /// The record body for a version (built the first time it is sent; kept afterwards).
    @Sendable static func recordBody(_ payload: SyncPayload) throws -> Data {
        let record = PlatformRecord(payload)
        if !record.problems.isEmpty { throw NotSendable(description: "not sent: " + record.problems.joined(separator: "; ")) }
        return try record.encoded()
    }

    private func process(_ work: Catalog.SyncWork, tally: Tally) async {
        let entry = work.entry
        let started = Date()
        let sent = ByteCounter()
        var outcome: SyncOutcome
        do throws(PlatformFailure) {
            switch entry.op {
            case .put:
                let (remote, status) = try await put(work, sent: sent)
                outcome = .done(remoteId: remote, status: status)
            case .delete:
                outcome = .done(remoteId: nil, status: try await adapter.deleteResource(id: entry.resourceId))
            }
        } catch {
            switch error.disposition {
            case .retry: outcome = .failed(message: error.message, status: error.status, retryAfter: error.retryAfter)
            case .dead: outcome = .dead(message: error.message, status: error.status)
            case .cancelled: outcome = .cancelled
            }
        }
        if Task.isCancelled, case .failed = outcome { outcome = .cancelled }
        tally.bytes.add(sent.total)
        switch outcome {
        case .done: tally.done.add(1, ordering: .relaxed)
        case .failed: tally.failed.add(1, ordering: .relaxed)
        case .dead: tally.dead.add(1, ordering: .relaxed)
        case .cancelled: tally.cancelled.add(1, ordering: .relaxed)
        }
        if case .dead(let m, _) = outcome { logger.warning("sync: \(entry.resourceId) is dead: \(m)") }
        do {
            try catalog.finishSyncAttempt(
                entry, startedAt: started, outcome: outcome, bytesSent: sent.total, maxAttempts: settings.maxAttempts,
                backoff: settings.backoff(attempt:))
        } catch {
            // The entry stays inFlight; the next run takes it over and replays it (idempotent).
            logger.error("sync: cannot record the attempt on \(entry.resourceId): \(error)")
        }
    }

    private func put(_ work: Catalog.SyncWork, sent: ByteCounter) async throws(PlatformFailure) -> (String?, Int) {
        func dead(_ m: String) -> PlatformFailure { PlatformFailure(disposition: .dead, message: m, status: nil, retryAfter: nil) }
        let entry = work.entry
        if let problem = work.problem { throw dead(problem) }
        // The body first sent for this version was kept with the claim and is sent every time,
        // so the idempotency key always comes with the same bytes (even after a rename of the
        // organization or a major).
        guard let number = entry.version, let payload = work.payload, let body = work.body else { throw dead("the entry names no version") }
        var seen = Set<String>()
        for file in payload.version.files where seen.insert(file.sha256).inserted {
            if try await adapter.hasFile(sha256: file.sha256) { continue }
            guard let path = blobs.localPath(of: file.sha256) else {
                throw dead("the bytes of \(file.name) (\(file.sha256.prefix(12))…) are missing here; run `zyk fixity`, repair, then retry")
            }
            try await adapter.putFile(sha256: file.sha256, path: path, size: file.size, progress: sent)
        }
        return try await adapter.putResource(id: entry.resourceId, version: number, record: body)
    }

    /// What a run would send now, with the problems the platform would refuse (dry run).
    public static func plan(catalog: Catalog, root: DataRoot, limit: Int) throws -> [SyncPlanItem] {
        let blobs = FileBlobStore(root: root)
        return try catalog.syncEntries(states: [.pending, .failed, .inFlight], limit: limit).map { e in
            var item = SyncPlanItem(
                resourceId: e.resourceId, title: e.title, op: e.op, version: e.version, state: e.state, attempts: e.attempts,
                nextAttemptAt: e.nextAttemptAt, files: 0, bytes: 0, problems: [])
            guard e.op == .put else { return item }
            guard let v = e.version, let payload = try catalog.syncPayload(id: e.resourceId, version: v) else {
                item.problems.append("version \(e.version ?? 0) no longer exists")
                return item
            }
            let record = PlatformRecord(payload)
            item.problems = record.problems
            var seen = Set<String>()
            for f in payload.version.files where seen.insert(f.sha256).inserted {
                item.files += 1
                item.bytes += f.size
                if blobs.localPath(of: f.sha256) == nil { item.problems.append("the bytes of \(f.name) are missing here") }
            }
            item.recordBytes = (try? record.encoded().count) ?? 0
            return item
        }
    }
}

public struct SyncPlanItem: Codable, Sendable {
    public var resourceId: String
    public var title: String?
    public var op: SyncOp
    public var version: Int?
    public var state: SyncState
    public var attempts: Int
    public var nextAttemptAt: String
    public var files: Int
    public var bytes: Int64
    public var problems: [String]
    public var recordBytes = 0
}
