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

    /// Parses bytes as one JSON document. Invalid UTF-8 and syntax errors are reported as
    /// `MalformedJSON` with a short reason.
    public static func parse(_ bytes: some Collection<UInt8>) throws(MalformedJSON) -> JSONValue {
        let data = Data(bytes)
        guard String(validating: data, as: UTF8.self) != nil else { throw MalformedJSON(reason: "the body is not valid UTF-8") }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw MalformedJSON(reason: "the body is not valid JSON")
        }
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

