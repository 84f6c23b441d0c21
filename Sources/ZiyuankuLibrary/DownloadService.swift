import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// Files going out: which stored bytes a download of a version's file serves, whether it is
/// public, and what a fetch leaves behind — a download counted once per client and file within
/// a window, and an audit entry for any fetch of what is not public. One per process (it holds
/// the counts not yet written).
public struct DownloadService: Sendable {
    let library: Library
    /// Download counts buffered in memory, written every few seconds and at shutdown.
    public let counter: DownloadCounter

    public init(library: Library) {
        self.library = library
        counter = DownloadCounter(catalog: library.catalog)
    }

    /// A version's file as a download serves it.
    public struct Served: Sendable {
        public var file: VersionFile
        /// Where its bytes are.
        public var path: String
        /// The live version of a public resource; older published versions and everything not
        /// public are served privately and audited.
        public var isPublic: Bool
        /// When the version was saved (what `Last-Modified` says).
        public var modified: Date
    }

    /// The file `name` (as sent, or in its normalized form) of the version in `view`;
    /// `notFound("file")` when the version has no such file.
    public func file(named name: String, in view: ResourceView) throws -> Served {
        guard let file = view.version.files.first(where: { $0.name == name || $0.name == TextCleaning.normalize(name) }) else {
            throw DomainError.notFound("file")
        }
        guard let path = library.blobs.localPath(of: file.sha256) else {
            throw DomainError(.internal, "The stored bytes of \(file.name) are missing; an administrator has been told (run zyk fixity).")
        }
        let state = view.state
        return Served(
            file: file, path: path, isPublic: state.visibility == .public && view.version.number == state.publishedVersion,
            modified: Timestamp.parse(view.version.createdAt) ?? Date(timeIntervalSince1970: 0))
    }

    /// Notes a fetch of `served` by `client` (a token id, or an anonymous client's address and
    /// user agent): it counts as a download when it starts at byte 0 and none was counted for
    /// this client and file within the window; the first fetch in the window of what is not
    /// public is audited, whatever the range.
    public func recordFetch(_ served: Served, of view: ResourceView, by principal: Principal?, client: String, fromStart: Bool) throws {
        let seen = counter.record(resourceId: view.state.id, file: served.file.name, client: client, fromStart: fromStart)
        if seen.first && !served.isPublic {
            let log: any AuditLog = library.catalog
            try log.audit(
                actor: principal?.userId, action: "resource.download", resourceId: view.state.id, version: view.version.number,
                details: ["file": .string(served.file.name), "sha256": .string(served.file.sha256)])
        }
    }
}
