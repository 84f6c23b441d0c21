import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuSync

/// The server's sync runs: at most one at a time, started by the schedule or by an admin, with
/// live progress for `GET /v1/admin/sync/status`, stopped cleanly at shutdown.
public final class SyncCoordinator: Sendable {
    struct Current {
        var task: Task<Void, Never>
        var startedAt: Date
        var trigger: String
        var progress = SyncProgress()
    }
    private let current = Mutex<Current?>(nil)

    public init() {}

    var isRunning: Bool { current.withLock { $0 != nil } }

    /// Starts a run in the background; throws when sync is not configured or a run is going.
    func start(services: AppServices, trigger: String, logger: Logger) throws {
        do { _ = try services.config.usablePlatform() } catch { throw DomainError(.conflict, "\(error)") }
        if let holder = try services.catalog.syncLockHolder(host: ProcessInfo.processInfo.hostName) {
            throw DomainError(.conflict, "A sync run is already going (\(holder)); watch it with GET /v1/admin/sync/status.")
        }
        var initial = SyncProgress()
        if let c = try? services.catalog.syncCounts() { initial.remaining = c.waiting }
        let started: Bool = current.withLock { cur in
            guard cur == nil, let made = try? services.config.makePlatform() else { return false }
            let task = Task.detached { [self] in
                let runner = SyncRunner(
                    catalog: services.catalog, root: services.root, adapter: made.adapter, settings: services.config.syncSettings, logger: logger)
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
            throw DomainError(.conflict, "A sync run is already going in this server; watch it with GET /v1/admin/sync/status.")
        }
    }

    /// Cancels the running run (transfers are aborted, entries go back to the queue) and waits.
    func stop() async {
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
}

struct RunningSync: Encodable {
    var startedAt: String
    var trigger: String
    var done: Int
    var failed: Int
    var dead: Int
    var remaining: Int
    var bytesSent: Int64
}

/// Runs sync every `sync_interval_minutes` when the platform is configured; at shutdown the
/// running sync is stopped and its entries go back to the queue.
struct SyncService: Service, CustomStringConvertible {
    /// How the service group names it in errors (never a dump of the configuration and its secrets).
    var description: String { "sync runner" }

    let services: AppServices
    let logger: Logger

    func run() async throws {
        let minutes = services.config.syncIntervalMinutes
        let configured = services.config.platform != nil
        if configured {
            do { _ = try services.config.usablePlatform() } catch { logger.error("sync is configured but cannot run: \(error)") }
        }
        if configured && minutes > 0 {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                if !services.sync.isRunning, (try? services.catalog.syncWorkWaiting(host: ProcessInfo.processInfo.hostName)) == true {
                    do { try services.sync.start(services: services, trigger: "schedule", logger: logger) } catch {
                        logger.warning("scheduled sync did not start: \(error)")
                    }
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(Double(minutes) * 60)) }
            }
        } else {
            try? await gracefulShutdown()
        }
        // Runs started by an admin stop here too.
        await services.sync.stop()
    }
}

/// `/v1/admin/sync/...`: the CLI's sync commands over HTTP, for admins.
struct SyncRoutes {
    let services: AppServices

