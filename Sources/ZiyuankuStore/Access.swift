import ZiyuankuCore

/// The visibility and permission rules of docs/product.md#visibility-and-access, in one place. `ResourceQuery`
/// applies the same rules inside SQL; the authorization-matrix test checks that both agree.
public enum Access {
    /// Sees every version of the resource, in any status: admins, the owner, and reviewers of
    /// the resource's organization.
    public static func isPrivileged(_ p: Principal?, _ r: ResourceState) -> Bool {
        guard let p else { return false }
        return p.role == .admin || p.userId == r.ownerId || (p.role == .reviewer && p.organizationId == r.organizationId)
    }

    /// Sees the published version as a reader would.
    /// A resource is live for readers while it has a published version: a newer version being
    /// drafted or reviewed does not hide it; withdrawing clears the published version.
    public static func canReadPublished(_ p: Principal?, _ r: ResourceState, allowAnonymous: Bool) -> Bool {
        guard r.publishedVersion != nil else { return false }
        switch r.visibility {
        case .public: return p != nil || allowAnonymous
        case .organization: return p?.organizationId == r.organizationId
        case .private: return false
        }
    }

    public static func canSee(_ p: Principal?, _ r: ResourceState, allowAnonymous: Bool) -> Bool {
        isPrivileged(p, r) || canReadPublished(p, r, allowAnonymous: allowAnonymous)
    }

    /// The version a caller sees by default: the newest for privileged callers, else the published one.
    public static func defaultVersion(_ p: Principal?, _ r: ResourceState) -> Int {
        isPrivileged(p, r) ? r.currentVersion : (r.publishedVersion ?? r.currentVersion)
    }

    /// Versions a caller may read: all for privileged callers; for readers of a live resource,
    /// the versions published and not withdrawn since (`published`, from the catalog).
    /// A reader reads an older published version only under the stricter of the visibility it
    /// was published with and the current one: making a resource public later does not open
    /// what was published privately.
    public static func canReadVersion(_ p: Principal?, _ r: ResourceState, _ n: Int, published: [Int: Visibility], allowAnonymous: Bool) -> Bool {
        if isPrivileged(p, r) { return n >= 1 && n <= r.currentVersion }
        guard let snapshot = published[n] else { return false }
        var narrowed = r
        narrowed.visibility = stricter(snapshot, r.visibility)
        return canReadPublished(p, narrowed, allowAnonymous: allowAnonymous)
    }

    /// The versions `canReadVersion` allows a reader, for listings.
    public static func readableVersions(_ p: Principal?, _ r: ResourceState, published: [Int: Visibility], allowAnonymous: Bool) -> Set<Int> {
        Set(published.keys.filter { canReadVersion(p, r, $0, published: published, allowAnonymous: allowAnonymous) })
    }

    public static func stricter(_ a: Visibility, _ b: Visibility) -> Visibility {
        func rank(_ v: Visibility) -> Int {
            switch v {
            case .public: 0
            case .organization: 1
            case .private: 2
            }
        }
        return rank(a) >= rank(b) ? a : b
    }

    /// Edit metadata and files: the owner (while they may still author) and admins.
    public static func canEdit(_ p: Principal?, _ r: ResourceState) -> Bool {
        guard let p else { return false }
        return p.role == .admin || (p.userId == r.ownerId && p.role.canAuthor)
    }

    /// Publish: reviewers of the same organization and admins.
    public static func canPublish(_ p: Principal?, _ r: ResourceState) -> Bool {
        guard let p else { return false }
        return p.role == .admin || (p.role == .reviewer && p.organizationId == r.organizationId)
    }
}

/// The review workflow's actions (docs/product.md#review-workflow).
public enum WorkflowAction: String, Sendable, CaseIterable, Codable {
    /// Owner (or admin) asks for review: draft, rejected or withdrawn → inReview.
    case submit
    /// Owner (or admin) takes it back: inReview → draft.
    case recall
    /// Reviewer of the organization or admin: inReview → published.
    case approve
    /// Reviewer of the organization or admin, with a reason: inReview → rejected.
    case reject
    /// Owner, reviewer of the organization or admin: the published version leaves (→ withdrawn).
    case withdraw
    /// Reviewer of the organization or admin publishes without the queue (or re-publishes a
    /// withdrawn resource): draft, inReview, rejected or withdrawn → published.
    case publish
}

extension Access {
    /// What the resource's state allows, whoever asks.
    public static func actions(from r: ResourceState) -> [WorkflowAction] {
        var out: [WorkflowAction]
        switch r.status {
        case .draft, .rejected, .withdrawn: out = [.submit, .publish]
        case .inReview: out = [.recall, .approve, .reject, .publish]
        case .published: out = []
        }
        if r.publishedVersion != nil { out.append(.withdraw) }
        return out
    }

    /// Whether `p` may take the action on this resource at all (its state aside).
    public static func may(_ p: Principal?, _ action: WorkflowAction, _ r: ResourceState) -> Bool {
        switch action {
        case .submit, .recall: canEdit(p, r)
        case .approve, .reject, .publish: canPublish(p, r)
        case .withdraw: canEdit(p, r) || canPublish(p, r)
        }
    }

    /// The actions `p` may take now (shown with a 409 and on the resource).
    public static func allowedActions(_ p: Principal?, _ r: ResourceState) -> [WorkflowAction] {
        actions(from: r).filter { may(p, $0, r) }
    }
}
