import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// A name for a throw-away folder under the system's temporary directory. The folder is not
/// created here (whoever opens a data root there creates it, with the permissions the product
/// chooses); it is removed with everything in it when the last reference goes.
public final class ScratchDirectory: Sendable {
    public let url: URL
    public var path: String { url.path }

    public init(prefix: String = "zyk-test") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(Identifiers.uuidV7())")
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The people every test data root starts with: two schools (A, B) and the platform (P), one
/// user per persona, each with a token.
public enum Personas {
    public static let all: [(name: String, org: String, role: Role)] = [
        ("owner", "A", .teacher), ("teacherA", "A", .teacher), ("readerA", "A", .reader), ("reviewerA", "A", .reviewer),
        ("teacherB", "B", .teacher), ("readerB", "B", .reader), ("reviewerB", "B", .reviewer), ("admin", "P", .admin),
    ]

    public static let schoolA = "康复职业技术学院"
    public static let schoolB = "某某卫生学校"
    public static let platform = "平台"

    /// Creates the organizations and users of `all` in `catalog`.
    public static func seed(_ catalog: Catalog) throws -> SeededPeople {
        let orgA = try catalog.createOrganization(name: schoolA, kind: .higherVocational).id
        let orgB = try catalog.createOrganization(name: schoolB, kind: .secondaryVocational).id
        let orgP = try catalog.createOrganization(name: platform, kind: .platform).id
        var people = SeededPeople(orgA: orgA, orgB: orgB, orgP: orgP)
        for p in all {
            let org = p.org == "A" ? orgA : p.org == "B" ? orgB : orgP
            let (u, t) = try catalog.createUser(organizationId: org, name: p.name, role: p.role)
            people.tokens[p.name] = t.secret
            people.principals[p.name] = Principal(userId: u.id, name: u.name, role: u.role, organizationId: org, tokenId: t.info.id)
        }
        return people
    }
}

/// What `Personas.seed` created: organization ids, and each persona's token and principal.
public struct SeededPeople: Sendable {
    public var orgA: String
    public var orgB: String
    public var orgP: String
    /// persona -> bearer token
    public var tokens: [String: String] = [:]
    public var principals: [String: Principal] = [:]

    /// The principal of a persona of `Personas.all` (a typo is a test bug: it traps).
    public subscript(_ persona: String) -> Principal {
        guard let p = principals[persona] else { preconditionFailure("no persona named \(persona)") }
        return p
    }
}

/// A real, throw-away data root opened at the store level: its catalog (migrated), its blob
/// store and the seeded personas. For tests below the library and the server.
public final class DataRootFixture: Sendable {
    public let scratch: ScratchDirectory
    public let root: DataRoot
    public let catalog: Catalog
    public let blobs: FileBlobStore
    public let people: SeededPeople

    public init(prefix: String = "zyk-store-test") throws {
        scratch = ScratchDirectory(prefix: prefix)
        root = DataRoot(path: scratch.path)
        catalog = try Catalog.open(root: root)
        blobs = FileBlobStore(root: root)
        people = try Personas.seed(catalog)
    }

    /// Stores bytes as a real blob (through a `BlobWriter`) and, when `uploadedBy` is given,
    /// records that persona as having uploaded them.
    public func store(_ bytes: [UInt8], uploadedBy persona: String? = nil) async throws -> BlobInfo {
        let blob = try await SampleFiles.store(bytes, in: blobs)
        if let persona { try catalog.recordBlobUpload(blob, userId: people[persona].userId) }
        return blob
    }

    /// Valid metadata (see `SampleMetadata.object`), majors checked against this catalog.
    public func metadata(
        title: String = "康复训练示范", resourceType: ResourceType = .document, visibility: Visibility = .public
    ) throws -> ResourceMetadata {
        try SampleMetadata.record(SampleMetadata.object(title: title, resourceType: resourceType, visibility: visibility), catalog: catalog)
    }
}

/// Bytes that sniff as what their names say.
public enum SampleFiles {
    public static let mp4Header: [UInt8] = [0, 0, 0, 0x20] + Array("ftypisom".utf8) + [0, 0, 2, 0] + Array("isomiso2avc1mp41".utf8)

    /// An MP4 of `size` bytes (at least its header); `seed` varies the bytes after the header.
    public static func video(_ size: Int, seed: UInt8 = 1) -> [UInt8] {
        mp4Header + (0..<max(0, size - mp4Header.count)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    public static let pdf: [UInt8] = Array("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n".utf8)

    /// A distinct small PDF (its digest differs for each `tag`).
    public static func pdf(_ tag: String) -> [UInt8] { Array("%PDF-1.7\n% \(tag)\n%%EOF\n".utf8) }

    /// Stores bytes as a real blob through the blob store (hashed, fsynced, renamed).
    public static func store(_ bytes: [UInt8], in blobs: FileBlobStore, maxSize: Int64 = 1 << 20) async throws -> BlobInfo {
        let w = try blobs.makeWriter(maxSize: maxSize)
        try await w.write(bytes)
        return try await w.finish()
    }
}

/// Metadata objects as clients send them, and records validated against a catalog's majors.
public enum SampleMetadata {
    public static func object(
        title: String = "康复训练示范", description: String = "说明", keywords: [String] = ["康复"], resourceType: ResourceType = .document,
        majorCodes: [String] = ["520601"], copyrightHolder: String = Personas.schoolA, visibility: Visibility = .public
    ) -> [String: JSONValue] {
        [
            "title": .string(title), "description": .string(description), "keywords": .array(keywords.map { .string($0) }),
            "resourceType": .string(resourceType.rawValue), "granularity": .string("asset"), "educationLevel": .string("higherVocational"),
            "majorCodes": .array(majorCodes.map { .string($0) }),
            "authors": .array([.object(["name": .string("王老师"), "role": .string("author")])]), "copyrightHolder": .string(copyrightHolder),
            "license": .string("CC-BY-4.0"), "originality": .string("original"), "visibility": .string(visibility.rawValue),
        ]
    }

    /// The object validated as the product validates it (majors looked up in `catalog`).
    public static func record(_ object: [String: JSONValue], catalog: Catalog) throws -> ResourceMetadata {
        var codes: [String] = []
        if case .array(let items)? = object["majorCodes"] { for case .string(let s) in items { codes.append(s) } }
        let majors = try catalog.majorInfo(codes: codes)
        return try MetadataValidator.validate(object, lookupMajor: { majors[$0] }).get()
    }
}

extension DataRoot {
    /// Files under `blobs/` at the depth the store keeps them (`ab/cd/<sha256>`), as relative paths.
    public func blobFileNames() -> [String] {
        let e = FileManager.default.enumerator(atPath: blobsPath)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            if p.split(separator: "/").count == 3 { out.append(p) }
        }
        return out.sorted()
    }

    /// Names in `tmp/` that start with `prefix` (`upload-` for blob writers, `tus-` for resumable uploads).
    public func temporaryFileNames(prefix: String = "upload-") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: tmpPath)) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// Names in `trash/`.
    public func trashFileNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: trashPath)) ?? []).sorted()
    }
}
