import Foundation
import GRDB
import ZiyuankuCore

public enum SearchSort: String, Sendable, CaseIterable {
    case relevance, newest, downloads
}

public struct SearchHit: Sendable {
    public var view: ResourceView
    /// HTML-escaped title with `<mark>` around matches (only for text searches).
    public var titleHighlight: String?
    /// HTML-escaped excerpt of the description with `<mark>` around matches.
    public var descriptionSnippet: String?
}

public struct FacetBucket: Sendable, Codable, Equatable {
    public var value: String
    public var count: Int
}

public struct SearchFacets: Sendable, Codable, Equatable {
    public var majors: [FacetBucket] = []
    public var majorClasses: [FacetBucket] = []
    public var majorCategories: [FacetBucket] = []
    public var types: [FacetBucket] = []
    public var levels: [FacetBucket] = []
    public var organizations: [FacetBucket] = []
}

public struct SearchResult: Sendable {
    public var hits: [SearchHit]
    public var total: Int
    public var facets: SearchFacets?
}

extension Catalog {
    /// Field weights for BM25: title > keywords > knowledge points > course > authors > description.
    static let bm25 = "bm25(resource_search, 10.0, 6.0, 4.0, 3.0, 2.0, 1.0)"

    /// Searches (or lists, when `text` is nil) what the viewer may see.
    public func searchResources(
        _ q: ResourceQuery, text: SearchQuery?, sort: SearchSort, viewer: Principal?, allowAnonymous: Bool, facets wantFacets: Bool
    ) throws -> SearchResult {
        var (whereSQL, args) = Self.whereClause(q, viewer: viewer, allowAnonymous: allowAnonymous)
        var from = "resources r"
        if let text {
            guard let expression = text.expression else { return SearchResult(hits: [], total: 0, facets: wantFacets ? SearchFacets() : nil) }
            from = "resource_search JOIN resources r ON r.rowid = resource_search.rowid"
            whereSQL = "resource_search MATCH ? AND " + whereSQL
            args.insert(expression, at: 0)
        }
        let order: String
        switch sort {
        case .relevance where text != nil: order = "\(Self.bm25), r.updated_at DESC, r.id DESC"
        case .downloads: order = "r.download_count DESC, r.updated_at DESC, r.id DESC"
        default: order = "r.updated_at DESC, r.id DESC"
        }
        return try pool.read { db in
            var facets: SearchFacets?
            let total: Int
            if wantFacets {
                var f = SearchFacets()
                var types: [String: Int] = [:]
                var levels: [String: Int] = [:]
                var orgs: [String: Int] = [:]
                var count = 0
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT r.resource_type, r.education_level, r.organization_id FROM \(from) WHERE \(whereSQL)",
                    arguments: StatementArguments(args))
                while let row = try rows.next() {
                    count += 1
                    types[row[0], default: 0] += 1
                    levels[row[1], default: 0] += 1
                    orgs[row[2], default: 0] += 1
                }
                total = count
                var majors: [String: Int] = [:]
                let majorRows = try Row.fetchCursor(
                    db,
                    sql: "SELECT m.major_code, count(*) FROM \(from) JOIN resource_majors m ON m.resource_id = r.id WHERE \(whereSQL) GROUP BY m.major_code",
                    arguments: StatementArguments(args))
                while let row = try majorRows.next() { majors[row[0]] = row[1] }
                // A resource with two majors of the same class counts once per class.
                var classes: [String: Int] = [:]
                var categories: [String: Int] = [:]
                let prefixRows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT substr(m.major_code, 1, 4), substr(m.major_code, 1, 2), count(DISTINCT r.id)
                        FROM \(from) JOIN resource_majors m ON m.resource_id = r.id WHERE \(whereSQL)
                        GROUP BY substr(m.major_code, 1, 4)
                        """, arguments: StatementArguments(args))
                while let row = try prefixRows.next() {
                    classes[row[0]] = row[2]
                    categories[row[1], default: 0] += row[2] as Int
                }
                func buckets(_ d: [String: Int], limit: Int = 50) -> [FacetBucket] {
                    d.map { FacetBucket(value: $0.key, count: $0.value) }.sorted { $0.count != $1.count ? $0.count > $1.count : $0.value < $1.value }
                        .prefix(limit).map { $0 }
                }
                f.types = buckets(types)
                f.levels = buckets(levels)
                f.organizations = buckets(orgs)
                f.majors = buckets(majors)
                f.majorClasses = buckets(classes)
                f.majorCategories = buckets(categories)
                facets = f
            } else {
                total = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(from) WHERE \(whereSQL)", arguments: StatementArguments(args)) ?? 0
            }
            let rows = try Row.fetchAll(
                db, sql: "SELECT r.* FROM \(from) WHERE \(whereSQL) ORDER BY \(order) LIMIT ? OFFSET ?",
                arguments: StatementArguments(args + [q.pageSize, (q.page - 1) * q.pageSize]))
            var hits: [SearchHit] = []
            for row in rows {
                let s = ResourceState(row: row)
                guard let v = try Self.version(db, id: s.id, number: Access.defaultVersion(viewer, s), cache: versions) else { continue }
                var hit = SearchHit(view: ResourceView(state: s, version: v))
                if let text {
                    // FTS5's own highlight() cannot mark overlapping bigrams; ours uses the same normalisation.
                    hit.titleHighlight = SearchHighlighter.highlight(v.metadata.title, patterns: text.patterns)
                    hit.descriptionSnippet = SearchHighlighter.highlight(v.metadata.description, patterns: text.patterns, excerpt: 120)
                }
                hits.append(hit)
            }
            return SearchResult(hits: hits, total: total, facets: facets)
        }
    }

}
