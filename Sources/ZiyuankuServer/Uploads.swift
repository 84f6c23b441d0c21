import Foundation
import Hummingbird
import NIOCore
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// A file part received into temporary space (not yet in the blob store).
struct ReceivedFile {
    var name: String
    var writer: BlobWriter
    var index: Int
}

/// Receives request bodies into blobs: raw bodies and `multipart/form-data`, streamed chunk
/// by chunk, never collected. Anything received by a request that then fails is discarded.
struct Uploader {
    let services: AppServices
    var maxBytes: Int64 { services.config.maxUploadBytes }

    func checkDeclaredLength(_ request: Request) throws {
        if let n = try BodyReader.declaredLength(request), n > maxBytes {
            throw DomainError(
                .payloadTooLarge, "Uploads are limited to \(maxBytes) bytes; this request declares \(n). Nothing was read.",
                extra: ["limit": .number(Double(maxBytes))])
        }
    }

    /// Streams a raw body into the blob store.
    func receiveRaw(_ request: Request) async throws -> BlobInfo {
        try checkDeclaredLength(request)
        let expected = try BodyReader.expectedSHA256(request)
        let writer = try services.library.uploads.writer()
        do {
            for try await chunk in request.body {
                try await writer.write(chunk)
            }
            let blob = try await writer.finish(expectedSHA256: expected)
            services.metrics.uploadBytes.increment(by: blob.size)
            services.metrics.uploadsCompleted.increment()
            return blob
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Streams a `multipart/form-data` body. JSON parts named in `jsonParts` are parsed and
    /// handed to `onJSON` as soon as they end (so metadata sent first is validated before any
    /// file bytes are read); `file` parts go to temporary files. Returns the files in order,
    /// still in temporary space: the caller commits or aborts them.
    func receiveMultipart(
        _ request: Request, jsonParts: Set<String>, onJSON: (String, [String: JSONValue]) throws -> Void
    ) async throws -> [ReceivedFile] {
        guard let ct = request.headers[.contentType], let boundary = MultipartParser.boundary(fromContentType: ct) else {
            throw DomainError(.unsupportedMediaType, "Send multipart/form-data with a boundary parameter.")
        }
        try checkDeclaredLength(request)
        var parser: MultipartParser
        do { parser = try MultipartParser(boundary: boundary) } catch { throw DomainError(.malformedMultipart, error.reason) }
        var files: [ReceivedFile] = []
        var jsonSeen = Set<String>()
        enum Current { case none, json(String, [UInt8]), file(Int) }
        var current = Current.none
        var total: Int64 = 0
        let jsonLimit = services.config.maxJSONBytes
        do {
            for try await chunk in request.body {
                total += Int64(chunk.readableBytes)
                if total > maxBytes {
                    throw DomainError(.payloadTooLarge, "Uploads are limited to \(maxBytes) bytes.", extra: ["limit": .number(Double(maxBytes))])
                }
                let events: [MultipartParser.Event]
                do { events = try parser.feed(chunk.readableBytesView) } catch { throw DomainError(.malformedMultipart, error.reason) }
                for event in events {
                    switch event {
                    case .begin(let h):
                        let name = h.name ?? ""
                        if jsonParts.contains(name) {
                            guard jsonSeen.insert(name).inserted else {
                                throw DomainError(.malformedMultipart, "The part '\(name)' appears more than once.")
                            }
                            current = .json(name, [])
                        } else if name == "file" {
                            let index = files.count
                            guard let raw = h.filename, !raw.isEmpty else {
                                throw DomainError.validation([.init(field: "file[\(index)]", message: "a file part needs a filename")])
                            }
                            guard let clean = Filenames.clean(raw) else {
                                throw DomainError.validation([.init(field: "file[\(index)]", message: "the filename has no usable characters")])
                            }
                            files.append(ReceivedFile(name: clean, writer: try services.library.uploads.writer(), index: index))
                            current = .file(files.count - 1)
                        } else {
                            let known = (jsonParts.sorted() + ["file"]).joined(separator: ", ")
                            throw DomainError(.malformedMultipart, "Unknown part '\(name.prefix(100))'; expected: \(known).")
                        }
                    case .body(let bytes):
                        switch current {
                        case .json(let name, var collected):
                            collected += bytes
                            if collected.count > jsonLimit {
                                throw DomainError(.payloadTooLarge, "The '\(name)' part is limited to \(jsonLimit) bytes.")
                            }
                            current = .json(name, collected)
                        case .file(let i):
                            try await files[i].writer.write(bytes)
                        case .none:
                            break
                        }
                    case .end:
                        if case .json(let name, let collected) = current {
                            let object: [String: JSONValue]
                            do { object = try BodyReader.parseObject(collected) } catch let e as DomainError {
                                throw DomainError(e.code, "The '\(name)' part: \(e.message)")
                            }
                            try onJSON(name, object)
                        }
                        current = .none
                    }
                }
            }
            do { try parser.finish() } catch { throw DomainError(.malformedMultipart, error.reason) }
            return files
        } catch {
            for f in files { f.writer.abort() }
            throw error
        }
    }

    /// Moves received files into the blob store (fsync, rename, fsync folder).
    func commit(_ files: [ReceivedFile]) async throws -> [(name: String, blob: BlobInfo)] {
        var out: [(String, BlobInfo)] = []
        do {
            for f in files {
                let blob = try await f.writer.finish()
                services.metrics.uploadBytes.increment(by: blob.size)
                services.metrics.uploadsCompleted.increment()
                out.append((f.name, blob))
            }
        } catch {
            for f in files { f.writer.abort() }
            throw error
        }
        return out
    }
}

struct BlobRoutes {
    let services: AppServices

    func register(_ r: Routes) {
        // Instant upload (秒传): attach bytes the library already has, without sending them.
        r.on(.post, "/v1/blobs/lookup") { req, ctx in
            let p = try ctx.requireAuthor()
            let body = try await BodyReader.jsonObject(req, limit: services.config.maxJSONBytes)
            let found = try services.library.uploads.lookup(by: p, body)
            // The same answer for unknown bytes and for bytes only others may read.
            return try JSONResponse.make(
                ["sha256": .string(found.sha256), "size": .number(Double(found.size)), "available": .bool(found.available)] as [String: JSONValue])
        }
        r.on(.post, "/v1/blobs") { req, ctx in
            let p = try ctx.requireAuthor()
            if let type = BodyReader.mediaType(req), type.hasPrefix("multipart/") {
                throw DomainError(.unsupportedMediaType, "POST /v1/blobs takes the raw file bytes (application/octet-stream), not \(type).")
            }
            let blob = try await Uploader(services: services).receiveRaw(req)
            try services.library.uploads.recordUpload(blob, by: p)
            let sniffed = MediaSniffer.mediaType(head: blob.head, filename: "")
            return try JSONResponse.make(
                ["sha256": blob.sha256.jsonValue, "size": blob.size.jsonValue, "mediaType": sniffed.jsonValue] as [String: JSONValue],
                status: .created)
        }
    }
}
