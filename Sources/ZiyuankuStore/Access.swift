import ZiyuankuCore

/// The visibility and permission rules of PRODUCT.md §1 and §4, in one place. `ResourceQuery`
/// applies the same rules inside SQL; the authorization-matrix test checks that both agree.
public enum Access {
    /// Sees every version of the resource, in any status: admins, the owner, and reviewers of
    /// the resource's organization.
    public static func isPrivileged(_ p: Principal?, _ r: ResourceState) -> Bool {
        guard let p else { return false }
        return p.role == .admin || p.userId == r.ownerId || (p.role == .reviewer && p.organizationId == r.organizationId)
    }

    /// Sees the published version as a reader would.
    public static func canReadPublished(_ p: Principal?, _ r: ResourceState, allowAnonymous: Bool) -> Bool {
        guard r.status == .published, r.publishedVersion != nil else { return false }
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

    /// Versions a caller may read: all for privileged callers, else those up to the published one.
    public static func canReadVersion(_ p: Principal?, _ r: ResourceState, _ n: Int, allowAnonymous: Bool) -> Bool {
        if isPrivileged(p, r) { return n >= 1 && n <= r.currentVersion }
        guard canReadPublished(p, r, allowAnonymous: allowAnonymous), let pub = r.publishedVersion else { return false }
        return n >= 1 && n <= pub
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
