import Foundation

public struct Author: Codable, Sendable, Equatable {
    public var name: String
    public var role: AuthorRole
    public init(name: String, role: AuthorRole) {
        self.name = name
        self.role = role
    }
}

/// The user-editable metadata of a resource (docs/product.md#resource-metadata). A full copy is stored with every
/// version; the wire form is the same JSON object.
public struct ResourceMetadata: Codable, Sendable, Equatable {
    public var title: String
    public var description: String
    public var keywords: [String]
    public var resourceType: ResourceType
    public var granularity: Granularity
    public var educationLevel: EducationLevel
    public var majorCodes: [String]
    public var course: String?
    public var knowledgePoints: [String]
    public var audience: [Audience]
    public var language: String
    public var authors: [Author]
    public var copyrightHolder: String
    public var license: License
    public var originality: Originality
    public var source: String?
    public var visibility: Visibility
    public var pushToPlatform: Bool

    /// Field names accepted in a metadata object, in the order they are documented.
    public static let fieldNames: [String] = [
        "title", "description", "keywords", "resourceType", "granularity", "educationLevel", "majorCodes", "course",
        "knowledgePoints", "audience", "language", "authors", "copyrightHolder", "license", "originality", "source",
        "visibility", "pushToPlatform",
    ]

    public var jsonObject: [String: JSONValue] {
        var o: [String: JSONValue] = [
            "title": .string(title), "description": .string(description), "keywords": .array(keywords.map { .string($0) }),
            "resourceType": .string(resourceType.rawValue), "granularity": .string(granularity.rawValue),
            "educationLevel": .string(educationLevel.rawValue), "majorCodes": .array(majorCodes.map { .string($0) }),
            "knowledgePoints": .array(knowledgePoints.map { .string($0) }), "audience": .array(audience.map { .string($0.rawValue) }),
            "language": .string(language),
            "authors": .array(authors.map { .object(["name": .string($0.name), "role": .string($0.role.rawValue)]) }),
            "copyrightHolder": .string(copyrightHolder), "license": .string(license.rawValue),
            "originality": .string(originality.rawValue), "visibility": .string(visibility.rawValue),
            "pushToPlatform": .bool(pushToPlatform),
        ]
        o["course"] = course.map { .string($0) } ?? .null
        o["source"] = source.map { .string($0) } ?? .null
        return o
    }
}

/// One offending field of a request, named by a JSON-pointer-like path (`keywords[2]`).
public struct FieldError: Codable, Sendable, Equatable {
    public var field: String
    public var message: String
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// What the validator needs to know about the major vocabulary.
public struct MajorInfo: Sendable {
    public var code: String
    public var educationLevel: EducationLevel
    public var isMajor: Bool
    public init(code: String, educationLevel: EducationLevel, isMajor: Bool) {
        self.code = code
        self.educationLevel = educationLevel
        self.isMajor = isMajor
    }
}

public enum MetadataValidator {
    public static let maxTitle = 200
    public static let maxDescription = 5000
    public static let maxKeyword = 50
    public static let maxKeywords = 20
    public static let maxKnowledgePoints = 100
    public static let maxShortText = 200
    public static let maxAuthors = 50

