import Foundation
import GRDB
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore
import ZiyuankuTestSupport

/// Relevance ranking is bounded to the newest `Catalog.rankWindow` matches; these tests pin
/// what that promises: every match on exactly one page, the window ranked by BM25, the older
/// matches after it newest first, and totals that are exact with facets and a lower bound
/// (flagged) without.
@Suite struct RankWindowTests {
    @Test func pagesCoverEveryMatchOnceAcrossTheWindow() async throws {
        let env = try TestEnv()
        let catalog = env.services.catalog
        let owner = env.principals["owner"]!
        let blob = try await SampleFiles.store(Fixtures.pdf, in: env.services.blobs)
        let file = NewFile(name: "窗口.pdf", sha256: blob.sha256, size: blob.size, mediaType: "application/pdf", role: .primary)
        func metadata(_ title: String, _ description: String) throws -> ResourceMetadata {
            try SampleMetadata.record(
                SampleMetadata.object(title: title, description: description, keywords: ["实训"], resourceType: .video), catalog: catalog)
        }
        let extra = 137
        let n = Catalog.rankWindow + extra
        // The oldest resource has the term in its title: outside the window it is not ranked
        // first, which is the documented price of bounded ranking.
        var items: [(owner: Principal, metadata: ResourceMetadata, files: [NewFile])] = [(owner, try metadata("窗口标题", "最早的一条"), [file])]
        for i in 1..<n {
            // Every seventh one has the term in its title, the rest only in the description.
            let m = i % 7 == 0 ? try metadata("窗口实训 \(i)", "第\(i)条") : try metadata("实训资源 \(i)", "说明里提到窗口 \(i)")
            items.append((owner, m, [file]))
        }
        let ids = try catalog.createResources(items, changeNote: "", publish: true)
        // A private draft also matches; nobody anonymous may see or count it.
        _ = try catalog.createResources([(owner, try metadata("窗口草稿", "不公开"), [file])], changeNote: "", publish: false)

        var q = ResourceQuery()
        q.pageSize = 100
        var seen: [String] = []
        var totals: [(Int, Bool)] = []
        for page in 1...((n + 99) / 100 + 1) {
            q.page = page
            let r = try catalog.searchResources(q, text: SearchQuery("窗口"), sort: .relevance, viewer: nil, allowAnonymous: true, facets: false)
            seen += r.hits.map(\.view.state.id)
            totals.append((r.total, r.totalExact))
            if page == 1 {
                // Title matches inside the window come first (BM25 weights the title 10×).
                let titled = r.hits.prefix(20).map { $0.view.version.metadata.title }
                #expect(titled.allSatisfy { $0.hasPrefix("窗口实训") }, "first page: \(titled.prefix(5))")
            }
        }
        #expect(seen.count == n, "pages returned \(seen.count) hits for \(n) visible matches")
        #expect(Set(seen) == Set(ids), "every visible match exactly once")
        #expect(totals.allSatisfy { $0 == (Catalog.rankWindow, false) }, "without facets: lower bound, flagged: \(totals.prefix(2))")
        // After the window: the older matches, newest first (ids are UUIDv7, so creation order).
        let tail = Array(seen.suffix(extra))
        #expect(tail == Array(ids.prefix(extra).reversed()), "the matches older than the window follow newest first")

        q.page = 1
        let faceted = try catalog.searchResources(q, text: SearchQuery("窗口"), sort: .relevance, viewer: nil, allowAnonymous: true, facets: true)
        #expect(faceted.total == n && faceted.totalExact)
        #expect(faceted.facets?.types.first?.count == n)
        #expect(faceted.facets?.majorCategories.first?.count == n)
        // Fewer matches than the window: exact total without facets, and the whole set ranked.
        let few = try catalog.searchResources(q, text: SearchQuery("窗口标题"), sort: .relevance, viewer: nil, allowAnonymous: true, facets: false)
        #expect(few.total == 1 && few.totalExact && few.hits.first?.view.state.id == ids[0])
    }

    /// A resource whose majors share a 类 and a 大类 counts once in those buckets.
    @Test func facetsCountAResourceOncePerBucket() async throws {
        let env = try TestEnv()
        try await env.test { client in
            _ = try await client.createResource(env, metadata: Fixtures.metadata(["title": "双专业资源", "majorCodes": ["520601", "520201"]]))
            let r = try await client.execute(uri: "/v1/resources?q=\(percentEncoded("双专业"))", method: .get, headers: env.auth("owner"))
            let facets = r.json["facets"] as? [String: Any]
            func counts(_ key: String) -> [String: Int] {
                Dictionary(uniqueKeysWithValues: ((facets?[key] as? [[String: Any]]) ?? []).map { ($0["value"] as! String, $0["count"] as! Int) })
            }
            #expect(counts("majors") == ["520601": 1, "520201": 1])
            #expect(counts("majorCategories") == ["52": 1])
            #expect(r.json["totalExact"] as? Bool == true)
        }
    }
}

/// The index stores tokens: a catalog indexed by another tokenizer version is rebuilt on open.
@Suite struct TokenizerVersionTests {
    @Test func anOutdatedIndexIsRebuiltWhenTheCatalogOpens() async throws {
        let env = try TestEnv()
        try await env.test { client in
            _ = try await client.createResource(env, metadata: Fixtures.metadata(["title": "会计实务"]))
        }
        func found() throws -> Int {
            try Catalog.open(root: env.services.root).searchResources(
                ResourceQuery(), text: SearchQuery("kuaiji"), sort: .relevance, viewer: env.principals["admin"], allowAnonymous: false, facets: false
            ).total
        }
        #expect(try found() == 1)
        // What an index from tokenizer version 1 looks like to this build: no pair tokens, and
        // the version recorded as 1.
        var config = Configuration()
        config.prepareDatabase { db in db.add(tokenizer: ZykTokenizer.self) }
        let raw = try DatabaseQueue(path: env.services.root.catalogPath, configuration: config)
        try await raw.write { db in
            try db.execute(sql: "DELETE FROM resource_search")
            try db.execute(sql: "UPDATE settings SET value = '1' WHERE key = 'search.tokenizer'")
        }
        try raw.close()
        #expect(try found() == 1, "reopening rebuilt the index")
        let version = try await DatabaseQueue(path: env.services.root.catalogPath, configuration: config).read {
            try String.fetchOne($0, sql: "SELECT value FROM settings WHERE key = 'search.tokenizer'")
        }
        #expect(version == String(SearchText.version))
    }
}
