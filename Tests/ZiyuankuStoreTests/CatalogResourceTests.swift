import Foundation
import Testing
import ZiyuankuCore
import ZiyuankuStore
import ZiyuankuTestSupport

/// Catalog writes and reads of resources and versions, below the library's rules.
@Suite struct CatalogResourceTests {
    static func pdfFile(_ name: String, _ blob: BlobInfo, role: FileRole = .primary) -> NewFile {
        NewFile(name: name, sha256: blob.sha256, size: blob.size, mediaType: "application/pdf", role: role)
    }

    @Test func aCreatedResourceIsADraftAtVersionOneAndKeepsEveryVersion() async throws {
        let f = try DataRootFixture()
        let owner = f.people["owner"]
        let blob = try await f.store(SampleFiles.pdf("讲义 v1"))
        let m1 = try f.metadata(title: "康复讲义")
        let created = try f.catalog.createResource(owner: owner, metadata: m1, files: [Self.pdfFile("讲义.pdf", blob)], changeNote: "初稿")
        let id = created.state.id
        #expect(Identifiers.isUUID(id))

        let v1 = try #require(try f.catalog.view(id: id, version: 1))
        #expect(v1.state.status == .draft && v1.state.currentVersion == 1 && v1.state.publishedVersion == nil)
        #expect(v1.state.ownerId == owner.userId && v1.state.organizationId == owner.organizationId)
        #expect(v1.version.number == 1 && v1.version.metadata == m1)
        #expect(v1.version.files == [VersionFile(name: "讲义.pdf", size: blob.size, mediaType: "application/pdf", sha256: blob.sha256, role: .primary)])
        #expect(v1.version.authorId == owner.userId && v1.version.changeNote == "初稿")
        #expect(try f.catalog.view(id: id, version: 2) == nil)
        #expect(try f.catalog.view(id: Identifiers.uuidV7(), version: 1) == nil)
        var summaries = try f.catalog.versionSummaries(id: id, readable: nil)
        #expect(summaries.map(\.number) == [1] && summaries.map(\.fileCount) == [1] && summaries.map(\.published) == [false])

        // Version 2: new metadata and an added attachment; version 1 stays as it was.
        var m2 = m1
        m2.title = "康复讲义（修订）"
        let appendix = try await f.store(SampleFiles.pdf("附录"))
        let saved = try f.catalog.saveVersion(id: id, by: owner, expectedVersion: 1, changeNote: "修订", authorize: { _ in }) { latest in
            #expect(latest.number == 1)
            return (m2, latest.files.map(NewFile.init) + [Self.pdfFile("附录.pdf", appendix, role: .attachment)])
        }
        #expect(saved.version.number == 2 && saved.state.currentVersion == 2 && saved.state.status == .draft)
        #expect(saved.version.files.map(\.name) == ["讲义.pdf", "附录.pdf"])
        #expect(try f.catalog.view(id: id, version: 1)?.version.metadata.title == "康复讲义")
        #expect(try f.catalog.view(id: id, version: 2)?.version.metadata.title == "康复讲义（修订）")

        _ = try f.catalog.publish(id: id, authorize: { _ in })
        #expect(try f.catalog.state(id: id)?.publishedVersion == 2)
        summaries = try f.catalog.versionSummaries(id: id, readable: nil)
        #expect(summaries.map(\.number) == [1, 2] && summaries.map(\.fileCount) == [1, 2] && summaries.map(\.published) == [false, true])
        #expect(try f.catalog.versionSummaries(id: id, readable: [2]).map(\.number) == [2])
        #expect(summaries.map(\.changeNote) == ["初稿", "修订"])
    }

    @Test func aStaleExpectedVersionIsRefusedAndNothingIsSaved() async throws {
        let f = try DataRootFixture()
        let owner = f.people["owner"]
        let blob = try await f.store(SampleFiles.pdf)
        let m = try f.metadata()
        let id = try f.catalog.createResource(owner: owner, metadata: m, files: [Self.pdfFile("a.pdf", blob)], changeNote: "").state.id
        func save(expected: Int?) throws -> ResourceView {
            try f.catalog.saveVersion(id: id, by: owner, expectedVersion: expected, changeNote: "", authorize: { _ in }) { latest in
                (latest.metadata, latest.files.map(NewFile.init))
            }
        }
        #expect(try save(expected: 1).version.number == 2)

        // Someone still looking at version 1.
        let stale = #expect(throws: DomainError.self) { try save(expected: 1) }
        #expect(stale?.code == .preconditionFailed)
        #expect(stale?.extra["currentVersion"] == .number(2))
        #expect(try f.catalog.state(id: id)?.currentVersion == 2)
        #expect(try f.catalog.view(id: id, version: 3) == nil)

        // The same for a workflow action.
        let staleSubmit = #expect(throws: DomainError.self) {
            try f.catalog.transition(id: id, action: .submit, by: owner, expectedVersion: 1, allowAnonymous: true)
        }
        #expect(staleSubmit?.code == .preconditionFailed)
        #expect(try f.catalog.state(id: id)?.status == .draft)

        // With the current version the action goes through; in review, saves are a conflict.
        #expect(try f.catalog.transition(id: id, action: .submit, by: owner, expectedVersion: 2, allowAnonymous: true).state.status == .inReview)
        let inReview = #expect(throws: DomainError.self) { try save(expected: 2) }
        #expect(inReview?.code == .conflict)
        #expect(inReview?.extra["currentStatus"] == .string("inReview"))
        // Without an expected version nothing is checked but the state.
        #expect(throws: DomainError.self) { try save(expected: nil) }
        #expect(try f.catalog.state(id: id)?.currentVersion == 2)
    }

    @Test func aSaveNeedsItsBytesAndBringsTrashedOnesBack() async throws {
        let f = try DataRootFixture()
        let owner = f.people["owner"]
        let m = try f.metadata()
        let admin = f.people["admin"]
        // Bytes that were never stored: refused, and no resource appears.
        let missing = BlobInfo(sha256: Identifiers.sha256Hex(Array("never stored".utf8)), size: 12, head: [])
        let refused = #expect(throws: DomainError.self) {
            try f.catalog.createResource(owner: owner, metadata: m, files: [Self.pdfFile("a.pdf", missing)], changeNote: "")
        }
        #expect(refused?.code == .conflict)
        #expect(try f.catalog.listResources(ResourceQuery(), viewer: admin, allowAnonymous: true).total == 0)

        // Bytes gc just moved to the trash: the save brings them back first.
        let blob = try await f.store(SampleFiles.pdf("trashed"))
        try f.blobs.prepareTrash()
        try f.blobs.moveToTrash(blob.sha256)
        #expect(f.blobs.localPath(of: blob.sha256) == nil)
        let view = try f.catalog.createResource(owner: owner, metadata: m, files: [Self.pdfFile("b.pdf", blob)], changeNote: "")
        #expect(view.version.files.map(\.sha256) == [blob.sha256])
        #expect(f.blobs.localPath(of: blob.sha256) != nil)
        #expect(f.root.trashFileNames().isEmpty)
        #expect(try f.catalog.listResources(ResourceQuery(), viewer: admin, allowAnonymous: true).total == 1)
    }
}