    /// Validates a complete metadata object. Every problem is reported, not just the first.
    /// `lookupMajor` answers for a code (nil when unknown).
    public static func validate(
        _ object: [String: JSONValue],
        lookupMajor: (String) -> MajorInfo?
    ) -> Result<ResourceMetadata, ValidationErrors> {
        var errors: [FieldError] = []
        let known = Set(ResourceMetadata.fieldNames)
        let unknown = object.keys.filter { !known.contains($0) }.sorted()
        for key in unknown.prefix(10) {
            errors.append(.init(field: String(key.prefix(100)), message: "unknown field"))
        }
        if unknown.count > 10 { errors.append(.init(field: "", message: "and \(unknown.count - 10) more unknown fields")) }
        var r = FieldReader(object: object)

        let title = r.text("title", required: true, max: maxTitle)
        let description = r.text("description", required: true, max: maxDescription, multiline: true)
        let keywords = r.textArray("keywords", required: true, min: 1, max: maxKeywords, itemMax: maxKeyword)
        let resourceType: ResourceType? = r.enumValue("resourceType", required: true)
        let granularity: Granularity? = r.enumValue("granularity", required: true)
        let level: EducationLevel? = r.enumValue("educationLevel", required: true)
        let majorCodes = r.textArray("majorCodes", required: true, min: 1, max: 10, itemMax: 7)
        let course = r.text("course", required: false, max: maxShortText)
        let knowledgePoints = r.textArray("knowledgePoints", required: false, min: 0, max: maxKnowledgePoints, itemMax: maxShortText)
        let audience: [Audience]? = r.enumArray("audience")
        let language = r.text("language", required: false, max: 35)
        let authors = r.authors("authors", max: maxAuthors)
        let copyrightHolder = r.text("copyrightHolder", required: true, max: maxShortText)
        let license: License? = r.enumValue("license", required: true)
        let originality: Originality? = r.enumValue("originality", required: true)
        let source = r.text("source", required: false, max: 1000)
        let visibility: Visibility? = r.enumValue("visibility", required: true)
        let push = r.bool("pushToPlatform")
        errors += r.errors

        if let language, !isBCP47(language) {
            errors.append(.init(field: "language", message: "must be a BCP 47 language tag such as zh-CN or en"))
        }
        if originality == .cited, (source ?? "").isEmpty {
            errors.append(.init(field: "source", message: "is required when originality is cited"))
        }
        if let majorCodes {
            var seen = Set<String>()
            for (i, code) in majorCodes.enumerated() {
                let field = "majorCodes[\(i)]"
                if !seen.insert(code).inserted {
                    errors.append(.init(field: field, message: "duplicate major code \(code)"))
                    continue
                }
                guard isMajorCodeShape(code) else {
                    errors.append(.init(field: field, message: "'\(code)' is not a major code: 6 digits with an optional K suffix"))
                    continue
                }
                guard let info = lookupMajor(code) else {
                    errors.append(.init(field: field, message: "unknown major code \(code)"))
                    continue
                }
                if !info.isMajor {
                    errors.append(.init(field: field, message: "\(code) is a category or class, not a major"))
                } else if let level, info.educationLevel != level {
                    errors.append(
                        .init(field: field, message: "major \(code) belongs to \(info.educationLevel.rawValue), not \(level.rawValue)"))
                }
            }
        }

        guard errors.isEmpty, let title, let description, let keywords, let resourceType, let granularity, let level,
            let majorCodes, let authors, let copyrightHolder, let license, let originality, let visibility
        else {
            return .failure(ValidationErrors(errors.isEmpty ? [.init(field: "", message: "invalid metadata")] : errors))
        }
        return .success(
            ResourceMetadata(
                title: title, description: description, keywords: keywords, resourceType: resourceType,
                granularity: granularity, educationLevel: level, majorCodes: majorCodes, course: course.flatMap { $0.isEmpty ? nil : $0 },
                knowledgePoints: knowledgePoints ?? [], audience: audience ?? [], language: language ?? "zh-CN",
                authors: authors, copyrightHolder: copyrightHolder, license: license, originality: originality,
                source: source.flatMap { $0.isEmpty ? nil : $0 }, visibility: visibility, pushToPlatform: push ?? false))
    }

    public static func isMajorCodeShape(_ code: String) -> Bool {
        let u = Array(code.utf8)
        guard u.count == 6 || (u.count == 7 && u[6] == UInt8(ascii: "K")) else { return false }
        return u.prefix(6).allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    /// A major code, or the 2-digit 大类 or 4-digit 类 prefix that stands for all majors under it
    /// (filters and selections take either).
    public static func isMajorCodeOrPrefix(_ code: String) -> Bool {
        isMajorCodeShape(code) || ([2, 4].contains(code.utf8.count) && code.utf8.allSatisfy { $0 >= 48 && $0 <= 57 })
    }

    /// A pragmatic BCP 47 shape check: alphanumeric subtags of 1–8 characters joined by '-',
    /// the first one 2–3 letters.
    public static func isBCP47(_ tag: String) -> Bool {
        let parts = tag.split(separator: "-", omittingEmptySubsequences: false)
        guard let first = parts.first, (2...3).contains(first.count), first.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            return false
        }
        return parts.dropFirst().allSatisfy { (1...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }
    }
}

public struct ValidationErrors: Error, Sendable {
    public var errors: [FieldError]
    public init(_ errors: [FieldError]) { self.errors = errors }
}

/// Reads typed fields out of a JSON object, collecting an error per bad field.
public struct FieldReader {
    public let object: [String: JSONValue]
    public var errors: [FieldError] = []

