import Foundation
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuTestSupport

/// The rules `ResourceService` holds for every surface: file roles, manifests, merging file
/// changes, metadata validation, and creating from uploaded blobs.
@Suite struct ResourceServiceTests {
    static func file(_ name: String, _ mediaType: String, _ role: FileRole) -> NewFile {
        NewFile(name: name, sha256: String(repeating: "a", count: 64), size: 1, mediaType: mediaType, role: role)
    }

    static func manifestError(_ files: [NewFile], _ type: ResourceType = .video) -> DomainError? {
        do {
            try ResourceService.checkManifest(files, resourceType: type)
            return nil
        } catch let e as DomainError {
            return e
        } catch {
            Issue.record("not a DomainError: \(error)")
            return nil
        }
    }

    @Test func defaultRoles() throws {
        #expect(ResourceService.defaultRole(for: "第一课.vtt", hasPrimary: false) == .subtitle)
        #expect(ResourceService.defaultRole(for: "LESSON.SRT", hasPrimary: true) == .subtitle)
        #expect(ResourceService.defaultRole(for: "示范.mp4", hasPrimary: false) == .primary)
        #expect(ResourceService.defaultRole(for: "讲义.pdf", hasPrimary: true) == .attachment)
        #expect(ResourceService.defaultRole(for: "示范.mp4", hasPrimary: true) == .attachment)
        #expect(ResourceService.defaultRole(for: "srt", hasPrimary: false) == .primary, "no extension, not a subtitle")
    }

    @Test func aPlanGivesTheFirstOtherFileThePrimaryRole() throws {
        let f = try LibraryFixture()
        let draft = try f.library.resources.draft(from: SampleMetadata.object(resourceType: .video))
        let webvtt = Array("WEBVTT\n\n00:00.000 --> 00:01.000\n字幕\n".utf8)
        let plan = try ResourceService.plan(
            received: [
                ("字幕.vtt", Int64(webvtt.count), webvtt), ("示范.mp4", 4096, SampleFiles.mp4Header), ("讲义.pdf", 40, SampleFiles.pdf),
                ("英文.srt", 30, Array("1\n00:00:00,000 --> 00:00:01,000\nhi\n".utf8)), ("备用.mp4", 4096, SampleFiles.mp4Header),
            ], for: draft)
        #expect(plan.map(\.role) == [.subtitle, .primary, .attachment, .subtitle, .attachment])
        #expect(plan.map(\.mediaType) == ["text/vtt", "video/mp4", "application/pdf", "application/x-subrip", "video/mp4"])
    }

    @Test func manifestsNeedUniqueNamesOnePrimaryAndAllowedTypes() throws {
        // A valid one.
        #expect(
            Self.manifestError([
                Self.file("示范.mp4", "video/mp4", .primary), Self.file("字幕.vtt", "text/vtt", .subtitle), Self.file("讲义.pdf", "application/pdf", .attachment),
            ]) == nil)

        let duplicate = Self.manifestError([Self.file("示范.mp4", "video/mp4", .primary), Self.file("示范.mp4", "application/pdf", .attachment)])
        #expect(duplicate?.code == .validation)
        #expect(duplicate?.fields.map(\.field) == ["files[1]"])
        #expect(duplicate?.fields.first?.message.contains("duplicate") == true)

        let none = Self.manifestError([Self.file("讲义.pdf", "application/pdf", .attachment)])
        #expect(none?.code == .validation)
        #expect(none?.fields.map(\.field) == ["files"])
        #expect(none?.fields.first?.message.contains("found 0") == true)

        let two = Self.manifestError([Self.file("a.mp4", "video/mp4", .primary), Self.file("b.mp4", "video/mp4", .primary)])
        #expect(two?.code == .validation)
        #expect(two?.fields.first?.message.contains("found 2") == true)

        let empty = Self.manifestError([])
        #expect(empty?.code == .validation && empty?.fields.map(\.field) == ["files"])

