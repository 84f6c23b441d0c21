import Foundation

/// A parsed JSON document kept loosely typed, so that validation can name every wrong field
/// instead of stopping at the first decoding error.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Deepest nesting of arrays and objects a request body may have.
    public static let maxDepth = 64

    /// A request body or a manifest line that must be one JSON object; the problem says
    /// plainly what was wrong (empty, unreadable, not an object).
    public static func parseObject(_ bytes: some Collection<UInt8>) throws(DomainError) -> [String: JSONValue] {
        if bytes.isEmpty { throw DomainError(.malformedJSON, "The body is empty; a JSON object was expected.") }
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw DomainError(.malformedJSON, "The body could not be read: \(error.reason).") }
        guard case .object(let o) = value else { throw DomainError(.malformedJSON, "The body must be a JSON object, not \(value.typeName).") }
        return o
    }

    /// Parses bytes as one JSON document (RFC 8259). Invalid UTF-8, syntax errors and nesting
    /// deeper than `maxDepth` are reported as `MalformedJSON` with a short reason. One pass,
    /// linear in the input: no trial decoding, so no input costs more than its length.
    public static func parse(_ bytes: some Collection<UInt8>) throws(MalformedJSON) -> JSONValue {
        let input = Array(bytes)
        guard String(validating: input, as: UTF8.self) != nil else { throw MalformedJSON(reason: "the body is not valid UTF-8") }
        var parser = JSONParser(input)
        return try parser.document()
    }

    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

public struct MalformedJSON: Error, Sendable {
    public let reason: String
}

/// The parser behind `JSONValue.parse`.
struct JSONParser {
    let b: [UInt8]
    var i = 0
    var depth = 0

    init(_ bytes: [UInt8]) { b = bytes }

    static func fail(_ reason: String) -> MalformedJSON { MalformedJSON(reason: reason) }

    mutating func document() throws(MalformedJSON) -> JSONValue {
        skipSpace()
        let v = try value()
        skipSpace()
        guard i == b.count else { throw Self.fail("the body is not valid JSON: unexpected text after the value at byte \(i)") }
        return v
    }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func value() throws(MalformedJSON) -> JSONValue {
        guard i < b.count else { throw Self.fail("the body is not valid JSON: it ends too early") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default: return .number(try number())
        }
    }

    mutating func literal(_ word: StaticString) throws(MalformedJSON) {
        let n = word.utf8CodeUnitCount
        guard b.count - i >= n else { throw Self.fail("the body is not valid JSON at byte \(i)") }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { throw Self.fail("the body is not valid JSON at byte \(i)") }
        i += n
    }

    mutating func enter() throws(MalformedJSON) {
        depth += 1
        if depth > JSONValue.maxDepth { throw Self.fail("the body nests arrays and objects deeper than \(JSONValue.maxDepth) levels") }
    }

    mutating func array() throws(MalformedJSON) -> JSONValue {
        try enter()
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard i < b.count else { throw Self.fail("the body is not valid JSON: an array is not closed") }
            if b[i] == UInt8(ascii: ",") {
                i += 1
            } else if b[i] == UInt8(ascii: "]") {
                i += 1
                depth -= 1
                return .array(items)
            } else {
                throw Self.fail("the body is not valid JSON: expected , or ] at byte \(i)")
            }
        }
    }

    mutating func object() throws(MalformedJSON) -> JSONValue {
        try enter()
        i += 1
        var members: [String: JSONValue] = [:]
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw Self.fail("the body is not valid JSON: expected a member name at byte \(i)") }
            let key = try string()
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw Self.fail("the body is not valid JSON: expected : at byte \(i)") }
            i += 1
            skipSpace()
            let v = try value()
            if members[key] == nil { members[key] = v }  // the first of duplicate names counts
            skipSpace()
            guard i < b.count else { throw Self.fail("the body is not valid JSON: an object is not closed") }
            if b[i] == UInt8(ascii: ",") {
                i += 1
            } else if b[i] == UInt8(ascii: "}") {
                i += 1
                depth -= 1
                return .object(members)
            } else {
                throw Self.fail("the body is not valid JSON: expected , or } at byte \(i)")
            }
        }
    }

    mutating func hex4() throws(MalformedJSON) -> UInt32 {
        guard b.count - i >= 4 else { throw Self.fail("the body is not valid JSON: a \\u escape is cut short") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw Self.fail("the body is not valid JSON: a \\u escape needs four hex digits")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func string() throws(MalformedJSON) -> String {
        i += 1  // the opening quote
        var out: [UInt8] = []
        var start = i
        while true {
            guard i < b.count else { throw Self.fail("the body is not valid JSON: a string is not closed") }
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: b[start..<i])
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c < 0x20 { throw Self.fail("the body is not valid JSON: a control character inside a string at byte \(i)") }
            guard c == UInt8(ascii: "\\") else {
                i += 1
                continue
            }
            out.append(contentsOf: b[start..<i])
            i += 1
            guard i < b.count else { throw Self.fail("the body is not valid JSON: a string is not closed") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard b.count - i >= 6, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw Self.fail("the body is not valid JSON: a lone surrogate in a \\u escape")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw Self.fail("the body is not valid JSON: a lone surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw Self.fail("the body is not valid JSON: a lone surrogate in a \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw Self.fail("the body is not valid JSON: a bad \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw Self.fail("the body is not valid JSON: an unknown escape at byte \(i - 1)")
            }
            start = i
        }
    }

    mutating func number() throws(MalformedJSON) -> Double {
        let start = i
        func digits() -> Int {
            let s = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            return i - s
        }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { throw Self.fail("the body is not valid JSON at byte \(start)") }
        if b[i] == 0x30 {
            i += 1
        } else {
            _ = digits()
        }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw Self.fail("the body is not valid JSON: a number at byte \(start)") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw Self.fail("the body is not valid JSON: a number at byte \(start)") }
        }
        guard i - start <= 400, let d = Double(String(decoding: b[start..<i], as: UTF8.self)), d.isFinite else {
            throw Self.fail("the body is not valid JSON: the number at byte \(start) is out of range")
        }
        return d
    }
}
