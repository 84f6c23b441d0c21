// Closed vocabularies of docs/product.md#vocabularies. Raw values are the wire and database spellings.

public enum Role: String, Codable, Sendable, CaseIterable {
    case teacher, reviewer, reader, admin

    /// Roles that may create resources and upload bytes.
    public var canAuthor: Bool { self == .teacher || self == .reviewer || self == .admin }
}

public enum OrganizationKind: String, Codable, Sendable, CaseIterable {
    case secondaryVocational  // 中职学校
    case higherVocational  // 高职院校
    case university  // 本科院校
    case enterprise  // 企业
    case research  // 科研院所
    case government  // 行政部门
    case platform  // the library's own operator
}

public enum ResourceType: String, Codable, Sendable, CaseIterable {
    case text, slides, image, audio, video, microLecture, animation, virtualSimulation
    case question, paper, `case`, document, lecture, courseware, other
}

public enum Granularity: String, Codable, Sendable, CaseIterable {
    case asset, knowledgeUnit, module, course
}

public enum EducationLevel: String, Codable, Sendable, CaseIterable {
    case secondary, higherVocational, vocationalBachelor
}

public enum License: String, Codable, Sendable, CaseIterable {
    case allRightsReserved, schoolOnly, platformShare
    case ccBy = "CC-BY-4.0"
    case ccBySa = "CC-BY-SA-4.0"
    case ccByNc = "CC-BY-NC-4.0"
    case ccByNcSa = "CC-BY-NC-SA-4.0"
}

public enum Originality: String, Codable, Sendable, CaseIterable {
    case original, adapted, cited
}

public enum Visibility: String, Codable, Sendable, CaseIterable {
    case `public`, organization, `private`
}

public enum ResourceStatus: String, Codable, Sendable, CaseIterable {
    case draft, inReview, published, rejected, withdrawn
}

public enum Audience: String, Codable, Sendable, CaseIterable {
    case student, teacher, socialLearner
}

public enum FileRole: String, Codable, Sendable, CaseIterable {
    case primary, subtitle, attachment, cover
}

public enum AuthorRole: String, Codable, Sendable, CaseIterable {
    case author, editor, narrator, designer, reviewer, other
}

extension CaseIterable where Self: RawRepresentable, RawValue == String {
    public static var allowedValues: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
