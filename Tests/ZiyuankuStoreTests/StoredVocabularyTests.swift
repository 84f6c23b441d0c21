import Foundation
import GRDB
import Testing
import ZiyuankuCore
import ZiyuankuStore
import ZiyuankuTestSupport

/// A value the catalog cannot read (written by a newer zyk, or by hand) is an error that names
/// it, never read as some default: a role read as "reader" or a status read as "draft" would
/// change who may do what.
@Suite struct StoredVocabularyTests {
    /// Writes through a second connection, as another process would; past the schema's CHECK
    /// constraints, as a newer schema (one more role, one more status) would allow.
    static func write(_ f: DataRootFixture, _ sql: String, _ arguments: StatementArguments) throws {
        let queue = try DatabaseQueue(path: f.root.catalogPath)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            try db.execute(sql: sql, arguments: arguments)
        }
        try queue.close()
    }

    @Test func anUnknownRoleIsAnErrorNotAReader() throws {
        let f = try DataRootFixture()
        let teacher = f.people["teacherA"]
        #expect(try f.catalog.user(id: teacher.userId)?.role == .teacher)
        try Self.write(f, "UPDATE users SET role = ? WHERE id = ?", ["superuser", teacher.userId])
        let error = try #require(throws: DomainError.self) { try f.catalog.user(id: teacher.userId) }
        #expect(error.code == .internal)
        #expect(error.message.contains("'superuser'") && error.message.contains("role"), "\(error.message)")
    }

    @Test func anUnknownStatusIsAnErrorNotADraft() async throws {
        let f = try DataRootFixture()
        let owner = f.people["owner"]
        let blob = try await f.store(SampleFiles.pdf("讲义"))
        let created = try f.catalog.createResource(
            owner: owner, metadata: try f.metadata(title: "状态未知"),
            files: [NewFile(name: "讲义.pdf", sha256: blob.sha256, size: blob.size, mediaType: "application/pdf", role: .primary)], changeNote: "")
        try Self.write(f, "UPDATE resources SET status = ? WHERE id = ?", ["archived-in-2030", created.state.id])
        let error = try #require(throws: DomainError.self) { try f.catalog.state(id: created.state.id) }
        #expect(error.code == .internal && error.message.contains("status"), "\(error.message)")
    }
}