    func register(_ r: Routes) {
        let catalog = services.catalog
        r.on(.post, "/v1/admin/sync/select") { req, ctx in
            let admin = try ctx.requireAdmin()
            let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
            var errors = FieldReader.unknownFields(in: body, allowed: ["ids", "majorCode", "resourceType", "organizationId", "dryRun"])
            var f = FieldReader(object: body)
            var s = SyncSelection()
            s.ids = f.textArray("ids", required: false, min: 0, max: 10_000, itemMax: 36) ?? []
            for (i, id) in s.ids.enumerated() where !Identifiers.isUUID(id) { errors.append(.init(field: "ids[\(i)]", message: "not a resource id")) }
            s.majorCode = f.text("majorCode", required: false, max: 7)
            if let m = s.majorCode, !MetadataValidator.isMajorCodeOrPrefix(m) {
                errors.append(.init(field: "majorCode", message: "a major, class or category code such as 520601, 5206 or 52"))
            }
            s.resourceType = f.enumValue("resourceType", required: false)
            s.organizationId = f.text("organizationId", required: false, max: 100)
            let dryRun = f.bool("dryRun") ?? false
            errors += f.errors
            if !errors.isEmpty { throw DomainError.validation(errors) }
            if s.isEmpty {
                throw DomainError.validation([.init(field: "ids", message: "give ids, majorCode, resourceType or organizationId")])
            }
            return try JSONResponse.make(try catalog.selectForSync(s, by: admin.userId, dryRun: dryRun))
        }
        r.on(.get, "/v1/admin/sync/dry-run") { req, ctx in
            _ = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["limit"])
            let limit = q.int("limit", default: 1000, range: 1...100_000)
            try q.check()
            return try JSONResponse.make(try SyncRunner.plan(catalog: catalog, root: services.root, limit: limit))
        }
        r.on(.post, "/v1/admin/sync/run") { req, ctx in
            _ = try ctx.requireAdmin()
            try QueryReader(req, allowed: []).check()
            try services.sync.start(services: services, trigger: "api", logger: ctx.logger)
            return try JSONResponse.make(try status(), status: .accepted, headers: [.location: "/v1/admin/sync/status"])
        }
        r.on(.get, "/v1/admin/sync/status") { req, ctx in
            _ = try ctx.requireAdmin()
            try QueryReader(req, allowed: []).check()
            return try JSONResponse.make(try status())
        }
        r.on(.get, "/v1/admin/sync/entries") { req, ctx in
            _ = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["state", "limit"])
            let state: SyncState? = q.enumValue("state")
            let limit = q.int("limit", default: 100, range: 1...10_000)
            try q.check()
            return try JSONResponse.make(EntriesPage(items: try catalog.syncEntries(state: state, limit: limit)))
        }
        r.on(.get, "/v1/admin/sync/entries/:id") { req, ctx in
            _ = try ctx.requireAdmin()
            try QueryReader(req, allowed: []).check()
            let id = try ctx.parameters.require("id")
            guard let detail = try catalog.syncEntryDetail(id: id) else { throw DomainError.notFound() }
            return try JSONResponse.make(detail)
        }
        r.on(.post, "/v1/admin/sync/retry") { req, ctx in
            let admin = try ctx.requireAdmin()
            let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
            var errors = FieldReader.unknownFields(in: body, allowed: ["dead", "failed", "ids"])
            var f = FieldReader(object: body)
            let dead = f.bool("dead") ?? false
            let failed = f.bool("failed") ?? false
            let ids = f.textArray("ids", required: false, min: 0, max: 10_000, itemMax: 36) ?? []
            errors += f.errors
            for (i, id) in ids.enumerated() where !Identifiers.isUUID(id) { errors.append(.init(field: "ids[\(i)]", message: "not a resource id")) }
            if !dead && !failed && ids.isEmpty { errors.append(.init(field: "dead", message: "set dead or failed to true, or give ids")) }
            if !errors.isEmpty { throw DomainError.validation(errors) }
            return try JSONResponse.make(["requeued": try catalog.retrySync(dead: dead, failed: failed, ids: ids, by: admin.userId)])
        }
    }

    func status() throws -> SyncStatus {
        let last = try services.catalog.lastSyncRun()
        return SyncStatus(
            configured: services.config.platform != nil, platformURL: services.config.platformURL, outbox: try services.catalog.syncCounts(),
            running: services.sync.running, lastRun: last,
            attention: try services.catalog.syncEntries(state: .dead, limit: 20))
    }
}

struct SyncStatus: Encodable {
    var configured: Bool
    var platformURL: String?
    var outbox: SyncCounts
    var running: RunningSync?
    var lastRun: JSONValue?
    /// Dead entries (at most 20), with the platform's message.
    var attention: [SyncEntry]
}

struct EntriesPage: Encodable {
    var items: [SyncEntry]
}
