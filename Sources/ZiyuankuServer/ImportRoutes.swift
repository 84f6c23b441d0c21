import Foundation
import Hummingbird
import Logging
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Bulk import over HTTP: `POST /v1/imports` takes a manifest (.csv or .jsonl) and a .zip of
/// files as two `file` parts, answers 202 with a job to poll at `GET /v1/imports/{id}`.
struct ImportRoutes {
    let services: AppServices

    func register(_ r: Routes) {
        r.on(.post, "/v1/imports") { req, ctx in
            let p = try ctx.requireAuthor()
            guard BodyReader.mediaType(req) == "multipart/form-data" else {
                throw DomainError(.unsupportedMediaType, "Send the manifest (.csv or .jsonl) and the files (.zip) as two 'file' parts of multipart/form-data.")
            }
            let uploader = Uploader(services: services)
            let received = try await uploader.receiveMultipart(req, jsonParts: []) { _, _ in }
            func ext(_ name: String) -> String { Filenames.fileExtension(name).lowercased() }
            let manifests = received.filter { ["csv", "jsonl", "json", "txt"].contains(ext($0.name)) }
            let zips = received.filter { ext($0.name) == "zip" }
            guard manifests.count == 1, zips.count == 1, received.count == 2 else {
                for f in received { f.writer.abort() }
                throw DomainError.validation([.init(field: "file", message: "send exactly two files: one manifest (.csv or .jsonl) and one .zip")])
            }
            let blobs = try await uploader.commit(received)
            let manifestName = manifests[0].name, zipName = zips[0].name
            guard let manifestBlob = blobs.first(where: { $0.name == manifestName }), let zipBlob = blobs.first(where: { $0.name == zipName }) else {
                throw DomainError.validation([.init(field: "file", message: "send exactly two files: one manifest (.csv or .jsonl) and one .zip")])
            }
            // Extension-less blob paths: the importer reads CSV or JSON lines by content.
            let job = try services.catalog.createImportJob(userId: p.userId)
            let services = self.services
            let logger = ctx.logger
            // One import at a time, server-wide: the others wait queued (each can unpack gigabytes).
            await services.imports.enqueue {
                do {
                    // The carriers may have waited in the queue: hold them (refresh their rows,
                    // back from the trash if gc took them) before reading them.
                    try services.catalog.holdBlobs([
                        (manifestBlob.blob.sha256, manifestBlob.blob.size, manifestName), (zipBlob.blob.sha256, zipBlob.blob.size, zipName),
                    ])
                    guard let manifestPath = services.blobs.localPath(of: manifestBlob.blob.sha256),
                        let zipPath = services.blobs.localPath(of: zipBlob.blob.sha256)
                    else { throw DomainError(.conflict, "The uploaded manifest or zip is no longer stored; send them again.") }
                    try services.catalog.updateImportJob(id: job.id, status: "running")
                    var limits = ZipLimits()
                    limits.maxTotalBytes = services.config.maxUploadBytes
                    var summary = try await Importer(library: services.library).run(
                        manifest: manifestPath, files: zipPath, owner: p, dryRun: false, limits: limits,
                        manifestLabel: manifestName, filesLabel: zipName)
                    if summary.problems.count > 1000 { summary.problems = Array(summary.problems.prefix(1000)) }  // the first 1,000 (failed counts all)
                    let text = String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)
                    try services.catalog.updateImportJob(id: job.id, status: "done", summary: text)
                } catch {
                    let message = (error as? DomainError)?.message ?? "the import stopped: \(type(of: error))"
                    try? services.catalog.updateImportJob(id: job.id, status: "failed", error: message)
                    logger.warning("import failed", metadata: ["job": "\(job.id)", "error": "\(TextCleaning.oneLine("\(error)", max: 1000))"])
                }
                // The manifest and the zip were only carriers. They are not unlinked here: an
                // upload of the same bytes may be committing right now; gc removes them once
                // nothing uses them and the grace period has passed (its trash protocol re-checks).
            }
            return try JSONResponse.make(
                ["id": .string(job.id), "status": .string("queued"), "location": .string("/v1/imports/\(job.id)")] as [String: JSONValue],
                status: .accepted, headers: [.location: "/v1/imports/\(job.id)"])
        }
        r.on(.get, "/v1/imports/:id") { _, ctx in
            let p = try ctx.requireUser()
            let id = try ctx.parameters.require("id")
            guard Identifiers.isUUID(id), let job = try services.catalog.importJob(id: id), job.userId == p.userId || p.role == .admin else {
                throw DomainError.notFound("import")
            }
            var body: [String: JSONValue] = ["id": .string(job.id), "status": .string(job.status), "createdAt": .string(job.createdAt)]
            if let f = job.finishedAt { body["finishedAt"] = .string(f) }
            if let s = job.summary, let v = try? JSONValue.parse(Array(s.utf8)) { body["summary"] = v }
            if let e = job.error { body["error"] = .string(e) }
            return try JSONResponse.make(body, headers: [.cacheControl: "no-store"])
        }
    }
}

/// Runs background imports one after another.
actor ImportQueue {
    private var tail: Task<Void, Never>?

    func enqueue(_ operation: @escaping @Sendable () async -> Void) {
        let previous = tail
        tail = Task.detached {
            await previous?.value
            await operation()
        }
    }
}
