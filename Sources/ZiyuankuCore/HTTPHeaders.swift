import Foundation
import RawStructuredFieldValues

/// IMF-fixdate (RFC 9110 §5.6.7), formatted and parsed by hand: a DateFormatter per
/// request costs more than serving a small file. Parsing never traps: anything that is not a
/// well-formed date between the years 1 and 9999 is nil, which callers ignore (RFC 9110 §13.1.3).
public enum HTTPDate {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    /// Longest header value looked at; an IMF-fixdate is 29 characters.
    static let maxLength = 64

    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var t = time_t(seconds.isFinite ? max(-62_135_596_800, min(253_402_300_799, seconds.rounded(.down))) : 0)
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let wday = Int(tm.tm_wday), mon = Int(tm.tm_mon)
        guard days.indices.contains(wday), months.indices.contains(mon) else { return "Thu, 01 Jan 1970 00:00:00 GMT" }
        return "\(days[wday]), \(two(tm.tm_mday)) \(months[mon]) \(Int(tm.tm_year) + 1900) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) GMT"
    }

    /// "Sun, 06 Nov 1994 08:49:37 GMT" → the instant; nil for anything else.
    public static func parse(_ s: String) -> Date? {
        guard s.utf8.count <= maxLength else { return nil }
        let parts = s.trimmingCharacters(in: .whitespaces).split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", parts[1].utf8.count == 2, parts[3].utf8.count == 4,
            let day = digits(parts[1]), let month = months.firstIndex(of: String(parts[2])), let year = digits(parts[3])
        else { return nil }
        let hms = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard hms.count == 3, hms.allSatisfy({ $0.utf8.count == 2 }), let h = digits(hms[0]), let m = digits(hms[1]), let sec = digits(hms[2]),
            (1...9999).contains(year), (1...31).contains(day), (0...23).contains(h), (0...59).contains(m), (0...60).contains(sec)
        else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), in plain Int: no C `tm` fields
        // that a year could overflow.
        let y = month < 2 ? year - 1 : year
        let era = y / 400
        let yoe = y - era * 400
        let mp = (month + 10) % 12  // March = 0; `month` counts from January = 0
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let daysSinceEpoch = era * 146_097 + doe - 719_468
        return Date(timeIntervalSince1970: TimeInterval(daysSinceEpoch * 86_400 + h * 3600 + m * 60 + sec))
    }

    /// ASCII digits only (no sign, no spaces), at most 9 of them.
    static func digits(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.utf8.count <= 9, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }
}

/// `Content-Digest` / `Repr-Digest` (RFC 9530): a structured-field dictionary (RFC 9651) from
/// algorithm names to byte sequences, parsed with swift-http-structured-headers. We use the
/// sha-256 member; members for other algorithms are ignored, as RFC 9530 §2 asks.
public enum DigestHeader {
    public enum Result: Equatable, Sendable {
        /// A valid dictionary without a sha-256 member: nothing to check.
        case absent
        case sha256([UInt8])
        /// A sha-256 member that is not a byte sequence of 32 bytes.
        case malformed
        /// The field is not a valid structured-field dictionary (or is longer than `maxLength`).
        case notADictionary
    }

    /// Longest field value looked at; a sha-256 member is 53 bytes.
    public static let maxLength = 4096

    public static func sha256(_ header: String) -> Result {
        guard header.utf8.count <= maxLength else { return .notADictionary }
        var parser = StructuredFieldValueParser(Array(header.utf8))
        let dictionary: OrderedMap<String, ItemOrInnerList>
        do { dictionary = try parser.parseDictionaryFieldValue() } catch { return .notADictionary }
        guard let member = dictionary["sha-256"] else { return .absent }
        guard case .item(let item) = member, case .undecodedByteSequence(let base64) = item.rfc9651BareItem,
            let bytes = decodeBase64(base64), bytes.count == 32
        else { return .malformed }
        return .sha256(bytes)
    }

    /// The field value naming one SHA-256 digest: `sha-256=:<base64>:`.
    public static func value(sha256 digest: some Sequence<UInt8>) -> String {
        "sha-256=:\(Data(digest).base64EncodedString()):"
    }

    /// The field value for a digest given in lower-case hex (as blobs are named); nil if it is not hex.
    public static func value(sha256Hex hex: String) -> String? {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var i = 0
        while i < 64 {
            guard let v = UInt8(String(decoding: utf8[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(v)
            i += 2
        }
        return value(sha256: bytes)
    }

    /// RFC 9651 §4.2.7: parsers should not fail when the "=" padding is missing.
    static func decodeBase64(_ text: String) -> [UInt8]? {
        var padded = text
        if !padded.contains("=") && padded.utf8.count % 4 != 0 {
            padded += String(repeating: "=", count: 4 - padded.utf8.count % 4)
        }
        return Data(base64Encoded: padded).map(Array.init)
    }
}

/// The tus 1.0 request headers we read, parsed without trusting them.
public enum TusHeaders {
    /// `Upload-Length` / `Upload-Offset`: a non-negative decimal that fits in Int64.
    public static func byteCount(_ raw: String) -> Int64? {
        guard !raw.isEmpty, raw.utf8.count <= 19, raw.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(raw)
    }

    public static let maxMetadataBytes = 4096

    /// `Upload-Metadata`: comma-separated `key base64value` pairs; `filename` (or `name`) names
    /// the file, cleaned as every user filename is. Malformed metadata is refused rather than
    /// guessed at.
    public static func filename(fromMetadata header: String) throws(DomainError) -> String? {
        guard !header.isEmpty else { return nil }
        guard header.utf8.count <= maxMetadataBytes else { throw DomainError(.badRequest, "Upload-Metadata is limited to \(maxMetadataBytes) bytes.") }
        var found: String?
        for pair in header.split(separator: ",") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 1 || parts.count == 2, !parts[0].isEmpty else {
                throw DomainError(.badRequest, "Upload-Metadata must be comma-separated 'key base64value' pairs.")
            }
            var value: String?
            if parts.count == 2 {
                guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8) else {
                    throw DomainError(.badRequest, "Upload-Metadata value of '\(parts[0].prefix(64))' is not base64-encoded UTF-8.")
                }
                value = text
            }
            if parts[0] == "filename" || (parts[0] == "name" && found == nil), let v = value {
                guard let name = Filenames.clean(v), !name.isEmpty, name.utf8.count <= Filenames.maxBytes else {
                    throw DomainError(.badRequest, "The filename in Upload-Metadata is empty or too long.")
                }
                found = name
            }
        }
        return found
    }

    public struct Checksum: Equatable, Sendable {
        public var algorithm: String
        public var digest: [UInt8]
    }

    /// `Upload-Checksum: sha1|sha256 <base64>`.
    public static func checksum(_ header: String) throws(DomainError) -> Checksum {
        let parts = header.split(separator: " ")
        guard header.utf8.count <= 256, parts.count == 2, let digest = Data(base64Encoded: String(parts[1])) else {
            throw DomainError(.badRequest, "Upload-Checksum must be 'algorithm base64digest'.")
        }
        let algorithm = parts[0].lowercased()
        guard ["sha1", "sha256"].contains(algorithm) else {
            throw DomainError(.badRequest, "Upload-Checksum algorithm \(parts[0].prefix(32)) is not supported; use sha1 or sha256.")
        }
        guard digest.count == (algorithm == "sha1" ? 20 : 32) else {
            throw DomainError(.badRequest, "Upload-Checksum's \(algorithm) digest must be \(algorithm == "sha1" ? 20 : 32) bytes.")
        }
        return Checksum(algorithm: algorithm, digest: Array(digest))
    }
}
