import Foundation

enum QueryKind: String, CaseIterable, Codable, Sendable {
    case char1 = "1-char"
    case char2Frequent = "2-char frequent"
    case char2Rare = "2-char rare"
    case char3 = "3-char"
    case char4 = "4-char"
    case pinyin = "pinyin"
    case initials = "initials"
    case mixed = "mixed"

    /// The kinds P5/P6 apply to (1-character queries are reported, not targeted).
    var targeted: Bool { self != .char1 }
    /// Kinds whose truth is plain Chinese substring: recall must be 100% and extra hits are errors.
    var isChineseSubstring: Bool { [.char1, .char2Frequent, .char2Rare, .char3, .char4].contains(self) }
}

/// A part of the substring truth: all parts of a query must hold in a record.
enum TruthPart: Sendable, Codable, Equatable {
    /// Occurs anywhere (Chinese text, already simplified).
    case substring(String)
    /// A Latin word starting with this (lower-case), as the search treats Latin words.
    case wordPrefix(String)

    var text: String {
        switch self {
        case .substring(let s), .wordPrefix(let s): return s
        }
    }
}

struct BenchQuery: Sendable {
    let kind: QueryKind
    /// What the user types.
    let input: String
    /// What it stands for, as substring truth (for pinyin and initials: the Chinese word).
    let truth: [TruthPart]
    /// A note shown in the report (e.g. a polyphonic character).
    var note: String? = nil

    /// The anchor's LIKE patterns (ANDed), one per truth part.
    var likePatterns: [String] { truth.map { "%" + $0.text + "%" } }
}

enum QuerySet {
    static func han(_ kind: QueryKind, _ words: [String]) -> [BenchQuery] {
        words.map { BenchQuery(kind: kind, input: $0, truth: [.substring($0)]) }
    }

    static let all: [BenchQuery] =
        han(.char1, ["护", "药", "康", "儿", "灸", "穴", "菌", "婴", "脉", "痧"])
        + han(.char2Frequent, ["教学", "护理", "技术", "学生", "康复", "药品", "幼儿", "中药", "训练", "针灸", "推拿", "操作"])
        + han(.char2Rare, ["蜡疗", "耳穴", "刮痧", "熏洗", "膏方", "绘本", "构音", "滴丸", "热原", "龋齿", "冻疮", "皮影"])
        + han(.char3, ["护理学", "中药学", "药理学", "婴幼儿", "导尿术", "洗胃术", "中成药", "抗生素", "降压药", "纯化水", "助行器", "幼儿园"])
        + han(.char4, ["静脉输液", "中药炮制", "幼儿保育", "质量控制", "运动疗法", "作业治疗", "无菌技术", "心肺复苏", "合理用药", "推拿手法", "家园共育", "康复护理"])
        + [
            ("huli", "护理", nil), ("kangfu", "康复", nil), ("zhongyao", "中药", nil), ("youer", "幼儿", nil), ("zhenjiu", "针灸", nil),
            ("tuina", "推拿", nil), ("yaopin", "药品", nil), ("jingmai", "静脉", nil), ("baoyu", "保育", nil), ("shuye", "输液", nil),
            ("yinyue", "音乐", "乐 is polyphonic (yue/le)"), ("tiaoji", "调剂", "调 is polyphonic (tiao/diao)"),
        ].map { BenchQuery(kind: .pinyin, input: $0.0, truth: [.substring($0.1)], note: $0.2) }
        + [
            ("hl", "护理"), ("kf", "康复"), ("jmsy", "静脉输液"), ("zyx", "中药学"), ("zypz", "中药炮制"), ("xffs", "心肺复苏"),
            ("yeby", "幼儿保育"), ("hlpg", "护理评估"), ("ydlf", "运动疗法"), ("zyzl", "作业治疗"), ("wjjs", "无菌技术"), ("hlyy", "合理用药"),
        ].map { BenchQuery(kind: .initials, input: $0.0, truth: [.substring($0.1)]) }
        + [
            ("PLC 控制", "plc", "控制"), ("GMP 车间", "gmp", "车间"), ("HPLC 含量", "hplc", "含量"), ("Python 数据", "python", "数据"),
            ("3D 打印", "3d", "打印"), ("AI 辅助", "ai", "辅助"), ("VR 实训", "vr", "实训"), ("ICU 护理", "icu", "护理"),
            ("Bobath 技术", "bobath", "技术"), ("ADL 评定", "adl", "评定"), ("GMP认证", "gmp", "认证"), ("3D打印", "3d", "打印"),
        ].map { BenchQuery(kind: .mixed, input: $0.0, truth: [.wordPrefix($0.1), .substring($0.2)]) }
}
