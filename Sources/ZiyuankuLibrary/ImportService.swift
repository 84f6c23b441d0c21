import Foundation
import Logging
import ZiyuankuCore
import ZiyuankuStore

/// Imports sent over a surface (`POST /v1/imports`): a manifest and a zip, already stored as
/// blobs, imported in the background one at a time server-wide (each can unpack gigabytes),
/// with a job its sender (or an administrator) follows. One instance per process.
public final class ImportService: Sendable {
    let library: Library
    private let queue = SerialQueue()

    public init(library: Library) { self.library = library }

    /// The two files an import needs, by name: which is the manifest (.csv, .jsonl, .json or
    /// .txt) and which the zip of files; a validation error (field `file`) unless exactly one
    /// of each was sent.
    public static func carriers(_ names: [String]) throws -> (manifest: Int, zip: Int) {
        func ext(_ name: String) -> String { Filenames.fileExtension(name).lowercased() }
        let manifests = names.indices.filter { ["csv", "jsonl", "json", "txt"].contains(ext(names[$0])) }
        let zips = names.indices.filter { ext(names[$0]) == "zip" }
        guard manifests.count == 1, zips.count == 1, names.count == 2 else {
            throw DomainError.validation([.init(field: "file", message: "send exactly two files: one manifest (.csv or .jsonl) and one .zip")])
        }
        return (manifests[0], zips[0])
    }

    /// A stored file that carries an import (its name as sent).
    public struct Carrier: Sendable {
        public var sha256: String
        public var size: Int64
        public var name: String
        public init(sha256: String, size: Int64, name: String) {
            self.sha256 = sha256
            self.size = size
            self.name = name
        }
    }

    /// Queues the import of `manifest` and `files` as resources of `owner`; returns its job.
    public func enqueue(manifest: Carrier, files: Carrier, owner: Principal, logger: Logger) async throws -> ImportJob {
        _ = try owner.requireAuthor()
        let catalog: any ImportJobRepository = library.catalog
        let job = try catalog.createImportJob(userId: owner.userId)
        let library = self.library
        await queue.enqueue {
            do {
                // The carriers may have waited in the queue: hold them (refresh their rows,
                // back from the trash if gc took them) before reading them.
                try catalog.holdBlobs([(manifest.sha256, manifest.size, manifest.name), (files.sha256, files.size, files.name)])
                guard let manifestPath = library.blobs.localPath(of: manifest.sha256), let zipPath = library.blobs.localPath(of: files.sha256) else {
                    throw DomainError(.conflict, "The uploaded manifest or zip is no longer stored; send them again.")
                }
                try catalog.updateImportJob(id: job.id, status: .running, summary: nil, error: nil)
                var limits = ZipLimits()
                limits.maxTotalBytes = library.config.maxUploadBytes
                var summary = try await Importer(library: library).run(
                    manifest: manifestPath, files: zipPath, owner: owner, dryRun: false, limits: limits, manifestLabel: manifest.name,
                    filesLabel: files.name)
                if summary.problems.count > 1000 { summary.problems = Array(summary.problems.prefix(1000)) }  // the first 1,000 (failed counts all)
                let text = String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)
                try catalog.updateImportJob(id: job.id, status: .done, summary: text, error: nil)
            } catch {
                let message = (error as? DomainError)?.message ?? "the import stopped: \(type(of: error))"
                try? catalog.updateImportJob(id: job.id, status: .failed, summary: nil, error: message)
                logger.warning("import failed", metadata: ["job": "\(job.id)", "error": "\(TextCleaning.oneLine("\(error)", max: 1000))"])
            }
            // The manifest and the zip were only carriers. They are not unlinked here: an
            // upload of the same bytes may be committing right now; gc removes them once
            // nothing uses them and the grace period has passed (its trash protocol re-checks).
        }
        return job
    }

    /// A job, for its sender or an administrator; `notFound` for anyone else.
    public func job(id: String, by p: Principal) throws -> ImportJob {
        let jobs: any ImportJobRepository = library.catalog
        guard Identifiers.isUUID(id), let job = try jobs.importJob(id: id), job.userId == p.userId || p.role == .admin else {
            throw DomainError.notFound("import")
        }
        return job
    }
}

/// Runs operations one after another, each in its own task.
actor SerialQueue {
    private var tail: Task<Void, Never>?

    func enqueue(_ operation: @escaping @Sendable () async -> Void) {
        let previous = tail
        tail = Task.detached {
            await previous?.value
            await operation()
        }
    }
}