    public init(object: [String: JSONValue]) { self.object = object }

    /// "unknown field" for every member of `object` not in `allowed`, in name order, each named
    /// `prefix` + its key (`changes.` or `files[2].`, say).
    public static func unknownFields(in object: [String: JSONValue], allowed: Set<String>, prefix: String = "") -> [FieldError] {
        object.keys.filter { !allowed.contains($0) }.sorted().map { FieldError(field: prefix + $0, message: "unknown field") }
    }

    private mutating func fail(_ field: String, _ message: String) { errors.append(.init(field: field, message: message)) }

    private mutating func present(_ key: String, required: Bool) -> JSONValue? {
        switch object[key] {
        case .none, .null?:
            if required { fail(key, "is required") }
            return nil
        case let v?: return v
        }
    }

    public mutating func text(_ key: String, required: Bool, max: Int, multiline: Bool = false) -> String? {
        guard let v = present(key, required: required) else { return nil }
        guard case .string(let raw) = v else {
            fail(key, "must be a string, not \(v.typeName)")
            return nil
        }
        return checkText(raw, field: key, required: required, max: max, multiline: multiline)
    }

    mutating func checkText(_ raw: String, field: String, required: Bool, max: Int, multiline: Bool) -> String? {
        let s = TextCleaning.normalize(raw)
        if let bad = TextCleaning.forbiddenCharacter(in: s, allowNewlines: multiline) {
            fail(field, "contains a forbidden control character (U+\(String(bad.value, radix: 16, uppercase: true)))")
            return nil
        }
        let trimmed = s.trimmingCharacters(in: .whitespacesAndNewlines)
        if required && trimmed.isEmpty {
            fail(field, "must not be empty")
            return nil
        }
        // Counted in Unicode code points, as the catalog's CHECK constraints count.
        if trimmed.unicodeScalars.count > max {
            fail(field, "is too long: \(trimmed.unicodeScalars.count) characters, at most \(max)")
            return nil
        }
        return trimmed
    }

    /// Element problems of one array field: each bad element is named while there are a few;
    /// past that the field is named once more with the count, so the answer stays small
    /// however many bad elements are sent.
    static let maxElementErrors = 5

    mutating func failElements(_ key: String, _ bad: [FieldError]) {
        guard bad.count > Self.maxElementErrors else { return errors += bad }
        errors += bad.prefix(Self.maxElementErrors - 1)
        fail(key, "\(bad.count - (Self.maxElementErrors - 1)) more problems in its items (\(bad.count) in all)")
    }

    public mutating func textArray(_ key: String, required: Bool, min: Int, max: Int, itemMax: Int) -> [String]? {
        guard let v = present(key, required: required) else { return nil }
        guard case .array(let items) = v else {
            fail(key, "must be an array of strings, not \(v.typeName)")
            return nil
        }
        if items.count < min { fail(key, "needs at least \(min) item\(min == 1 ? "" : "s")") }
        // Past the limit the items are not looked at: the answer stays small whatever is sent.
        if items.count > max {
            fail(key, "has \(items.count) items, at most \(max)")
            return nil
        }
        var out: [String] = []
        var bad: [FieldError] = []
        for (i, item) in items.enumerated() {
            guard case .string(let s) = item else {
                bad.append(.init(field: "\(key)[\(i)]", message: "must be a string, not \(item.typeName)"))
                continue
            }
            var inner = FieldReader(object: [:])
            if let t = inner.checkText(s, field: "\(key)[\(i)]", required: true, max: itemMax, multiline: false) {
                out.append(t)
            } else {
                bad += inner.errors
            }
        }
        failElements(key, bad)
        return bad.isEmpty && items.count >= min ? out : nil
    }

