import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuSync

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
                services.sync.startIfDue(logger: logger)
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
        let sync = services.sync
        r.on(.post, "/v1/admin/sync/select") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
            var errors = FieldReader.unknownFields(in: body, allowed: ["ids", "majorCode", "resourceType", "organizationId", "dryRun"])
            var f = FieldReader(object: body)
            var s = PlatformSyncService.Selection()
            s.ids = f.textArray("ids", required: false, min: 0, max: 10_000, itemMax: 36) ?? []
            s.majorCode = f.text("majorCode", required: false, max: 7)
            s.resourceType = f.enumValue("resourceType", required: false)
            s.organization = f.text("organizationId", required: false, max: 100)
            let dryRun = f.bool("dryRun") ?? false
            errors += f.errors
            if !errors.isEmpty { throw DomainError.validation(errors) }
            return try JSONResponse.make(try sync.select(s, as: actor, dryRun: dryRun))
        }
        r.on(.get, "/v1/admin/sync/dry-run") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            var q = QueryReader(req, allowed: ["limit"])
            let limit = q.int("limit", default: 1000, range: 1...100_000)
            try q.check()
            return try JSONResponse.make(try sync.plan(limit: limit, as: actor))
        }
        r.on(.post, "/v1/admin/sync/run") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            try QueryReader(req, allowed: []).check()
            try sync.start(trigger: "api", as: actor, logger: ctx.logger)
            return try JSONResponse.make(try sync.status(as: actor), status: .accepted, headers: [.location: "/v1/admin/sync/status"])
        }
        r.on(.get, "/v1/admin/sync/status") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            try QueryReader(req, allowed: []).check()
            return try JSONResponse.make(try sync.status(as: actor))
        }
        r.on(.get, "/v1/admin/sync/entries") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            var q = QueryReader(req, allowed: ["state", "limit"])
            let state: SyncState? = q.enumValue("state")
            let limit = q.int("limit", default: 100, range: 1...10_000)
            try q.check()
            return try JSONResponse.make(EntriesPage(items: try sync.entries(state: state, limit: limit, as: actor)))
        }
        r.on(.get, "/v1/admin/sync/entries/:id") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            try QueryReader(req, allowed: []).check()
            return try JSONResponse.make(try sync.entry(id: try ctx.parameters.require("id"), as: actor))
        }
        r.on(.post, "/v1/admin/sync/retry") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
            var errors = FieldReader.unknownFields(in: body, allowed: ["dead", "failed", "ids"])
            var f = FieldReader(object: body)
            let dead = f.bool("dead") ?? false
            let failed = f.bool("failed") ?? false
            let ids = f.textArray("ids", required: false, min: 0, max: 10_000, itemMax: 36) ?? []
            errors += f.errors
            if !errors.isEmpty { throw DomainError.validation(errors) }
            return try JSONResponse.make(["requeued": try sync.retry(dead: dead, failed: failed, ids: ids, as: actor)])
        }
    }
}

struct EntriesPage: Encodable {
    var items: [SyncEntry]
}
