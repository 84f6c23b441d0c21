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
    /// Visible matches; a lower bound when `totalExact` is false.
    public var total: Int
    /// False only for relevance searches without facets that match more than
    /// `Catalog.rankWindow` resources: counting them all would cost more than the page.
    public var totalExact: Bool = true
    public var facets: SearchFacets?
}

extension Catalog {
    /// Field weights for BM25: title > keywords > knowledge points > course > authors > description.
    static let bm25 = "bm25(resource_search, 10.0, 6.0, 4.0, 3.0, 2.0, 1.0)"

    /// Relevance ranking is bounded: with more visible matches than this, BM25 ranks the newest
    /// `rankWindow` of them (by creation) and the older matches follow, newest first. A term
    /// found in thousands of resources then still answers in milliseconds, and every page is
    /// stable. With fewer matches the whole result is ranked.
    public static let rankWindow = 1_000

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
        let offset = (q.page - 1) * q.pageSize
        var result = try pool.read { db in
            var facets: SearchFacets?
            var total: Int?
            var totalExact = true
            if wantFacets { (facets, total) = try Self.facets(db, from: from, where: whereSQL, args) }
            var rows: [Row]
            if text != nil && sort == .relevance {
                // The newest matches (FTS5 walks its doclists by rowid), ranked here.
                let cursor = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT resource_search.rowid, \(Self.bm25), r.updated_at, r.id FROM \(from) WHERE \(whereSQL)
                        ORDER BY resource_search.rowid DESC LIMIT ?
                        """, arguments: StatementArguments(args + [Self.rankWindow + 1]))
                var ranked: [(rowid: Int64, score: Double, updated: String, id: String)] = []
                ranked.reserveCapacity(Self.rankWindow + 1)
                while let row = try cursor.next() { ranked.append((row[0], row[1], row[2], row[3])) }
                let overflow = ranked.count > Self.rankWindow
                let oldestInWindow = overflow ? ranked[Self.rankWindow - 1].rowid : 0
                if overflow { ranked.removeLast() }
                ranked.sort { $0.score != $1.score ? $0.score < $1.score : $0.updated != $1.updated ? $0.updated > $1.updated : $0.id > $1.id }
                var ids = offset < ranked.count ? ranked[offset..<min(ranked.count, offset + q.pageSize)].map(\.rowid) : []
                if overflow && ids.count < q.pageSize {
                    // Past the ranked window: the older matches, newest first.
                    ids += try Int64.fetchAll(
                        db,
                        sql:
                            "SELECT resource_search.rowid FROM \(from) WHERE \(whereSQL) AND resource_search.rowid < ? ORDER BY resource_search.rowid DESC LIMIT ? OFFSET ?",
                        arguments: StatementArguments(args + [oldestInWindow, q.pageSize - ids.count, max(0, offset - ranked.count)]))
                }
                if !overflow {
                    total = ranked.count
                } else if total == nil {
                    total = Self.rankWindow
                    totalExact = false
                }
                rows = []
                if !ids.isEmpty {
                    let byRowid = Dictionary(
                        try Row.fetchAll(
                            db, sql: "SELECT rowid AS zyk_rowid, * FROM resources WHERE rowid IN (\(databaseQuestionMarks(count: ids.count)))",
                            arguments: StatementArguments(ids)
                        ).map { ($0["zyk_rowid"] as Int64, $0) }, uniquingKeysWith: { a, _ in a })
                    rows = ids.compactMap { byRowid[$0] }
                }
            } else {
                let order = sort == .downloads ? "r.download_count DESC, r.updated_at DESC, r.id DESC" : "r.updated_at DESC, r.id DESC"
                if total == nil {
                    total = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(from) WHERE \(whereSQL)", arguments: StatementArguments(args)) ?? 0
                }
                rows = try Row.fetchAll(
                    db, sql: "SELECT r.* FROM \(from) WHERE \(whereSQL) ORDER BY \(order) LIMIT ? OFFSET ?",
                    arguments: StatementArguments(args + [q.pageSize, offset]))
            }
            var hits: [SearchHit] = []
            for row in rows {
                let s = try ResourceState(row: row)
                guard let v = try Self.version(db, id: s.id, number: Access.defaultVersion(viewer, s), cache: versions) else { continue }
                hits.append(SearchHit(view: ResourceView(state: s, version: v)))
            }
            return SearchResult(hits: hits, total: total ?? 0, totalExact: totalExact, facets: facets)
        }
        if let text {
            // Outside the read transaction: FTS5's own highlight() cannot mark overlapping
            // bigrams; ours uses the same normalisation, over a bounded window of each field.
            for i in result.hits.indices {
                let m = result.hits[i].view.version.metadata
                result.hits[i].titleHighlight = SearchHighlighter.highlight(m.title, patterns: text.patterns)
                result.hits[i].descriptionSnippet = SearchHighlighter.highlight(m.description, patterns: text.patterns, excerpt: 120)
            }
        }
        return result
    }

    /// Facet counts and the exact total over everything the query matches, in one pass. A
    /// resource counts once per bucket even when several of its majors share a 类 or 大类.
    static func facets(_ db: Database, from: String, where whereSQL: String, _ args: [any DatabaseValueConvertible]) throws -> (SearchFacets, Int) {
        var types: [String: Int] = [:]
        var levels: [String: Int] = [:]
        var orgs: [String: Int] = [:]
        var majors: [String: Int] = [:]
        var classes: [String: Int] = [:]
        var categories: [String: Int] = [:]
        var count = 0
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT r.resource_type, r.education_level, r.organization_id,
                       (SELECT group_concat(m.major_code) FROM resource_majors m WHERE m.resource_id = r.id)
                FROM \(from) WHERE \(whereSQL)
                """,
            arguments: StatementArguments(args))
        var seenClasses: [Substring] = []
        var seenCategories: [Substring] = []
        while let row = try rows.next() {
            count += 1
            types[row[0], default: 0] += 1
            levels[row[1], default: 0] += 1
            orgs[row[2], default: 0] += 1
            guard let codes = row[3] as String? else { continue }
            seenClasses.removeAll(keepingCapacity: true)
            seenCategories.removeAll(keepingCapacity: true)
            for code in codes.split(separator: ",") {
                majors[String(code), default: 0] += 1
                let cls = code.prefix(4)
                if !seenClasses.contains(cls) {
                    seenClasses.append(cls)
                    classes[String(cls), default: 0] += 1
                }
                let cat = code.prefix(2)
                if !seenCategories.contains(cat) {
                    seenCategories.append(cat)
                    categories[String(cat), default: 0] += 1
                }
            }
        }
        func buckets(_ d: [String: Int], limit: Int = 50) -> [FacetBucket] {
            d.map { FacetBucket(value: $0.key, count: $0.value) }.sorted { $0.count != $1.count ? $0.count > $1.count : $0.value < $1.value }
                .prefix(limit).map { $0 }
        }
        var f = SearchFacets()
        f.types = buckets(types)
        f.levels = buckets(levels)
        f.organizations = buckets(orgs)
        f.majors = buckets(majors)
        f.majorClasses = buckets(classes)
        f.majorCategories = buckets(categories)
        return (f, count)
    }
}
