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
        let imports = services.imports
        r.on(.post, "/v1/imports") { req, ctx in
            let p = try ctx.requireAuthor()
            guard BodyReader.mediaType(req) == "multipart/form-data" else {
                throw DomainError(.unsupportedMediaType, "Send the manifest (.csv or .jsonl) and the files (.zip) as two 'file' parts of multipart/form-data.")
            }
            let uploader = Uploader(services: services)
            let received = try await uploader.receiveMultipart(req, jsonParts: []) { _, _ in }
            let which: (manifest: Int, zip: Int)
            do { which = try ImportService.carriers(received.map(\.name)) } catch {
                for f in received { f.writer.abort() }
                throw error
            }
            let (manifestName, zipName) = (received[which.manifest].name, received[which.zip].name)
            let blobs = try await uploader.commit(received)
            guard let manifest = blobs.first(where: { $0.name == manifestName }), let zip = blobs.first(where: { $0.name == zipName }) else {
                throw DomainError(.internal, "The manifest or the zip was not stored.")
            }
            // Extension-less blob paths: the importer reads CSV or JSON lines by content.
            let job = try await imports.enqueue(
                manifest: .init(sha256: manifest.blob.sha256, size: manifest.blob.size, name: manifestName),
                files: .init(sha256: zip.blob.sha256, size: zip.blob.size, name: zipName), owner: p, logger: ctx.logger)
            return try JSONResponse.make(
                ["id": .string(job.id), "status": .string(job.status.rawValue), "location": .string("/v1/imports/\(job.id)")] as [String: JSONValue],
                status: .accepted, headers: [.location: "/v1/imports/\(job.id)"])
        }
        r.on(.get, "/v1/imports/:id") { _, ctx in
            let job = try imports.job(id: try ctx.parameters.require("id"), by: try ctx.requireUser())
            var body: [String: JSONValue] = ["id": .string(job.id), "status": .string(job.status.rawValue), "createdAt": .string(job.createdAt)]
            if let f = job.finishedAt { body["finishedAt"] = .string(f) }
            if let s = job.summary, let v = try? JSONValue.parse(Array(s.utf8)) { body["summary"] = v }
            if let e = job.error { body["error"] = .string(e) }
            return try JSONResponse.make(body, headers: [.cacheControl: "no-store"])
        }
    }
}
