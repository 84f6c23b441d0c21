import Foundation
import Logging
import Synchronization
import ZiyuankuCore
import ZiyuankuStore
import ZiyuankuSync

/// Who asks for an administrative action: an administrator signed in through a surface, or the
/// operator at the machine (the CLI on the data root, trusted through the folder's permissions),
/// with the admin whose token it was given, if any, for the audit log.
public enum AdminActor: Sendable {
    case principal(Principal)
    case local(userId: String?)

    /// A signed-in administrator; `forbidden` for anyone else (surfaces check this before they
    /// read a request body, so a non-admin learns nothing from the body's validation).
    public static func admin(_ p: Principal) throws -> AdminActor { .principal(try p.requireAdmin()) }

    /// The user to record in the audit log; refuses anyone but an administrator.
    public func authorize() throws -> String? {
        switch self {
        case .principal(let p): return try p.requireAdmin().userId
        case .local(let userId): return userId
        }
    }
}

/// Sending resources to the national platform: choosing what goes into the outbox, putting dead
/// entries back, looking at it, and the runs that send it (at most one at a time per process,
/// and one per data root through the catalog's lock). One instance per process.
public final class PlatformSyncService: Sendable {
    let library: Library
    private let current = Mutex<Current?>(nil)

    struct Current {
        var task: Task<Void, Never>
        var startedAt: Date
        var trigger: String
        var progress = SyncProgress()
    }

    public init(library: Library) { self.library = library }

    var catalog: any SyncOutboxRepository & AccountRepository { library.catalog }
    var config: ServerConfig { library.config }

    /// What to put in the outbox. Filters combine; `organization` is an id or an exact name.
    public struct Selection: Sendable {
        public var ids: [String] = []
        public var majorCode: String?
        public var resourceType: ResourceType?
        public var organization: String?
        public init() {}
    }

