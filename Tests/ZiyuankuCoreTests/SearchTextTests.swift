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

    @Test func pinyinRidesAlongAsColocatedPairs() {
        let t = SearchText.tokens("康复", mode: .document)
        #expect(t.map(\.token) == ["康复", "~kang~fu", "^kf", "复", "~fu", "^f"])
        #expect(t.map(\.colocated) == [false, true, true, false, true, true])
        // Three characters or more: initials triples as well.
        #expect(
            SearchText.tokens("康复治疗", mode: .document).filter(\.colocated).map(\.token) == [
                "~kang~fu", "^kf", "^kfz", "~fu~zhi", "^fz", "^fzl", "~zhi~liao", "^zl", "~liao", "^l",
            ])
        // Pairs stop at the end of a run, as the character bigrams do.
        #expect(SearchText.tokens("护，理", mode: .document).map(\.token) == ["护", "~hu", "^h", "理", "~li", "^l"])
    }

    @Test func polyphonesAndUmlautCarryEveryReading() {
        #expect(SearchText.readings(of: "会".unicodeScalars.first!.value).sorted() == ["hui", "kuai"])
        #expect(SearchText.readings(of: "绿".unicodeScalars.first!.value) == ["lu", "lv"])
        let kuaiji = SearchText.tokens("会计", mode: .document).filter(\.colocated).map(\.token)
        #expect(kuaiji.contains("~kuai~ji") && kuaiji.contains("~hui~ji") && kuaiji.contains("^kj") && kuaiji.contains("^hj"))
        for (text, pair) in [("银行", "~yin~hang"), ("模具", "~mu~ju"), ("旅游", "~lv~you"), ("旅游", "~lu~you"), ("音乐", "~yin~yue")] {
            #expect(SearchText.tokens(text, mode: .document).contains { $0.token == pair }, "\(text) → \(pair)")
        }
        #expect(SearchQuery.pinyinSyllables("lvyou")?.0 == ["lv", "you"])
        // A character without a second reading does not multiply its neighbour's tokens.
        #expect(SearchText.tokens("护理", mode: .document).filter(\.colocated).map(\.token) == ["~hu~li", "^hl", "~li", "^l"])
    }

    @Test func queriesAreBuiltOnlyFromQuotedPhrases() {
        #expect(SearchQuery("康复").expression == "\"康复\"")
        #expect(SearchQuery("护").expression == "\"护\"*")
        #expect(SearchQuery("kfzl").expression == "(\"kfzl\"* OR \"\u{E003}kfz \u{E003}fzl\")")
        #expect(SearchQuery("kf").expression == "(\"kf\"* OR \"\u{E003}kf\")")
        #expect(SearchQuery("kangfu").expression == "(\"kangfu\"* OR \"\u{E002}kang\u{E002}fu\")")
        #expect(SearchQuery("kangf").expression == "(\"kangf\"* OR \"\u{E002}kang\u{E002}f\"*)")
        #expect(SearchQuery("kangfuzhi").expression == "(\"kangfuzhi\"* OR \"\u{E002}kang\u{E002}fu \u{E002}fu\u{E002}zhi\")")
        #expect(SearchQuery("kang").expression == "(\"kang\"* OR \"\u{E002}kang\u{E002}\"* OR \"\u{E002}kang\")")
        // The query tokenizer turns the marked pair into exactly the document's pair token.
        #expect(SearchText.tokens("\u{E002}kang\u{E002}fu \u{E002}fu\u{E002}zhi", mode: .query).map(\.token) == ["~kang~fu", "~fu~zhi"])
        #expect(SearchText.tokens("\u{E003}kf", mode: .query).map(\.token) == ["^kf"])
        // In a document the markers are separators: users cannot forge pinyin tokens.
        #expect(SearchText.tokens("\u{E002}kang\u{E002}fu", mode: .document).map(\.token) == ["kang", "fu"])
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
