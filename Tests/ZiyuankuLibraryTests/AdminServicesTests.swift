import Foundation
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuTestSupport

/// The administrative use cases (platform sync, upkeep jobs) as every surface reaches them: only
/// administrators (or the operator at the machine), inputs checked field by field, runs recorded.
@Suite struct AdminServicesTests {
    static func failure(_ body: () throws -> Void) -> DomainError? {
        do {
            try body()
            return nil
        } catch let e as DomainError {
            return e
        } catch {
            Issue.record("not a domain error: \(error)")
            return nil
        }
    }

    @Test func onlyAdministratorsAndTheOperatorMaySyncOrRunJobs() throws {
        let f = try LibraryFixture()
        let sync = PlatformSyncService(library: f.library)
        var everyone = PlatformSyncService.Selection()
        everyone.majorCode = "52"
        for persona in ["owner", "reviewerA", "readerA"] {
            let actor = AdminActor.principal(f.people[persona])
            #expect(Self.failure { _ = try sync.select(everyone, as: actor, dryRun: true) }?.code == .forbidden, "\(persona)")
            #expect(Self.failure { _ = try sync.retry(dead: true, failed: false, ids: [], as: actor) }?.code == .forbidden)
            #expect(Self.failure { _ = try f.library.upkeep.verify(trigger: .api, as: actor) }?.code == .forbidden)
            #expect(throws: DomainError.self) { try AdminActor.admin(f.people[persona]) }
        }
        let admin = try AdminActor.admin(f.people["admin"])
        #expect(try sync.select(everyone, as: admin, dryRun: true).queued.isEmpty, "nothing published yet")
        // The operator acts without a signed-in user; the run is recorded with its trigger.
        let (run, report) = try f.library.upkeep.verify(trigger: .cli, as: .local(userId: nil))
        #expect(run.kind == .verify && run.trigger == .cli && run.outcome == .ok && report.findings.isEmpty)
        #expect(try f.library.upkeep.runs(kind: .verify, limit: 5, as: admin).items.map(\.id) == [run.id])
    }

    @Test func inputsAreCheckedFieldByField() throws {
        let f = try LibraryFixture()
        let sync = PlatformSyncService(library: f.library)
        let admin = try AdminActor.admin(f.people["admin"])
        var bad = PlatformSyncService.Selection()
        bad.ids = [Identifiers.uuidV7(), "../etc"]
        bad.majorCode = "5x"
        bad.organization = "没有这个学校"
        let fields = Self.failure { _ = try sync.select(bad, as: admin, dryRun: false) }?.fields.map(\.field)
        #expect(fields == ["ids[1]", "majorCode", "organizationId"])
        #expect(Self.failure { _ = try sync.select(.init(), as: admin, dryRun: false) }?.fields.map(\.field) == ["ids"])
        // An organization is found by its id or its exact name.
        var bySchool = PlatformSyncService.Selection()
        bySchool.organization = Personas.schoolA
        #expect(try sync.select(bySchool, as: admin, dryRun: true).skipped.isEmpty)
        bySchool.organization = f.people.orgB
        #expect(try sync.select(bySchool, as: admin, dryRun: true).skipped.isEmpty)
        #expect(Self.failure { _ = try sync.retry(dead: false, failed: false, ids: [], as: admin) }?.fields.map(\.field) == ["dead"])
        #expect(Self.failure { _ = try sync.entry(id: Identifiers.uuidV7(), as: admin) }?.code == .notFound)
        // Sync that is not configured says so, and nothing starts.
        #expect(Self.failure { try sync.start(trigger: "api", as: admin, logger: .init(label: "test")) }?.code == .conflict)

        let upkeep = f.library.upkeep
        #expect(Self.failure { _ = try upkeep.gc(graceHours: 0.5, dryRun: true, trigger: .api, as: admin) }?.fields.map(\.field) == ["graceHours"])
        #expect(Self.failure { _ = try upkeep.fixity(budget: 0, trigger: .api, as: admin) }?.fields.map(\.field) == ["budget"])
        let now = Date()
        #expect(
            Self.failure { _ = try upkeep.report(from: now, to: now.addingTimeInterval(-1), trigger: .api, as: admin) }?.fields.map(\.field) == ["from"])
        #expect(Self.failure { _ = try upkeep.runs(kind: nil, limit: 0, as: admin) }?.fields.map(\.field) == ["limit"])
        // Refused inputs record no run.
        #expect(try upkeep.runs(kind: nil, limit: 100, as: admin).items.isEmpty)
    }
}

/// The import report people open in Excel or WPS.
@Suite struct ImportReportTests {
    @Test func theReportIsQuotedAndNeverRunsAFormula() {
        var s = ImportSummary()
        s.problems = [
            ImportProblem(row: 2, key: "=HYPERLINK(\"http://x\",\"点我\")", field: "title", message: "must not be empty"),
            ImportProblem(row: 3, key: nil, field: "files", message: "护理 \"第二版\".mp4, missing"),
            ImportProblem(row: 4, key: "-1+1", field: "key", message: "@SUM(A1)"),
        ]
        let csv = s.problemsCSV()
        #expect(csv.hasPrefix("\u{FEFF}row,key,field,message\r\n"))
        let lines = csv.dropFirst().components(separatedBy: "\r\n")
        #expect(lines[1] == #"2,"'=HYPERLINK(""http://x"",""点我"")","title","must not be empty""#)
        #expect(lines[2] == #"3,"","files","护理 ""第二版"".mp4, missing""#)
        #expect(lines[3] == #"4,"'-1+1","key","'@SUM(A1)""#)
        #expect(lines.count == 5 && lines[4].isEmpty)
    }
}