    /// Queues the published, public resources with `pushToPlatform` set that `s` names (or
    /// says what would be queued, with `dryRun`); resources named by id that cannot be sent are
    /// listed with the reason. Fields in errors: `ids[i]`, `majorCode`, `organizationId`.
    public func select(_ s: Selection, as actor: AdminActor, dryRun: Bool) throws -> SyncSelectResult {
        let by = try actor.authorize()
        var errors: [FieldError] = []
        for (i, id) in s.ids.enumerated() where !Identifiers.isUUID(id) { errors.append(.init(field: "ids[\(i)]", message: "not a resource id")) }
        if let m = s.majorCode, !MetadataValidator.isMajorCodeOrPrefix(m) {
            errors.append(.init(field: "majorCode", message: "a major, class or category code such as 520601, 5206 or 52"))
        }
        var selection = SyncSelection()
        selection.ids = s.ids
        selection.majorCode = s.majorCode
        selection.resourceType = s.resourceType
        if let ref = s.organization {
            let org = try (Identifiers.isUUID(ref) ? catalog.organization(id: ref) : nil) ?? catalog.organization(named: ref)
            if let org {
                selection.organizationId = org.id
            } else {
                errors.append(.init(field: "organizationId", message: "no organization with this id or exact name"))
            }
        } else if selection.isEmpty {
            errors.append(.init(field: "ids", message: "give ids, majorCode, resourceType or organizationId"))
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return try catalog.selectForSync(selection, by: by, dryRun: dryRun)
    }

    /// Puts dead and/or failed entries (all of them, or those of `ids`) back in the queue, due
    /// now. Returns how many. Fields in errors: `ids[i]`, `dead`.
    public func retry(dead: Bool, failed: Bool, ids: [String], as actor: AdminActor) throws -> Int {
        let by = try actor.authorize()
        var errors: [FieldError] = []
        for (i, id) in ids.enumerated() where !Identifiers.isUUID(id) { errors.append(.init(field: "ids[\(i)]", message: "not a resource id")) }
        if !dead && !failed && ids.isEmpty { errors.append(.init(field: "dead", message: "set dead or failed to true, or give ids")) }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return try catalog.retrySync(dead: dead, failed: failed, ids: ids, by: by, now: Date())
    }

    /// What the next run would send, with what the platform would refuse (nothing is sent).
    public func plan(limit: Int, as actor: AdminActor) throws -> [SyncPlanItem] {
        _ = try actor.authorize()
        return try SyncRunner.plan(catalog: library.catalog, root: library.root, limit: limit)
    }

    public func entries(state: SyncState?, limit: Int, as actor: AdminActor) throws -> [SyncEntry] {
        _ = try actor.authorize()
        return try catalog.syncEntries(state: state, limit: limit)
    }

    /// One outbox entry and its attempts; `notFound` for a resource never selected.
    public func entry(id: String, as actor: AdminActor) throws -> SyncEntryDetail {
        _ = try actor.authorize()
        guard Identifiers.isUUID(id), let detail = try catalog.syncEntryDetail(id: id) else {
            throw DomainError(.notFound, "\(id.prefix(64)) is not in the outbox (never selected).")
        }
        return detail
    }

    /// The outbox counts, the run going in this process (live), the last run and the dead
    /// entries (at most 20) with the platform's message.
    public func status(as actor: AdminActor) throws -> SyncStatus {
        _ = try actor.authorize()
        return SyncStatus(
            configured: config.platform != nil, platformURL: config.platformURL, outbox: try catalog.syncCounts(), running: running,
            lastRun: try catalog.lastSyncRun(), lastRunEndedAt: try catalog.lastSyncRunEndedAt(),
            attention: try catalog.syncEntries(state: .dead, limit: 20))
    }

    // MARK: runs

    /// Sends what the outbox holds now, in this task (the CLI): retries falling due within
    /// `maxWait` seconds are waited for. `conflict` when another run holds the data root.
    public func run(
        maxWait: Double, concurrency: Int? = nil, logger: Logger, progress: (@Sendable (SyncProgress) -> Void)? = nil
    ) async throws -> SyncRunSummary {
        var settings = config
        if let concurrency { settings.syncConcurrency = concurrency }
        let made = try platform(settings)
        defer { made.pool.shutdown() }
        let runner = SyncRunner(catalog: library.catalog, root: library.root, adapter: made.adapter, settings: settings.syncSettings, logger: logger)
        return try await runner.run(maxWait: maxWait, progress: progress)
    }

    public var isRunning: Bool { current.withLock { $0 != nil } }

    /// Starts a run in the background (the schedule, or an admin through a surface); `conflict`
    /// when sync is not configured or a run is going.
    public func start(trigger: String, as actor: AdminActor, logger: Logger) throws {
        _ = try actor.authorize()
        let made = try platform(config)
        if let holder = try catalog.syncLockHolder(host: ProcessInfo.processInfo.hostName, staleAfter: 60, now: Date()) {
            made.pool.shutdown()
            throw DomainError(.conflict, "A sync run is already going (\(holder)); watch it with GET /v1/admin/sync/status.")
        }
        var initial = SyncProgress()
        if let c = try? catalog.syncCounts() { initial.remaining = c.waiting }
        let started: Bool = current.withLock { cur in
            guard cur == nil else { return false }
            let task = Task.detached { [self] in
                let runner = SyncRunner(
                    catalog: library.catalog, root: library.root, adapter: made.adapter, settings: config.syncSettings, logger: logger)
                do {
                    _ = try await runner.run(maxWait: 30) { p in self.current.withLock { $0?.progress = p } }
                } catch {
                    logger.warning("sync run did not start: \(error)")
                }
                made.pool.shutdown()
                self.current.withLock { $0 = nil }
            }
            cur = Current(task: task, startedAt: Date(), trigger: trigger, progress: initial)
            return true
        }
        if !started {
            made.pool.shutdown()
            throw DomainError(.conflict, "A sync run is already going in this server; watch it with GET /v1/admin/sync/status.")
        }
    }

    /// Starts a scheduled run when sync is configured, none is going and work is waiting.
    public func startIfDue(logger: Logger) {
        guard config.platform != nil, !isRunning, (try? catalog.syncWorkWaiting(host: ProcessInfo.processInfo.hostName, now: Date())) == true else { return }
        do { try start(trigger: "schedule", as: .local(userId: nil), logger: logger) } catch {
            logger.warning("scheduled sync did not start: \(error)")
        }
    }

    /// Cancels the running run (transfers are aborted, entries go back to the queue) and waits.
    public func stop() async {
        let task = current.withLock { $0?.task }
        task?.cancel()
        await task?.value
    }

    var running: RunningSync? {
        current.withLock { c in
            c.map {
                RunningSync(
                    startedAt: Timestamp.format($0.startedAt), trigger: $0.trigger, done: $0.progress.done, failed: $0.progress.failed,
                    dead: $0.progress.dead, remaining: $0.progress.remaining, bytesSent: $0.progress.bytesSent)
            }
        }
    }

    /// The adapter and its transfer pool; `conflict` (naming what is missing) when the platform
    /// is not configured.
    func platform(_ config: ServerConfig) throws -> (adapter: PlatformV1, pool: CurlPool) {
        do { _ = try config.usablePlatform() } catch { throw DomainError(.conflict, "\(error)") }
        do { return try config.makePlatform() } catch { throw DomainError(.conflict, "\(error)") }
    }
}

public struct RunningSync: Encodable, Sendable {
    public var startedAt: String
    public var trigger: String
    public var done: Int
    public var failed: Int
    public var dead: Int
    public var remaining: Int
    public var bytesSent: Int64
}

public struct SyncStatus: Encodable, Sendable {
    public var configured: Bool
    public var platformURL: String?
    public var outbox: SyncCounts
    public var running: RunningSync?
    public var lastRun: JSONValue?
    /// When the last run ended (for people; `lastRun` carries it for programs).
    public var lastRunEndedAt: String?
    /// Dead entries (at most 20), with the platform's message.
    public var attention: [SyncEntry]

    enum CodingKeys: String, CodingKey {
        case configured, platformURL, outbox, running, lastRun, attention
    }
}
