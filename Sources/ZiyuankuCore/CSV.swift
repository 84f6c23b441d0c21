/// RFC 4180 CSV: quoted fields with doubled quotes, CRLF or LF line ends, and the UTF-8 BOM
/// that Excel on Chinese Windows writes.
public enum CSV {
    public struct Failure: Error, Sendable, Equatable {
        public var line: Int
        public var reason: String
    }

    /// Parses UTF-8 bytes into rows; `line` numbers in errors are 1-based.
    public static func parse(_ bytes: [UInt8]) throws(Failure) -> [[String]] {
        var data = bytes[...]
        if data.starts(with: [0xEF, 0xBB, 0xBF]) { data = data.dropFirst(3) }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw Failure(line: 0, reason: "the file is not UTF-8 (save it as \"CSV UTF-8\")")
        }
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var fieldStarted = false
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending {
                pending = nil
                return p
            }
            return it.next()
        }
        while let c = next() {
            if inQuotes {
                if c == "\"" {
                    if let n = next() {
                        if n == "\"" {
                            field.unicodeScalars.append("\"")
                        } else {
                            inQuotes = false
                            pending = n
                        }
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                if fieldStarted && !field.isEmpty { throw Failure(line: line, reason: "a quote inside an unquoted field") }
                inQuotes = true
                fieldStarted = true
            case ",":
                row.append(field)
                field = ""
                fieldStarted = false
            case "\r":
                continue
            case "\n":
                row.append(field)
                rows.append(row)
                row = []
                field = ""
                fieldStarted = false
                line += 1
            default:
                field.unicodeScalars.append(c)
                fieldStarted = true
            }
        }
        if inQuotes { throw Failure(line: line, reason: "a quoted field is not closed") }
        if fieldStarted || !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows.filter { !($0.count == 1 && $0[0].isEmpty) }
    }
}

/// One row of the official major catalog layout (`majors-2021.csv`).
public struct MajorCatalogRow: Sendable, Equatable {
    public var code: String
    public var name: String
    public var educationLevel: EducationLevel
    public var itemLevel: String
    public var parentCode: String?
    public var catalog: String
    /// 1-based line of the row in the file, for error reports.
    public var line: Int
}

public enum MajorCatalogCSV {
    public static let requiredColumns = ["catalogCode", "educationLevel", "majorCode", "majorName", "parentCode", "itemLevel"]

    static let levels: [String: EducationLevel] = [
        "VOCATIONAL_SECONDARY": .secondary, "VOCATIONAL_ASSOCIATE": .higherVocational, "VOCATIONAL_BACHELOR": .vocationalBachelor,
    ]
    static let items: [String: String] = ["CATEGORY": "category", "CLASS": "class", "MAJOR": "major"]

    public struct RowError: Error, Sendable, Equatable, CustomStringConvertible {
        public var row: Int
        public var column: String
        public var reason: String
        public var description: String { "row \(row), \(column): \(reason)" }
    }

    /// Parses and checks every row; returns all errors, not just the first.
    public struct RowErrors: Error, Sendable {
        public var all: [RowError]
    }

    /// `knownParent` answers for parent codes not in the file (e.g. already in the catalog).
    public static func parse(_ bytes: [UInt8], knownParent: (String) -> Bool = { _ in false }) -> Result<[MajorCatalogRow], RowErrors> {
        let rows: [[String]]
        do { rows = try CSV.parse(bytes) } catch { return .failure(RowErrors(all: [RowError(row: error.line, column: "-", reason: error.reason)])) }
        guard let header = rows.first else { return .failure(RowErrors(all: [RowError(row: 1, column: "-", reason: "the file is empty")])) }
        let cols = header.map { $0.trimmingCharacters(in: .whitespaces) }
        let missing = requiredColumns.filter { !cols.contains($0) }
        if !missing.isEmpty {
            return .failure(
                RowErrors(all: [
                    RowError(
                        row: 1, column: missing.joined(separator: ", "),
                        reason: "missing column(s); the header must have \(requiredColumns.joined(separator: ", "))")
                ]))
        }
        // A column named twice would be ambiguous (and must not trap): refused when it is one we read.
        var idx: [String: Int] = [:]
        var twice: [String] = []
        for (i, c) in cols.enumerated() {
            if idx[c] == nil { idx[c] = i } else if requiredColumns.contains(c) && !twice.contains(c) { twice.append(c) }
        }
        if !twice.isEmpty {
            return .failure(RowErrors(all: [RowError(row: 1, column: twice.joined(separator: ", "), reason: "appears more than once in the header")]))
        }
        var out: [MajorCatalogRow] = []
        var errors: [RowError] = []
        var seen = Set<String>()
        for (i, r) in rows.dropFirst().enumerated() {
            let n = i + 2
            func v(_ c: String) -> String {
                let j = idx[c]!
                return j < r.count ? r[j].trimmingCharacters(in: .whitespaces) : ""
            }
            guard r.count == cols.count else {
                errors.append(RowError(row: n, column: "-", reason: "has \(r.count) fields, the header has \(cols.count)"))
                continue
            }
            let code = v("majorCode")
            let name = v("majorName")
            guard let level = levels[v("educationLevel")] else {
                errors.append(
                    RowError(row: n, column: "educationLevel", reason: "'\(v("educationLevel"))' is not one of \(levels.keys.sorted().joined(separator: ", "))")
                )
                continue
            }
            guard let item = items[v("itemLevel")] else {
                errors.append(RowError(row: n, column: "itemLevel", reason: "'\(v("itemLevel"))' is not one of CATEGORY, CLASS, MAJOR"))
                continue
            }
            let shapeOK: Bool
            switch item {
            case "category": shapeOK = code.count == 2 && code.allSatisfy { $0.isASCII && $0.isNumber }
            case "class": shapeOK = code.count == 4 && code.allSatisfy { $0.isASCII && $0.isNumber }
            default: shapeOK = MetadataValidator.isMajorCodeShape(code)
            }
            if !shapeOK {
                errors.append(RowError(row: n, column: "majorCode", reason: "'\(code)' does not fit a \(item) code"))
                continue
            }
            if name.isEmpty || name.count > 100 {
                errors.append(RowError(row: n, column: "majorName", reason: "must be 1–100 characters"))
                continue
            }
            let parent = v("parentCode")
            if item != "category" && !code.hasPrefix(parent) || (item != "category" && parent.isEmpty) {
                errors.append(RowError(row: n, column: "parentCode", reason: "'\(parent)' is not the prefix of \(code)"))
                continue
            }
            if !seen.insert(code).inserted {
                errors.append(RowError(row: n, column: "majorCode", reason: "\(code) appears twice"))
                continue
            }
            out.append(
                MajorCatalogRow(
                    code: code, name: name, educationLevel: level, itemLevel: item, parentCode: item == "category" ? nil : parent,
                    catalog: v("catalogCode").isEmpty ? "MOE_VOCATIONAL_2021" : v("catalogCode"), line: n))
        }
        for row in out where row.parentCode != nil && !seen.contains(row.parentCode!) && !knownParent(row.parentCode!) {
            errors.append(RowError(row: row.line, column: "parentCode", reason: "parent \(row.parentCode!) is neither in the file nor in the catalog"))
        }
        return errors.isEmpty ? .success(out.sorted { $0.line < $1.line }) : .failure(RowErrors(all: errors.sorted { $0.row < $1.row }))
    }
}
