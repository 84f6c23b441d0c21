import Foundation
import ZiyuankuCore
import ZiyuankuStore

extension Principal {
    /// Administrators only.
    public func requireAdmin() throws -> Principal {
        guard role == .admin else { throw DomainError.forbidden("Only administrators may do this.") }
        return self
    }

    /// Teachers, reviewers and administrators create resources and upload files; readers do not.
    public func requireAuthor() throws -> Principal {
        guard role.canAuthor else { throw DomainError.forbidden("Your role (\(role.rawValue)) may not upload or create resources.") }
        return self
    }
}

/// The review workflow, versions (diff, restore), deletion and its undoing, download
/// statistics, the review queue and the audit log, for every surface.
public struct WorkflowService: Sendable {
    let catalog: any WorkflowRepository & ResourceRepository & AuditLog
    let resources: ResourceService
    let allowAnonymous: Bool
    let deletedRetentionDays: Int

    /// A workflow action (submit, approve, reject with a reason, publish, …) on the version
    /// the caller last saw.
    public func transition(id: String, action: WorkflowAction, by p: Principal, reason: String?, expected: Int?) throws -> ResourceView {
        guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
        return try catalog.transition(id: id, action: action, by: p, reason: reason, expectedVersion: expected, allowAnonymous: allowAnonymous)
    }

    /// Reads the optional body of a workflow action: only `reason` (required by reject, which
    /// the catalog checks).
    public static func reason(from body: [String: JSONValue]) throws -> String? {
        var f = FieldReader(object: body)
        var errors = FieldReader.unknownFields(in: body, allowed: ["reason"])
        let reason = f.text("reason", required: false, max: 1000, multiline: true)
        errors += f.errors
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return reason
    }

    public func softDelete(id: String, by p: Principal) throws {
        guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
        try catalog.softDelete(id: id, by: p, allowAnonymous: allowAnonymous)
    }

    /// What changed between two versions the caller may read.
    public func diff(id: String, from a: Int?, to b: Int?, by principal: Principal?) throws -> VersionDiff {
        let (state, privileged) = try resources.visible(id: id, by: principal)
        let published = privileged ? [:] : try catalog.readerVersions(id: state.id)
        let from = try resources.readableVersion(a, of: state, by: principal, published: published)
        let to = try resources.readableVersion(b, of: state, by: principal, published: published)
        guard let diff = try catalog.diff(id: state.id, from: from, to: to) else { throw DomainError.notFound("version") }
        return diff
    }

    /// A new version with the files and metadata of version `n`.
    public func restore(id: String, version n: Int?, by p: Principal, expected: Int?) throws -> ResourceView {
        let (state, _) = try resources.visible(id: id, by: p)
        try resources.authorizeEdit(p)(state)  // before the range check: readers learn nothing about drafts
        guard let n, n >= 1, n <= state.currentVersion else { throw DomainError.notFound("version") }
        return try catalog.restoreVersion(id: state.id, number: n, by: p, expectedVersion: expected, authorize: resources.authorizeEdit(p))
    }

    public struct DownloadStats: Sendable, Encodable {
        public struct Day: Sendable, Encodable {
            public var day: String
            public var count: Int
        }
        public var resourceId: String
        public var total: Int
        public var from: String
        public var to: String
        public var timeZone: String
        public var days: [Day]
    }

    /// Downloads per day (China time) of a resource the caller may see; the last 30 days by default.
    public func downloads(id: String, by principal: Principal?, from: String?, to: String?) throws -> DownloadStats {
        let (state, _) = try resources.visible(id: id, by: principal)
        let to = to ?? DownloadCounter.day(Date())
        let from = from ?? DownloadCounter.day(Date().addingTimeInterval(-29 * 86_400))
        if from > to { throw DomainError.validation([.init(field: "from", message: "must not be after 'to'")]) }
        let days = try catalog.downloadDays(resourceId: state.id, from: from, to: to)
        return DownloadStats(
            resourceId: state.id, total: state.downloadCount, from: from, to: to, timeZone: "Asia/Shanghai (UTC+8)",
            days: days.map { .init(day: $0.day, count: $0.count) })
    }

    /// Reviewers and administrators have a review queue; others are refused.
    public static func requireReviewQueue(_ p: Principal) throws -> Principal {
        guard p.role == .reviewer || p.role == .admin else { throw DomainError.forbidden("Only reviewers and administrators have a review queue.") }
        return p
    }

    /// The review queue: reviewers see their own organization's, administrators any or all.
    public func reviewQueue(
        by p: Principal, status: ResourceStatus, organization: String?, page: Int, pageSize: Int
    ) throws -> (items: [ResourceView], total: Int) {
        _ = try Self.requireReviewQueue(p)
        var org = organization
        if p.role == .reviewer {
            if let o = org, o != p.organizationId { throw DomainError.forbidden("Reviewers see the queue of their own organization only.") }
            org = p.organizationId
        }
        return try catalog.reviewQueue(organizationId: org, status: status, page: page, pageSize: pageSize)
    }

    public func audit(by p: Principal, _ query: AuditQuery) throws -> [AuditEntry] {
        _ = try p.requireAdmin()
        return try catalog.auditEntries(query)
    }

    public func verifyAudit(by p: Principal) throws -> AuditVerification {
        _ = try p.requireAdmin()
        return try catalog.verifyAudit(progress: { _, _ in })
    }

    public struct DeletedResource: Sendable, Encodable {
        public var id: String
        public var ownerId: String
        public var organizationId: String
        public var status: String
        public var deletedAt: String
        /// Until when an administrator may undelete it (the retention period after deletion).
        public var restorableUntil: String
    }

    public func deleted(by p: Principal, limit: Int) throws -> [DeletedResource] {
        _ = try p.requireAdmin()
        return try catalog.deletedResources(limit: limit).map {
            DeletedResource(
                id: $0.id, ownerId: $0.ownerId, organizationId: $0.organizationId, status: $0.status.rawValue, deletedAt: $0.deletedAt ?? "",
                restorableUntil: Timestamp.parse($0.deletedAt ?? "").map { Timestamp.format($0.addingTimeInterval(Double(deletedRetentionDays) * 86_400)) }
                    ?? "")
        }
    }

    public func undelete(id: String, by p: Principal) throws -> ResourceView {
        _ = try p.requireAdmin()
        guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
        let state = try catalog.undelete(id: id, by: p, retentionDays: deletedRetentionDays)
        guard let view = try catalog.view(id: state.id, version: state.currentVersion) else { throw DomainError.notFound() }
        return view
    }

    public func purge(id: String, by p: Principal) throws {
        _ = try p.requireAdmin()
        guard Identifiers.isUUID(id) else { throw DomainError.notFound() }
        try catalog.purge(id: id, by: p)
    }
}

extension Library {
    public var workflow: WorkflowService {
        WorkflowService(catalog: catalog, resources: resources, allowAnonymous: config.allowAnonymous, deletedRetentionDays: config.deletedRetentionDays)
    }
}