        // A PDF is not a video resource's primary file; HTML is never a primary file.
        let pdfAsVideo = Self.manifestError([Self.file("示范.pdf", "application/pdf", .primary)])
        #expect(pdfAsVideo?.code == .fileTypeNotAllowed)
        #expect(pdfAsVideo?.fields.map(\.field) == ["files[0]"])
        let html = Self.manifestError([Self.file("页面.html", "text/html", .primary)], .other)
        #expect(html?.code == .fileTypeNotAllowed)
        // The same PDF is fine as a document's primary file.
        #expect(Self.manifestError([Self.file("示范.pdf", "application/pdf", .primary)], .document) == nil)
    }

    @Test func mergingFileChanges() async throws {
        let f = try LibraryFixture()
        let video = try await f.data.store(SampleFiles.video(4096, seed: 1))
        let notes = try await f.data.store(SampleFiles.pdf("讲义"))
        let view = try f.catalog.createResource(
            owner: f.people["owner"], metadata: try f.data.metadata(resourceType: .video),
            files: [
                NewFile(name: "示范.mp4", sha256: video.sha256, size: video.size, mediaType: "video/mp4", role: .primary),
                NewFile(name: "讲义.pdf", sha256: notes.sha256, size: notes.size, mediaType: "application/pdf", role: .attachment),
            ], changeNote: "")
        let latest = view.version
        let newNotes = BlobInfo(sha256: String(repeating: "b", count: 64), size: 99, head: SampleFiles.pdf("讲义 v2"))
        let newVideo = BlobInfo(sha256: String(repeating: "c", count: 64), size: 5000, head: SampleFiles.mp4Header)

        // Replacing a file keeps its role (the attachment and the primary alike).
        var merged = try ResourceService.mergeFiles(latest, [("讲义.pdf", newNotes), ("示范.mp4", newVideo)], roles: [:], removals: [])
        #expect(merged.map(\.name) == ["示范.mp4", "讲义.pdf"])
        #expect(merged.map(\.role) == [.primary, .attachment])
        #expect(merged.map(\.sha256) == [newVideo.sha256, newNotes.sha256])
        #expect(merged.map(\.size) == [5000, 99])

        // Removing a file that is not there names the field.
        let unknown = #expect(throws: DomainError.self) {
            try ResourceService.mergeFiles(latest, [], roles: [:], removals: ["没有这个.pdf"])
        }
        #expect(unknown?.code == .validation)
        #expect(unknown?.fields.map(\.field) == ["changes.remove"])
        // So does a role for a file that is not there.
        let unknownRole = #expect(throws: DomainError.self) {
            try ResourceService.mergeFiles(latest, [], roles: ["没有这个.mp4": .primary], removals: [])
        }
        #expect(unknownRole?.fields.map(\.field) == ["changes.files"])

        // A new file declared primary demotes the old primary to an attachment.
        merged = try ResourceService.mergeFiles(latest, [("新示范.mp4", newVideo)], roles: ["新示范.mp4": .primary], removals: [])
        #expect(Dictionary(uniqueKeysWithValues: merged.map { ($0.name, $0.role) }) == ["示范.mp4": .attachment, "讲义.pdf": .attachment, "新示范.mp4": .primary])
        // Added without a role: an attachment (there is a primary already).
        merged = try ResourceService.mergeFiles(latest, [("另一个.mp4", newVideo)], roles: [:], removals: [])
        #expect(merged.last?.name == "另一个.mp4" && merged.last?.role == .attachment)
        // Removing the primary without a new one leaves no primary: refused.
        let noPrimary = #expect(throws: DomainError.self) { try ResourceService.mergeFiles(latest, [], roles: [:], removals: ["示范.mp4"]) }
        #expect(noPrimary?.code == .validation && noPrimary?.fields.map(\.field) == ["files"])
        // Removing and re-adding under the same name is a replacement with the default role.
        merged = try ResourceService.mergeFiles(latest, [("讲义.pdf", newNotes)], roles: [:], removals: ["讲义.pdf"])
        #expect(merged.map(\.name) == ["示范.mp4", "讲义.pdf"] && merged.map(\.role) == [.primary, .attachment])
    }

    @Test func metadataWithAnUnknownMajorNamesTheField() throws {
        let f = try LibraryFixture()
        let service = f.library.resources
        let ok = try service.validateMetadata(SampleMetadata.object(majorCodes: ["520601"]))
        #expect(ok.majorCodes == ["520601"])

        let unknown = #expect(throws: DomainError.self) { try service.validateMetadata(SampleMetadata.object(majorCodes: ["520601", "999999"])) }
        #expect(unknown?.code == .validation)
        #expect(unknown?.fields.map(\.field) == ["majorCodes[1]"])
        #expect(unknown?.fields.first?.message.contains("999999") == true)
        #expect(unknown?.message.contains("majorCodes") == true)

        // Errors from the rest of the request come with the metadata's.
        let extra = FieldError(field: "files[0].sha256", message: "no such blob")
        let both = #expect(throws: DomainError.self) {
            try service.validateMetadata(SampleMetadata.object(majorCodes: ["999999"]), extraErrors: [extra])
        }
        #expect(both?.fields.map(\.field) == ["majorCodes[0]", "files[0].sha256"])
        let onlyExtra = #expect(throws: DomainError.self) { try service.validateMetadata(SampleMetadata.object(), extraErrors: [extra]) }
        #expect(onlyExtra?.fields.map(\.field) == ["files[0].sha256"])
    }

    @Test func createFromBlobsTakesOnlyTheCallersOwnUploads() async throws {
        let f = try LibraryFixture()
        let service = f.library.resources
        let bytes = SampleFiles.video(6000, seed: 8)
        let blob = try await f.data.store(bytes, uploadedBy: "teacherB")
        var object = SampleMetadata.object(title: "别人的视频", resourceType: .video)
        object["files"] = .array([.object(["sha256": .string(blob.sha256), "name": .string("示范.mp4")])])
        object["changeNote"] = .string("首次上传")

        let refused = #expect(throws: DomainError.self) { try service.createFromBlobs(owner: f.people["owner"], object: object) }
        #expect(refused?.code == .validation)
        #expect(refused?.fields.map(\.field) == ["files[0].sha256"])
        let admin = f.people["admin"]
        #expect(try f.catalog.listResources(ResourceQuery(), viewer: admin, allowAnonymous: true).total == 0)

        // The uploader may.
        let view = try service.createFromBlobs(owner: f.people["teacherB"], object: object)
        #expect(view.state.ownerId == f.people["teacherB"].userId && view.state.status == .draft)
        #expect(view.version.files == [VersionFile(name: "示范.mp4", size: Int64(bytes.count), mediaType: "video/mp4", sha256: blob.sha256, role: .primary)])
        #expect(view.version.changeNote == "首次上传")
        #expect(try f.catalog.listResources(ResourceQuery(), viewer: admin, allowAnonymous: true).total == 1)
    }
}
