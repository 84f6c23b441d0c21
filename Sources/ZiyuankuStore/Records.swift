import Foundation
import GRDB
import ZiyuankuCore

public struct Organization: Codable, Sendable, Equatable, FetchableRecord {
    public var id: String
    public var name: String
    public var kind: OrganizationKind
    public var createdAt: String

    public init(row: Row) throws {
        id = row["id"]
        name = row["name"]
        kind = try row.decode(OrganizationKind.self, "kind")
        createdAt = row["created_at"]
    }
    public init(id: String, name: String, kind: OrganizationKind, createdAt: String) {
        self.id = id
        self.name = name
        self.kind = kind
        self.createdAt = createdAt
    }
}

public struct User: Codable, Sendable, Equatable, FetchableRecord {
    public var id: String
    public var organizationId: String
    public var name: String
    public var role: Role
    public var disabled: Bool
    public var createdAt: String

    public init(row: Row) throws {
        id = row["id"]
        organizationId = row["organization_id"]
        name = row["name"]
        role = try row.decode(Role.self, "role")
        disabled = row["disabled"]
        createdAt = row["created_at"]
    }
}

public struct TokenInfo: Codable, Sendable, Equatable, FetchableRecord {
    public var id: String
    public var userId: String
    public var label: String
    public var createdAt: String
    public var expiresAt: String?
    public var revokedAt: String?

    public init(row: Row) throws {
        id = row["id"]
        userId = row["user_id"]
        label = row["label"]
        createdAt = row["created_at"]
        expiresAt = row["expires_at"]
        revokedAt = row["revoked_at"]
    }
}

/// A token issued just now: the only moment the secret exists outside the client.
public struct IssuedToken: Sendable {
    public var info: TokenInfo
    public var secret: String
}

/// Who is asking. Anonymous callers have no user.
public struct Principal: Sendable, Equatable {
    public var userId: String
    public var name: String
    public var role: Role
    public var organizationId: String
    public var tokenId: String

    public init(userId: String, name: String, role: Role, organizationId: String, tokenId: String) {
        self.userId = userId
        self.name = name
        self.role = role
        self.organizationId = organizationId
        self.tokenId = tokenId
    }
}

public struct Major: Codable, Sendable, Equatable, FetchableRecord {
    public var code: String
    public var educationLevel: EducationLevel
    public var name: String
    public var itemLevel: String
    public var parentCode: String?

    public init(row: Row) throws {
        code = row["code"]
        educationLevel = try row.decode(EducationLevel.self, "education_level")
        name = row["name"]
        itemLevel = row["item_level"]
        parentCode = row["parent_code"]
    }
    public init(code: String, educationLevel: EducationLevel, name: String, itemLevel: String, parentCode: String?) {
        self.code = code
        self.educationLevel = educationLevel
        self.name = name
        self.itemLevel = itemLevel
        self.parentCode = parentCode
    }
}

/// One file of a version's manifest.
public struct VersionFile: Codable, Sendable, Equatable {
    public var name: String
    public var size: Int64
    public var mediaType: String
    public var sha256: String
    public var role: FileRole

    public init(name: String, size: Int64, mediaType: String, sha256: String, role: FileRole) {
        self.name = name
        self.size = size
        self.mediaType = mediaType
        self.sha256 = sha256
        self.role = role
    }
}

/// The resource row: state that is not versioned.
public struct ResourceState: Sendable, Equatable {
    public var id: String
    public var ownerId: String
    public var organizationId: String
    public var status: ResourceStatus
    public var currentVersion: Int
    public var publishedVersion: Int?
    public var visibility: Visibility
    public var createdAt: String
    public var updatedAt: String
    public var publishedAt: String?
    /// The review workflow: who submitted the newest version and when, and the last review.
    public var submittedAt: String?
    public var submittedBy: String?
    public var reviewedAt: String?
    public var reviewedBy: String?
    /// Why the newest version was rejected (only while `status` is rejected).
    public var reviewReason: String?
    /// Set on a soft-deleted resource (only admins see those).
    public var deletedAt: String?
    /// Downloads counted so far (deduplicated, see DownloadCounter).
    public var downloadCount: Int

    init(row: Row) throws {
        id = row["id"]
        ownerId = row["owner_id"]
        organizationId = row["organization_id"]
        status = try row.decode(ResourceStatus.self, "status")
        currentVersion = row["current_version"]
        publishedVersion = row["published_version"]
        visibility = try row.decode(Visibility.self, "visibility")
        createdAt = row["created_at"]
        updatedAt = row["updated_at"]
        publishedAt = row["published_at"]
        submittedAt = row["submitted_at"]
        submittedBy = row["submitted_by"]
        reviewedAt = row["reviewed_at"]
        reviewedBy = row["reviewed_by"]
        reviewReason = row["review_reason"]
        deletedAt = row["deleted_at"]
        downloadCount = row["download_count"] ?? 0
    }
}

/// One immutable version with its manifest.
public struct ResourceVersion: Sendable, Equatable {
    public var number: Int
    public var metadata: ResourceMetadata
    public var files: [VersionFile]
    public var authorId: String
    public var changeNote: String
    public var createdAt: String
}
