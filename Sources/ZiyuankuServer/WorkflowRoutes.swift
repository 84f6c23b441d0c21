import Foundation
import Hummingbird
import ZiyuankuCore
import ZiyuankuStore

/// The review workflow, version diff and restore, soft deletion, download statistics, the
/// review queue and the audit log (docs/product.md#resources-and-versions, #review-workflow, #audit-log, #library-report).
struct WorkflowRoutes {
    let services: AppServices
    var catalog: Catalog { services.catalog }
    var allowAnonymous: Bool { services.config.allowAnonymous }
    var resources: ResourceRoutes { ResourceRoutes(services: services) }

    func register(_ r: Routes) {
        for action in WorkflowAction.allCases {
            r.on(.post, "/v1/resources/:id/\(action.rawValue)") { req, ctx in try await transition(action, req, ctx) }
        }
        r.on(.delete, "/v1/resources/:id") { _, ctx in
            let p = try ctx.requireUser()
            let id = try ctx.parameters.require("id")
            guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
            try catalog.softDelete(id: id, by: p, allowAnonymous: allowAnonymous)
            return Response(status: .noContent)
        }
        r.on(.get, "/v1/resources/:id/versions/:n/diff/:b") { _, ctx in
            let (state, privileged) = try resources.visible(ctx)
            let published = privileged ? [:] : try catalog.readerVersions(id: state.id)
            func number(_ key: String) throws -> Int {
                guard let raw = ctx.parameters.get(key), let n = Int(raw),
                    Access.canReadVersion(ctx.principal, state, n, published: published, allowAnonymous: allowAnonymous)
                else { throw DomainError.notFound("version") }
                return n
            }
            guard let diff = try catalog.diff(id: state.id, from: try number("n"), to: try number("b")) else { throw DomainError.notFound("version") }
            return try JSONResponse.make(diff)
        }
        r.on(.post, "/v1/resources/:id/versions/:n/restore") { req, ctx in
            let p = try ctx.requireUser()
            let (state, _) = try resources.visible(ctx)
            try resources.authorizeEdit(p)(state)  // before the range check: readers learn nothing about drafts
            guard let raw = ctx.parameters.get("n"), let n = Int(raw), n >= 1, n <= state.currentVersion else { throw DomainError.notFound("version") }
            let view = try catalog.restoreVersion(
                id: state.id, number: n, by: p, expectedVersion: try resources.expectedVersion(req), authorize: resources.authorizeEdit(p))
            return try ResourceDTO(view: view, privileged: true).response(status: .created, headers: [.eTag: resources.etag(view.version.number)])
        }
        r.on(.get, "/v1/resources/:id/downloads") { req, ctx in
            let (state, _) = try resources.visible(ctx)
            var q = QueryReader(req, allowed: ["from", "to"])
            let today = DownloadCounter.day(Date())
            let to = q.day("to") ?? today
            let from = q.day("from") ?? DownloadCounter.day(Date().addingTimeInterval(-29 * 86_400))
            if from > to { q.errors.append(.init(field: "from", message: "must not be after 'to'")) }
            try q.check()
            let days = try catalog.downloadDays(resourceId: state.id, from: from, to: to)
            return try JSONResponse.make(
                DownloadStats(
                    resourceId: state.id, total: state.downloadCount, from: from, to: to, timeZone: "Asia/Shanghai (UTC+8)",
                    days: days.map { .init(day: $0.day, count: $0.count) }))
        }

        r.on(.get, "/v1/reviews") { req, ctx in
            let p = try ctx.requireUser()
            guard p.role == .reviewer || p.role == .admin else { throw DomainError.forbidden("Only reviewers and administrators have a review queue.") }
            var q = QueryReader(req, allowed: ["status", "organization", "page", "pageSize"])
            let status: ResourceStatus = q.enumValue("status") ?? .inReview
            var org = q.uuid("organization")
            let page = q.int("page", default: 1, range: 1...10_000)
            let pageSize = q.int("pageSize", default: 20, range: 1...100)
            try q.check()
            if p.role == .reviewer {
                if let o = org, o != p.organizationId { throw DomainError.forbidden("Reviewers see the queue of their own organization only.") }
                org = p.organizationId
            }
            let (items, total) = try catalog.reviewQueue(organizationId: org, status: status, page: page, pageSize: pageSize)
            return try ResourcePage(
                items: items.map { ResourceDTO(view: $0, privileged: true, allowedActions: Access.allowedActions(p, $0.state)) },
                total: total, totalExact: true, page: page, pageSize: pageSize, sort: "submitted", query: nil, facets: nil
            ).response()
        }

        r.on(.get, "/v1/audit") { req, ctx in
            _ = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["resource", "user", "action", "since", "until", "before", "limit"])
            var aq = AuditQuery()
            aq.resourceId = q.uuid("resource")
            aq.actorId = q.uuid("user")
            aq.action = q.string("action", maxLength: 64)
            aq.since = q.time("since")
            aq.until = q.time("until")
            let before = q.int("before", default: 0, range: 0...Int.max)
            aq.before = before > 0 ? Int64(before) : nil
            aq.limit = q.int("limit", default: 100, range: 1...1000)
            try q.check()
            let items = try catalog.auditEntries(aq)
            return try JSONResponse.make(AuditPage(items: items, next: items.count == aq.limit ? items.last?.seq : nil))
        }
        r.on(.get, "/v1/audit/verify") { _, ctx in
            _ = try ctx.requireAdmin()
            return try JSONResponse.make(try catalog.verifyAudit())
        }

