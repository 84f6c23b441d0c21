import Foundation
import ZiyuankuCore

// The catalog seen as one repository per aggregate. The library's use cases hold these
// protocols, never a database: `Catalog` (SQLite through GRDB) implements them all today, and a
// catalog on PostgreSQL for a province would implement the same set. Each method is one
// transaction that keeps its aggregate's invariants (a version is immutable; the audit entry, the
// outbox entry and the change commit together).

/// Organizations, users and API tokens, and the majors vocabulary they are described with.
public protocol AccountRepository: Sendable {
    func authenticate(token: String, now: Date) throws -> Principal?
    func organizations() throws -> [Organization]
    func organization(id: String) throws -> Organization?
    func organization(named name: String) throws -> Organization?
    func createOrganization(name: String, kind: OrganizationKind, actor: String?) throws -> Organization
    func users(organizationId: String?) throws -> [User]
    func user(id: String) throws -> User?
    func createUser(organizationId: String, name: String, role: Role, tokenLabel: String, actor: String?) throws -> (User, IssuedToken)
    func tokens(userId: String?) throws -> [TokenInfo]
    func token(id: String) throws -> TokenInfo?
    func issueToken(userId: String, label: String, expiresAt: Date?, actor: String?, maxLive: Int?) throws -> IssuedToken
    func revokeToken(id: String, actor: String?) throws -> Bool
    func bootstrapAdminIfNeeded() throws -> IssuedToken?
    func majors(level: EducationLevel?, prefix: String?, itemLevel: String?, limit: Int, offset: Int) throws -> (items: [Major], total: Int)
    func majorInfo(codes: [String]) throws -> [String: MajorInfo]
    func importMajorCatalog(
        csv bytes: [UInt8], source: String, dryRun: Bool, batchSize: Int, progress: (Int, Int) -> Void
    ) throws
        -> Catalog.MajorCatalogImport
}

/// Resources and their immutable versions, and the blobs their files name.
public protocol ResourceRepository: Sendable {
    func state(id: String) throws -> ResourceState?
    func view(id: String, version: Int) throws -> ResourceView?
    /// The resource and the version `pick` chooses (nil: not visible), in one read.
    func resolve(id: String, pick: (ResourceState) throws -> Int?) throws -> ResourceView?
    func readerVersions(id: String) throws -> [Int: Visibility]
    func versionSummaries(id: String, readable: Set<Int>?) throws -> [VersionSummary]
    func createResource(owner: Principal, metadata: ResourceMetadata, files: [NewFile], changeNote: String) throws -> ResourceView
    func saveVersion(
        id: String, by author: Principal, expectedVersion: Int?, changeNote: String, from source: Int?, auditAction: String,
        auditDetails: [String: JSONValue], authorize: (ResourceState) throws -> Void, change: (ResourceVersion) throws -> (ResourceMetadata, [NewFile])
    ) throws -> ResourceView
    func recordBlobUpload(_ blob: BlobInfo, userId: String) throws
    func blobUploaded(sha256: String, by userId: String) throws -> Int64?
    func claimBlob(sha256: String, size: Int64, by p: Principal, allowAnonymous: Bool) throws -> Bool
    func importedKeys(owner: String) throws -> Set<String>
    func createImported(owner: Principal, key: String, metadata: ResourceMetadata, files: [NewFile]) throws -> String?
}

/// The review workflow, deletion and its undoing, download statistics.
public protocol WorkflowRepository: Sendable {
    func transition(
        id: String, action: WorkflowAction, by p: Principal?, reason: String?, expectedVersion: Int?, allowAnonymous: Bool
    ) throws
        -> ResourceView
    func restoreVersion(
        id: String, number: Int, by author: Principal, expectedVersion: Int?, authorize: (ResourceState) throws -> Void
    ) throws
        -> ResourceView
    func diff(id: String, from a: Int, to b: Int) throws -> VersionDiff?
    func softDelete(id: String, by p: Principal, allowAnonymous: Bool) throws
    func undelete(id: String, by p: Principal, retentionDays: Int) throws -> ResourceState
    func purge(id: String, by p: Principal) throws
    func deletedResources(limit: Int) throws -> [ResourceState]
    func reviewQueue(organizationId: String?, status: ResourceStatus, page: Int, pageSize: Int) throws -> (items: [ResourceView], total: Int)
    func downloadDays(resourceId: String, from: String, to: String) throws -> [(day: String, count: Int)]
}

