import Testing

@testable import ZiyuankuCore

@Suite struct SearchTextTests {
    func plain(_ s: String, _ mode: SearchText.Mode = .document) -> [String] {
        SearchText.tokens(s, mode: mode).filter { !$0.colocated }.map(\.token)
    }

    @Test func chineseRunsBecomeBigramsWithATrailingCharacter() {
        #expect(plain("康复治疗") == ["康复", "复治", "治疗", "疗"])
        #expect(plain("康复治疗", .query) == ["康复", "复治", "治疗"])
        #expect(plain("护", .query) == ["护"])
        // Inside a query phrase a run keeps its trailing character when more follows, so
        // positions line up with the document's.
        #expect(plain("西门子 PLC", .query) == ["西门", "门子", "子", "plc"])
        #expect(plain("康复 治疗", .query) == ["康复", "复", "治疗"])
        #expect(plain("AB，BC") == ["ab", "bc"])
        #expect(plain("甲乙，乙丙") == ["甲乙", "乙", "乙丙", "丙"])
    }

    @Test func normalisation() {
        #expect(plain("藥學") == plain("药学"))
        #expect(plain("ＰＬＣ控制") == ["plc", "控制", "制"])
        #expect(plain("Python3 与 3D打印") == ["python3", "与", "3d", "打印", "印"])
        #expect(plain("Ｃａｆé") == ["café"])
    }

    @Test func pinyinRidesAlongAsColocatedTokens() {
        let t = SearchText.tokens("康复", mode: .document)
        #expect(t.map(\.token) == ["康复", "~kang", "^k", "复", "~fu", "^f"])
        #expect(t.map(\.colocated) == [false, true, true, false, true, true])
    }

    @Test func queriesAreBuiltOnlyFromQuotedPhrases() {
        #expect(SearchQuery("康复").expression == "\"康复\"")
        #expect(SearchQuery("护").expression == "\"护\"*")
        #expect(SearchQuery("kfzl").expression == "(\"kfzl\"* OR \"\u{E003}k \u{E003}f \u{E003}z \u{E003}l\")")
        #expect(SearchQuery("kangfu").expression == "(\"kangfu\"* OR \"\u{E002}kang \u{E002}fu\")")
        #expect(SearchQuery("kangf").expression == "(\"kangf\"* OR \"\u{E002}kang \u{E002}f\"*)")
        #expect(SearchQuery("").expression == nil)
        #expect(SearchQuery("\"  *  :  \"").expression == nil)
        #expect(SearchQuery("NEAR(a b) AND OR NOT").expression?.contains("NEAR(") == false)
        #expect(SearchQuery("\"康复 治疗\"").expression == "(\"康复 治疗\" OR \"康复治疗\")")
        #expect(SearchQuery("护理 -儿科").expression == "(\"护理\") NOT \"儿科\"")
        let hostile = SearchQuery("a\"b c:d *e \u{0} x\"\"y")
        #expect(hostile.expression != nil)
        #expect(SearchQuery(String(repeating: "康复 ", count: 5000)).terms.count == SearchQuery.maxTerms)
    }

    @Test func pinyinSegmentation() {
        #expect(SearchQuery.pinyinSyllables("kangfuzhiliao")?.0 == ["kang", "fu", "zhi", "liao"])
        #expect(SearchQuery.pinyinSyllables("hulixue")?.0 == ["hu", "li", "xue"])
        #expect(SearchQuery.pinyinSyllables("kfzl") == nil)
        #expect(SearchQuery.pinyinSyllables("zhil")?.1 == true)
    }
}
