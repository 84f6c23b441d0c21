import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// The wire form of a resource as one caller sees it: the metadata of the version shown,
/// its files, and the resource's state.
struct ResourceDTO: Encodable {
    let view: ResourceView
    let privileged: Bool

    enum Keys: String, CodingKey {
        case id, organizationId, ownerId, status, version, latestVersion, publishedVersion, hasUnpublishedChanges
        case files, createdAt, updatedAt, publishedAt, versionCreatedAt, changeNote
    }

    func encode(to encoder: any Encoder) throws {
        try view.version.metadata.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        let s = view.state
        try c.encode(s.id, forKey: .id)
        try c.encode(s.organizationId, forKey: .organizationId)
        try c.encode(s.ownerId, forKey: .ownerId)
        try c.encode(s.status, forKey: .status)
        try c.encode(view.version.number, forKey: .version)
        try c.encode(s.publishedVersion, forKey: .publishedVersion)
        if privileged {
            try c.encode(s.currentVersion, forKey: .latestVersion)
            try c.encode(s.publishedVersion.map { $0 < s.currentVersion } ?? false, forKey: .hasUnpublishedChanges)
        }
        try c.encode(view.version.files, forKey: .files)
        try c.encode(s.createdAt, forKey: .createdAt)
        try c.encode(s.updatedAt, forKey: .updatedAt)
        try c.encode(s.publishedAt, forKey: .publishedAt)
        try c.encode(view.version.createdAt, forKey: .versionCreatedAt)
        try c.encode(view.version.changeNote, forKey: .changeNote)
    }
}

/// A listed or found resource: the resource, plus highlighted title and description excerpt
/// (HTML-escaped, matches in `<mark>`) when the listing is a text search.
struct ResourceItemDTO: Encodable {
    let resource: ResourceDTO
    let titleHighlight: String?
    let descriptionSnippet: String?

    enum Keys: String, CodingKey { case highlight }
    enum HighlightKeys: String, CodingKey { case title, description }

    func encode(to encoder: any Encoder) throws {
        try resource.encode(to: encoder)
        guard titleHighlight != nil || descriptionSnippet != nil else { return }
        var c = encoder.container(keyedBy: Keys.self)
        var h = c.nestedContainer(keyedBy: HighlightKeys.self, forKey: .highlight)
        try h.encode(titleHighlight, forKey: .title)
        try h.encode(descriptionSnippet, forKey: .description)
    }
}

struct ResourcePage: Encodable {
    var items: [ResourceItemDTO]
    var total: Int
    var page: Int
    var pageSize: Int
    var sort: String
    /// The search terms as understood (absent for plain listings).
    var query: [String]?
    var facets: SearchFacets?
}

struct VersionDTO: Encodable {
    let resourceId: String
    let version: ResourceVersion

    enum Keys: String, CodingKey { case resourceId, number, metadata, files, authorId, changeNote, createdAt }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(resourceId, forKey: .resourceId)
        try c.encode(version.number, forKey: .number)
        try c.encode(version.metadata, forKey: .metadata)
        try c.encode(version.files, forKey: .files)
        try c.encode(version.authorId, forKey: .authorId)
        try c.encode(version.changeNote, forKey: .changeNote)
        try c.encode(version.createdAt, forKey: .createdAt)
    }
}
