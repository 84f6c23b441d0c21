import Foundation
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuTestSupport

/// `WorkflowService`: who has which review queue, and restoring versions.
@Suite struct WorkflowServiceTests {
    @Test func reviewQueuesBelongToReviewersOfTheirOwnOrganization() async throws {
        let f = try LibraryFixture()
        let workflow = f.library.workflow
        let id = try await f.video().state.id
        #expect(try workflow.transition(id: id, action: .submit, by: f.people["owner"], reason: nil, expected: 1).state.status == .inReview)
        func queue(_ persona: String, _ organization: String?) throws -> (ids: [String], total: Int) {
            let q = try workflow.reviewQueue(by: f.people[persona], status: .inReview, organization: organization, page: 1, pageSize: 20)
            return (q.items.map(\.state.id), q.total)
        }
        #expect(try queue("reviewerA", nil) == ([id], 1))
        #expect(try queue("reviewerA", f.people.orgA) == ([id], 1))
        // Another school's queue is not a reviewer's business.
        let other = #expect(throws: DomainError.self) { try queue("reviewerA", f.people.orgB) }
        #expect(other?.code == .forbidden)
        #expect(try queue("reviewerB", nil) == ([], 0))
        // Readers and teachers have no queue at all.
        for persona in ["readerA", "teacherA", "owner"] {
            let refused = #expect(throws: DomainError.self) { try queue(persona, nil) }
            #expect(refused?.code == .forbidden, "\(persona)")
        }
        // Administrators see any school's, or all.
        #expect(try queue("admin", nil) == ([id], 1))
        #expect(try queue("admin", f.people.orgB) == ([], 0))
    }

    @Test func restoringAVersionOutOfRangeIsNotFound() async throws {
        let f = try LibraryFixture()
        let workflow = f.library.workflow
        let owner = f.people["owner"]
        let first = try await f.video(title: "第一版")
        let id = first.state.id
        var m2 = first.version.metadata
        m2.title = "第二版"
        _ = try f.catalog.saveVersion(id: id, by: owner, expectedVersion: 1, changeNote: "", authorize: { _ in }) { latest in
            (m2, latest.files.map(NewFile.init))
        }
        for n in [3, 0, -1, nil] as [Int?] {
            let missing = #expect(throws: DomainError.self) { try workflow.restore(id: id, version: n, by: owner, expected: nil) }
            #expect(missing?.code == .notFound, "version \(String(describing: n))")
            #expect(missing?.message.contains("version") == true, "version \(String(describing: n)): \(String(describing: missing))")
        }
        #expect(try f.catalog.state(id: id)?.currentVersion == 2)

        // In range: version 3 is version 1 again.
        let restored = try workflow.restore(id: id, version: 1, by: owner, expected: 2)
        #expect(restored.version.number == 3 && restored.version.metadata.title == "第一版")
        #expect(restored.version.changeNote == "restored version 1")
        // Restoring from a stale view is refused.
        let stale = #expect(throws: DomainError.self) { try workflow.restore(id: id, version: 1, by: owner, expected: 2) }
        #expect(stale?.code == .preconditionFailed)
        // Someone who may see the resource but not change it is refused before the range is checked.
        _ = try f.catalog.publish(id: id, authorize: { _ in })
        let teacher = #expect(throws: DomainError.self) { try workflow.restore(id: id, version: 99, by: f.people["teacherA"], expected: nil) }
        #expect(teacher?.code == .forbidden)
        #expect(try f.catalog.state(id: id)?.currentVersion == 3)
    }
}
