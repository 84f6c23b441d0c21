import Foundation
import Hummingbird
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// The review workflow, version diff and restore, soft deletion, download statistics, the
/// review queue and the audit log (docs/product.md#resources-and-versions, #review-workflow, #audit-log, #library-report).
struct WorkflowRoutes {
    let services: AppServices
    var allowAnonymous: Bool { services.config.allowAnonymous }
    var workflow: WorkflowService { services.library.workflow }

    func register(_ r: Routes) {
        for action in WorkflowAction.allCases {
            r.on(.post, "/v1/resources/:id/\(action.rawValue)") { req, ctx in try await transition(action, req, ctx) }
        }
        r.on(.delete, "/v1/resources/:id") { _, ctx in
            try workflow.softDelete(id: try ctx.parameters.require("id"), by: try ctx.requireUser())
            return Response(status: .noContent)
        }
        r.on(.get, "/v1/resources/:id/versions/:n/diff/:b") { _, ctx in
            let diff = try workflow.diff(
                id: try ctx.parameters.require("id"), from: ctx.parameters.get("n").flatMap { Int($0) }, to: ctx.parameters.get("b").flatMap { Int($0) },
                by: ctx.principal)
            return try JSONResponse.make(diff)
        }
        r.on(.post, "/v1/resources/:id/versions/:n/restore") { req, ctx in
            let p = try ctx.requireUser()
            let view = try workflow.restore(
                id: try ctx.parameters.require("id"), version: ctx.parameters.get("n").flatMap { Int($0) }, by: p, expected: try ETag.expectedVersion(req))
            return try ResourceDTO(view: view, privileged: true).response(status: .created, headers: [.eTag: ETag.version(view.version.number)])
        }
        r.on(.get, "/v1/resources/:id/downloads") { req, ctx in
            var q = QueryReader(req, allowed: ["from", "to"])
            let to = q.day("to")
            let from = q.day("from")
            try q.check()
            return try JSONResponse.make(try workflow.downloads(id: try ctx.parameters.require("id"), by: ctx.principal, from: from, to: to))
        }

        r.on(.get, "/v1/reviews") { req, ctx in
            let p = try WorkflowService.requireReviewQueue(try ctx.requireUser())
            var q = QueryReader(req, allowed: ["status", "organization", "page", "pageSize"])
            let status: ResourceStatus = q.enumValue("status") ?? .inReview
            let org = q.uuid("organization")
            let page = q.int("page", default: 1, range: 1...10_000)
            let pageSize = q.int("pageSize", default: 20, range: 1...100)
            try q.check()
            let (items, total) = try workflow.reviewQueue(by: p, status: status, organization: org, page: page, pageSize: pageSize)
            return try ResourcePage(
                items: items.map { ResourceDTO(view: $0, privileged: true, allowedActions: Access.allowedActions(p, $0.state)) },
                total: total, totalExact: true, page: page, pageSize: pageSize, sort: "submitted", query: nil, facets: nil
            ).response()
        }

        r.on(.get, "/v1/audit") { req, ctx in
            let p = try ctx.requireAdmin()
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
            let items = try workflow.audit(by: p, aq)
            return try JSONResponse.make(AuditPage(items: items, next: items.count == aq.limit ? items.last?.seq : nil))
        }
        r.on(.get, "/v1/audit/verify") { _, ctx in
            try JSONResponse.make(try workflow.verifyAudit(by: try ctx.requireUser()))
        }

        r.on(.get, "/v1/admin/resources/deleted") { req, ctx in
            let p = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["limit"])
            let limit = q.int("limit", default: 100, range: 1...1000)
            try q.check()
            return try JSONResponse.make(["items": try workflow.deleted(by: p, limit: limit)])
        }
        r.on(.post, "/v1/admin/resources/:id/undelete") { _, ctx in
            let view = try workflow.undelete(id: try ctx.parameters.require("id"), by: try ctx.requireUser())
            return try ResourceDTO(view: view, privileged: true).response()
        }
        r.on(.delete, "/v1/admin/resources/:id") { _, ctx in
            try workflow.purge(id: try ctx.parameters.require("id"), by: try ctx.requireUser())
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
            reason = try WorkflowService.reason(from: try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes))
        }
        let view = try workflow.transition(id: id, action: action, by: p, reason: reason, expected: try ETag.expectedVersion(req))
        return try ResourceDTO(view: view, privileged: true, allowedActions: Access.allowedActions(p, view.state))
            .response(headers: [.eTag: ETag.version(view.version.number)])
    }
}

struct AuditPage: Encodable {
    var items: [AuditEntry]
    /// Pass as `before` for the next (older) page; absent on the last page.
    var next: Int64?
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
