import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Writes JSON by hand for the hot responses: Foundation's JSONEncoder was the largest cost of
/// a metadata GET. Strings are escaped per RFC 8259; non-ASCII text is written as UTF-8.
struct JSONWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [92, 92])
            case 0x0A: bytes.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func key(_ k: String) {
        string(k)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func member(_ k: String, _ v: String?) {
        key(k)
        if let v { string(v) } else { raw("null") }
    }

    mutating func member(_ k: String, _ v: Int?) {
        key(k)
        raw(v.map(String.init) ?? "null")
    }

    mutating func member(_ k: String, _ v: Bool) {
        key(k)
        raw(v ? "true" : "false")
    }

    mutating func comma() { bytes.append(UInt8(ascii: ",")) }

    mutating func encodable<T: Encodable>(_ v: T) throws { bytes.append(contentsOf: try JSONResponse.encoder.encode(v)) }

    func response(status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The members of a version's wire form (metadata, files, version fields), encoded once per
/// version: versions never change.
enum VersionFragments {
    static let cache = BoundedCache<[UInt8]>(capacity: 20_000)

    static func fragment(resourceId: String, _ v: ResourceVersion) throws -> [UInt8] {
        let key = BoundedCache<[UInt8]>.versionKey(resourceId, v.number)
        if let hit = cache.get(key) { return hit }
        var w = JSONWriter()
        let metadata = try JSONResponse.encoder.encode(v.metadata)
        // The metadata object without its braces, then the version's own members.
        w.raw(Array(metadata.dropFirst().dropLast()))
        w.comma()
        w.key("files")
        try w.encodable(v.files)
        w.comma()
        w.member("version", v.number)
        w.comma()
        w.member("versionCreatedAt", v.createdAt)
        w.comma()
        w.member("changeNote", v.changeNote)
        cache.put(key, w.bytes)
        return w.bytes
    }
}

/// The wire form of a resource as one caller sees it: the metadata of the version shown, its
/// files, and the resource's state (`latestVersion`/`hasUnpublishedChanges` for privileged
/// callers only), plus `highlight` for search results.
struct ResourceDTO {
    let view: ResourceView
    let privileged: Bool
    var titleHighlight: String? = nil
    var descriptionSnippet: String? = nil
    /// The workflow actions the caller may take now (single-resource answers to a user).
    var allowedActions: [WorkflowAction]? = nil

    func write(into w: inout JSONWriter) throws {
        let s = view.state
        w.raw("{")
        w.raw(try VersionFragments.fragment(resourceId: s.id, view.version))
        w.comma()
        w.member("id", s.id)
        w.comma()
        w.member("organizationId", s.organizationId)
        w.comma()
        w.member("ownerId", s.ownerId)
        w.comma()
        // Readers see the published version, so for them the resource is published even while
        // a newer version is drafted or reviewed.
        w.member("status", privileged || s.publishedVersion == nil ? s.status.rawValue : ResourceStatus.published.rawValue)
        w.comma()
        w.member("publishedVersion", s.publishedVersion)
        w.comma()
        w.member("downloadCount", s.downloadCount)
        if privileged {
            w.comma()
            w.member("latestVersion", s.currentVersion)
            w.comma()
            w.member("hasUnpublishedChanges", s.publishedVersion.map { $0 < s.currentVersion } ?? false)
            w.comma()
            w.key("review")
            w.raw("{")
            w.member("submittedAt", s.submittedAt)
            w.comma()
            w.member("submittedBy", s.submittedBy)
            w.comma()
            w.member("reviewedAt", s.reviewedAt)
            w.comma()
            w.member("reviewedBy", s.reviewedBy)
            w.comma()
            w.member("reason", s.reviewReason)
            w.raw("}")
        }
        if let allowedActions {
            w.comma()
            w.key("allowedActions")
            try w.encodable(allowedActions.map(\.rawValue))
        }
        w.comma()
        w.member("createdAt", s.createdAt)
        w.comma()
        // Readers see the times of what they see: a draft saved by the owner does not move them.
        w.member("updatedAt", privileged ? s.updatedAt : (s.publishedAt ?? view.version.createdAt))
        w.comma()
        w.member("publishedAt", s.publishedAt)
        if titleHighlight != nil || descriptionSnippet != nil {
            w.comma()
            w.key("highlight")
            w.raw("{")
            w.member("title", titleHighlight)
            w.comma()
            w.member("description", descriptionSnippet)
            w.raw("}")
        }
        w.raw("}")
    }

    func response(status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var w = JSONWriter()
        try write(into: &w)
        return w.response(status: status, headers: headers)
    }
}

struct ResourcePage {
    var items: [ResourceDTO]
    var total: Int
    var totalExact: Bool
    var page: Int
    var pageSize: Int
    var sort: String
    /// The search terms as understood (absent for plain listings).
    var query: [String]?
    var facets: SearchFacets?

    func response() throws -> Response {
        var w = JSONWriter(capacity: 4096 + items.count * 1024)
        w.raw("{")
        w.key("items")
        w.raw("[")
        for (i, item) in items.enumerated() {
            if i > 0 { w.comma() }
            try item.write(into: &w)
        }
        w.raw("]")
        w.comma()
        w.member("total", total)
        w.comma()
        w.member("totalExact", totalExact)
        w.comma()
        w.member("page", page)
        w.comma()
        w.member("pageSize", pageSize)
        w.comma()
        w.member("sort", sort)
        if let query {
            w.comma()
            w.key("query")
            try w.encodable(query)
        }
        if let facets {
            w.comma()
            w.key("facets")
            try w.encodable(facets)
        }
        w.raw("}")
        return w.response()
    }
}

struct VersionDTO: Encodable {
    let resourceId: String
    let version: ResourceVersion

    enum Keys: String, CodingKey { case resourceId, number, metadata, files, authorId, changeNote, createdAt }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(resourceId, forKey: .resourceId)
        try c.encode(version.number, forKey: .number)
        try c.encode(version.metadata, forKey: .metadata)
        try c.encode(version.files, forKey: .files)
        try c.encode(version.authorId, forKey: .authorId)
        try c.encode(version.changeNote, forKey: .changeNote)
        try c.encode(version.createdAt, forKey: .createdAt)
    }
}