/// The hash-chained audit log.
public protocol AuditLog: Sendable {
    func audit(actor: String?, action: String, resourceId: String?, version: Int?, details: [String: JSONValue]) throws
    func auditEntries(_ q: AuditQuery) throws -> [AuditEntry]
    func verifyAudit(progress: (Int64, Int64) -> Void) throws -> AuditVerification
}

/// Full-text search and filtered listings over what a viewer may see.
public protocol ResourceSearch: Sendable {
    func searchResources(
        _ q: ResourceQuery, text: SearchQuery?, sort: SearchSort, viewer: Principal?, allowAnonymous: Bool, facets: Bool
    ) throws
        -> SearchResult
}

/// Resumable uploads under way.
public protocol ResumableUploadRepository: Sendable {
    func createTusUpload(
        userId: String, length: Int64, metadata: String, filename: String?, expiresIn: TimeInterval, maxOpen: Int?, maxOpenBytes: Int64?
    ) throws -> TusUpload
    func tusUpload(id: String) throws -> TusUpload?
    func advanceTusUpload(id: String, from: Int64, to: Int64, expiresIn: TimeInterval) throws -> Bool
    func completeTusUpload(id: String, blob: BlobInfo, userId: String) throws
    func deleteTusUpload(id: String) throws
    func unfinishedTusCompletions() throws -> [TusUpload]
}

/// Imports sent over HTTP, run in the background.
public protocol ImportJobRepository: Sendable {
    func createImportJob(userId: String) throws -> ImportJob
    func importJob(id: String) throws -> ImportJob?
    func updateImportJob(id: String, status: ImportJobStatus, summary: String?, error: String?) throws
    func markInterruptedImports() throws
    /// Keeps stored files a queued job will read (refreshes their rows, brings them back from
    /// the trash if gc took them).
    func holdBlobs(_ blobs: [(sha256: String, size: Int64, name: String)]) throws
}

/// The recorded runs of the upkeep jobs.
public protocol JobRepository: Sendable {
    func recordRun<R: JobReport>(_ kind: JobKind, trigger: JobTrigger, _ body: () throws -> R) throws -> (run: JobRun, report: R)
    func jobRuns(kind: JobKind?, limit: Int) throws -> [JobRun]
    func lastRuns() throws -> [JobRun]
    func markInterruptedRuns() throws
}

/// The national-platform outbox: what is selected, its entries and their attempts, the runs.
public protocol SyncOutboxRepository: Sendable {
    func selectForSync(_ selection: SyncSelection, by actor: String?, dryRun: Bool) throws -> SyncSelectResult
    func retrySync(dead: Bool, failed: Bool, ids: [String], by actor: String?, now: Date) throws -> Int
    func syncEntries(state: SyncState?, limit: Int) throws -> [SyncEntry]
    func syncEntryDetail(id: String) throws -> SyncEntryDetail?
    func syncCounts() throws -> SyncCounts
    func lastSyncRun() throws -> JSONValue?
    func lastSyncRunEndedAt() throws -> String?
    func syncLockHolder(host: String, staleAfter: Double, now: Date) throws -> String?
    func syncWorkWaiting(host: String, now: Date) throws -> Bool
}

/// Every repository at once: what one catalog (one database) provides.
public typealias CatalogRepositories = AccountRepository & ResourceRepository & WorkflowRepository & AuditLog & ResourceSearch
    & ResumableUploadRepository & ImportJobRepository & JobRepository & SyncOutboxRepository

extension Catalog: AccountRepository, ResourceRepository, WorkflowRepository, AuditLog, ResourceSearch, ResumableUploadRepository,
    ImportJobRepository, JobRepository, SyncOutboxRepository
{}