    public mutating func enumValue<E: RawRepresentable & CaseIterable>(_ key: String, required: Bool) -> E? where E.RawValue == String {
        guard let v = present(key, required: required) else { return nil }
        guard case .string(let s) = v else {
            fail(key, "must be a string, not \(v.typeName)")
            return nil
        }
        guard let e = E(rawValue: s) else {
            fail(key, "'\(s.prefix(100))' is not one of: \(E.allowedValues)")
            return nil
        }
        return e
    }

    /// At most this many items are looked at in an array without a stated limit.
    public static let maxArrayItems = 100

    public mutating func enumArray<E: RawRepresentable & CaseIterable & Equatable>(_ key: String) -> [E]? where E.RawValue == String {
        guard let v = present(key, required: false) else { return nil }
        guard case .array(let items) = v else {
            fail(key, "must be an array, not \(v.typeName)")
            return nil
        }
        if items.count > Self.maxArrayItems {
            fail(key, "has \(items.count) items, at most \(Self.maxArrayItems)")
            return nil
        }
        var out: [E] = []
        var bad: [FieldError] = []
        for (i, item) in items.enumerated() {
            guard case .string(let s) = item, let e = E(rawValue: s) else {
                bad.append(.init(field: "\(key)[\(i)]", message: "must be one of: \(E.allowedValues)"))
                continue
            }
            if !out.contains(e) { out.append(e) }
        }
        failElements(key, bad)
        return out
    }

    public mutating func bool(_ key: String) -> Bool? {
        guard let v = present(key, required: false) else { return nil }
        guard case .bool(let b) = v else {
            fail(key, "must be true or false, not \(v.typeName)")
            return nil
        }
        return b
    }

    public mutating func integer(_ key: String, required: Bool, range: ClosedRange<Int>) -> Int? {
        guard let v = present(key, required: required) else { return nil }
        guard case .number(let d) = v, d.rounded() == d, let i = Int(exactly: d) else {
            fail(key, "must be an integer")
            return nil
        }
        guard range.contains(i) else {
            fail(key, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return i
    }

    mutating func authors(_ key: String, max: Int) -> [Author]? {
        guard let v = present(key, required: true) else { return nil }
        guard case .array(let items) = v else {
            fail(key, "must be an array of {name, role} objects, not \(v.typeName)")
            return nil
        }
        if items.isEmpty { fail(key, "needs at least 1 author") }
        if items.count > max {
            fail(key, "has \(items.count) authors, at most \(max)")
            return nil
        }
        var out: [Author] = []
        let before = errors.count
        for (i, item) in items.enumerated() {
            let f = "\(key)[\(i)]"
            guard case .object(let o) = item else {
                fail(f, "must be an object with name and role")
                continue
            }
            if let k = o.keys.sorted().first(where: { $0 != "name" && $0 != "role" }) { fail("\(f).\(k.prefix(100))", "unknown field") }
            var name: String?
            switch o["name"] {
            case .string(let s)?: name = checkText(s, field: "\(f).name", required: true, max: 100, multiline: false)
            case nil, .null?: fail("\(f).name", "is required")
            case let other?: fail("\(f).name", "must be a string, not \(other.typeName)")
            }
            var role: AuthorRole? = .author
            switch o["role"] {
            case nil, .null?: role = .author
            case .string(let s)?:
                role = AuthorRole(rawValue: s)
                if role == nil { fail("\(f).role", "'\(s.prefix(100))' is not one of: \(AuthorRole.allowedValues)") }
            case let other?:
                role = nil
                fail("\(f).role", "must be a string, not \(other.typeName)")
            }
            if let name, let role { out.append(Author(name: name, role: role)) }
        }
        let bad = Array(errors[before...])
        errors.removeSubrange(before...)
        failElements(key, bad)
        return out.count == items.count && !items.isEmpty && items.count <= max ? out : nil
    }
}
