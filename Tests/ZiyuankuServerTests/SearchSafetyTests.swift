import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore
import ZiyuankuTestSupport

@Suite struct SearchSafetyTests {
    /// A search by each persona never returns, counts or facets a resource it may not see.
    @Test func searchRespectsVisibility() async throws {
        let env = try TestEnv()
        let blob = try await SampleFiles.store(Fixtures.video(2048), in: env.services.blobs)
        var ids: [(AuthorizationMatrixTests.Config, String)] = []
        for c in AuthorizationMatrixTests.configs { ids.append((c, try AuthorizationMatrixTests.makeResource(env, c, blob: blob))) }
        let resources = ids
        let violations = try await Violations()
        try await env.test { client in
            for p in AuthorizationMatrixTests.personas {
                let who = p ?? "anonymous"
                let expected = Set(resources.filter { AuthorizationMatrixTests.sees(p, $0.0) }.map(\.1))
                for q in ["矩阵", "授权矩阵", "jz", "juzhen", "矩", "測試"] {
                    let r = try await client.execute(uri: "/v1/resources?pageSize=100&q=\(percentEncoded(q))", method: .get, headers: env.auth(p))
                    let got = Set(((r.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
                    await violations.check(got == expected, "\(who) q=\(q): got \(got.count), expected \(expected.count)")
                    await violations.check(r.json["total"] as? Int == expected.count, "\(who) q=\(q): total \(r.json["total"] ?? "nil")")
                    let facets = r.json["facets"] as? [String: Any]
                    for key in ["types", "levels", "organizations", "majors", "majorClasses", "majorCategories"] {
                        let sum = ((facets?[key] as? [[String: Any]]) ?? []).compactMap { $0["count"] as? Int }.reduce(0, +)
                        await violations.check(sum == expected.count, "\(who) q=\(q): facet \(key) sums to \(sum), expected \(expected.count)")
                    }
                }
            }
        }
        let found = await violations.list
        #expect(found.isEmpty, "\(found.count) violations, e.g. \(found.prefix(10))")
    }

    /// R16: 100,000 generated hostile queries, 0 server errors, every answer well-formed.
    @Test func fuzzedQueriesNeverFail() async throws {
        let env = try TestEnv()
        try await env.test { client in
            for (i, title) in ["康复治疗技术", "护理学基础", "藥學概論", "PLC控制", "Python数据分析", "3D打印实训", "幼儿保育 AI"].enumerated() {
                _ = try await client.createResource(
                    env, metadata: Fixtures.metadata(["title": title, "description": "第\(i)个 \"引号\" NEAR(a b) * : -x 的描述"]))
            }
        }
        let seed: UInt64 = 20_261_130
        let pools: [[String]] = [
            ["\"", "*", ":", "(", ")", "^", "-", "+", "NEAR(", "NEAR", "AND", "OR", "NOT", "{", "}", "'", "\\", "%", "&", "=", "?", "#", ";", ","],
            ["康", "复", "治", "疗", "护", "理", "藥", "學", "实", "训", "，", "。", "、", "“", "”", "　"],
            ["kfzl", "kangfu", "kang", "zh", "a", "plc", "ＰＬＣ", "Ｐ", "3d", "ai", "x"],
            ["\u{0}", "\u{1}", "\u{7F}", "\u{202E}", "\u{FEFF}", "\u{E002}", "\u{E003}", "\u{E000}", "😀", "𠀀", "é", "ß", "İ"],
            [" ", "  ", "\t", "\n"],
        ]
        let rawEncodings = ["%FF", "%C3%28", "%", "%G1", "%E5%BA", "+", "%00", "%20"]
        let failures = try await Violations()
        let total = 100_000
        // Several clients in parallel, each with its own generator.
        try await env.test { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    var local = SplitMix(seed: seed &+ UInt64(worker) &* 7919)
                    group.addTask {
                        for n in 0..<(total / 4) {
                            var uri: String
                            if n % 50 == 0 {
                                // 10 KB strings, sometimes of pure syntax.
                                let unit = pools[Int(local.next() % 3)].randomElement(using: &local)!
                                uri = "/v1/resources?q=" + percentEncoded(String(repeating: unit + " ", count: 10_240 / max(1, unit.utf8.count + 1)))
                            } else if n % 17 == 0 {
                                uri = "/v1/resources?q=" + (0..<Int(local.next() % 6 + 1)).map { _ in rawEncodings.randomElement(using: &local)! }.joined()
                            } else {
                                var q = ""
                                for _ in 0..<Int(local.next() % 12 + 1) {
                                    q += pools[Int(local.next() % UInt64(pools.count))].randomElement(using: &local)!
                                }
                                uri = "/v1/resources?q=" + percentEncoded(q)
                                if n % 3 == 0 { uri += "&sort=" + ["relevance", "newest", "downloads"].randomElement(using: &local)! }
                                if n % 5 == 0 { uri += "&facets=false" }
                            }
                            let r = try await client.execute(uri: uri, method: .get, headers: [:])
                            let code = Int(r.status.code)
                            if code >= 500 || (code == 200 && r.json["items"] == nil) || (code >= 400 && !r.isProblem) {
                                await failures.check(false, "\(code) for \(uri.prefix(200)): \(String(buffer: r.body).prefix(200))")
                            } else {
                                await failures.check(true, "")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let found = await failures.list
        let count = await failures.count
        print("R16: \(count) fuzzed queries, \(found.count) server errors")
        #expect(count == total)
        #expect(found.isEmpty, "\(found.count) failures, e.g. \(found.prefix(5))")
    }
}

/// A small deterministic generator, so a failing fuzz run can be replayed.
struct SplitMix: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