        r.on(.get, "/v1/admin/resources/deleted") { req, ctx in
            _ = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["limit"])
            let limit = q.int("limit", default: 100, range: 1...1000)
            try q.check()
            let retention = services.config.deletedRetentionDays
            return try JSONResponse.make([
                "items": try catalog.deletedResources(limit: limit).map {
                    DeletedResource(id: $0.id, ownerId: $0.ownerId, organizationId: $0.organizationId, status: $0.status.rawValue, deletedAt: $0.deletedAt ?? "",
                        restorableUntil: Timestamp.parse($0.deletedAt ?? "").map { Timestamp.format($0.addingTimeInterval(Double(retention) * 86_400)) } ?? "")
                }
            ])
        }
        r.on(.post, "/v1/admin/resources/:id/undelete") { _, ctx in
            let p = try ctx.requireAdmin()
            let id = try ctx.parameters.require("id")
            guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
            let state = try catalog.undelete(id: id, by: p, retentionDays: services.config.deletedRetentionDays)
            guard let view = try catalog.view(id: state.id, version: state.currentVersion) else { throw DomainError.notFound() }
            return try ResourceDTO(view: view, privileged: true).response()
        }
        r.on(.delete, "/v1/admin/resources/:id") { _, ctx in
            let p = try ctx.requireAdmin()
            let id = try ctx.parameters.require("id")
            guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
            try catalog.purge(id: id, by: p)
            return Response(status: .noContent)
        }
    }

    /// A workflow action; the body is optional JSON (`{"reason": …}`, required for reject).
    func transition(_ action: WorkflowAction, _ req: Request, _ ctx: ZykContext) async throws -> Response {
        let p = try ctx.requireUser()
        let id = try ctx.parameters.require("id")
        guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
        var reason: String?
        let declared = try BodyReader.declaredLength(req)
        if declared != 0 && (req.headers[.contentType] != nil || declared != nil) {
            let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
            var f = FieldReader(object: body)
            var errors = body.keys.filter { $0 != "reason" }.sorted().map { FieldError(field: $0, message: "unknown field") }
            reason = f.text("reason", required: false, max: 1000, multiline: true)
            errors += f.errors
            if !errors.isEmpty { throw DomainError.validation(errors) }
        }
        let view = try catalog.transition(
            id: id, action: action, by: p, reason: reason, expectedVersion: try resources.expectedVersion(req), allowAnonymous: allowAnonymous)
        return try ResourceDTO(view: view, privileged: true, allowedActions: Access.allowedActions(p, view.state))
            .response(headers: [.eTag: resources.etag(view.version.number)])
    }
}

struct DownloadStats: Encodable {
    struct Day: Encodable {
        var day: String
        var count: Int
    }
    var resourceId: String
    var total: Int
    var from: String
    var to: String
    var timeZone: String
    var days: [Day]
}

struct AuditPage: Encodable {
    var items: [AuditEntry]
    /// Pass as `before` for the next (older) page; absent on the last page.
    var next: Int64?
}

struct DeletedResource: Encodable {
    var id: String
    var ownerId: String
    var organizationId: String
    var status: String
    var deletedAt: String
    var restorableUntil: String
}

extension QueryReader {
    /// A YYYY-MM-DD day.
    mutating func day(_ key: String) -> String? {
        guard let s = string(key, maxLength: 10) else { return nil }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        if s.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1,
            d <= [31, (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        {
            return s
        }
        errors.append(.init(field: key, message: "must be a calendar day like 2026-11-30"))
        return nil
    }

    /// An RFC 3339 time, returned in the stored form.
    mutating func time(_ key: String) -> String? {
        guard let s = string(key, maxLength: 40) else { return nil }
        guard let d = Timestamp.parse(s) else {
            errors.append(.init(field: key, message: "must be an RFC 3339 time such as 2026-09-01T00:00:00Z"))
            return nil
        }
        return Timestamp.format(d)
    }
}
