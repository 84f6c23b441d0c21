import Foundation
import NIOCore
import NIOPosix
import ZiyuankuCore
import ZiyuankuStore

/// Finding resources: full-text search (Chinese, pinyin, initials) and filtered listings, with
/// facet counts, over what the caller may see. Every surface (the API, later the web pages and
/// OAI-PMH) asks here.
public struct SearchService: Sendable {
    let catalog: any ResourceSearch
    let allowAnonymous: Bool

    /// A search or listing as asked: the text, the filters whose values are typed already
    /// (`filters`: type, level, organization, status, visibility, page), and those still as the
    /// caller wrote them, where a rule decides whether they are acceptable.
    public struct Request: Sendable {
        public var text: String?
        /// Default: relevance with a text, newest without.
        public var sort: SearchSort?
        public var facets = true
        public var filters = ResourceQuery()
        /// A major (520601), class (5206) or category (52) code.
        public var major: String?
        /// A user id, or `me`.
        public var owner: String?
        /// An RFC 3339 time.
        public var updatedSince: String?
        public init() {}
    }

    /// The answer, with what was understood of the request.
    public struct Answer: Sendable {
        public var result: SearchResult
        public var sort: SearchSort
        public var query: SearchQuery?
        public var page: Int
        public var pageSize: Int
    }

    /// Threads for searches and listings, one per core, for the life of the process: a search
    /// that counts facets over 100,000 resources must not hold up the Swift concurrency pool
    /// (every other request) while it runs, nor the upload writes and fsyncs on NIO's pool.
    static let threads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount))
        pool.start()
        return pool
    }()

    /// Searches for `viewer` (nil: anonymous). `decodingErrors` are the problems a surface
    /// already found in the request (unknown parameters, values of the wrong kind): all problems
    /// are reported together, as one `badRequest` naming every field.
    public func search(_ r: Request, by viewer: Principal?, decodingErrors: [FieldError] = []) async throws -> Answer {
        if viewer == nil && !allowAnonymous { throw DomainError.unauthorized }
        var errors = decodingErrors
        var query = r.filters
        query.majorCode = nil
        query.ownerId = nil
        query.updatedSince = nil
        let text = r.text.map { SearchQuery($0) }
        let sort = r.sort ?? (text == nil ? .newest : .relevance)
        if sort == .relevance && text == nil { errors.append(.init(field: "sort", message: "relevance needs a search text (q)")) }
        if let major = r.major {
            if MetadataValidator.isMajorCodeOrPrefix(major) {
                query.majorCode = major
            } else {
                errors.append(.init(field: "major", message: "must be a major code or its 2- or 4-digit 大类/类 prefix"))
            }
        }
        if let owner = r.owner {
            if owner == "me" {
                if let viewer { query.ownerId = viewer.userId } else { errors.append(.init(field: "owner", message: "'me' needs a token")) }
            } else if Identifiers.isUUID(owner) {
                query.ownerId = owner
            } else {
                errors.append(.init(field: "owner", message: "must be a user id or 'me'"))
            }
        }
        if let since = r.updatedSince {
            if let d = Timestamp.parse(since) {
                query.updatedSince = Timestamp.format(d)
            } else {
                errors.append(.init(field: "updatedSince", message: "must be an RFC 3339 time such as 2026-09-01T00:00:00Z"))
            }
        }
        if !errors.isEmpty { throw DomainError(.badRequest, "Invalid query: \(errors.map(\.field).joined(separator: ", ")).", fields: errors) }
        let (catalog, allowAnonymous, frozen, facets) = (self.catalog, self.allowAnonymous, query, r.facets)
        let result = try await Self.threads.runIfActive {
            try catalog.searchResources(frozen, text: text, sort: sort, viewer: viewer, allowAnonymous: allowAnonymous, facets: facets)
        }
        return Answer(result: result, sort: sort, query: text, page: query.page, pageSize: query.pageSize)
    }
}

extension Library {
    public var search: SearchService { SearchService(catalog: catalog, allowAnonymous: config.allowAnonymous) }
}
