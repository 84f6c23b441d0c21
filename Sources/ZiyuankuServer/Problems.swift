import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

extension DomainError.Code {
    /// The one table from domain codes to HTTP statuses.
    var httpStatus: Int {
        switch self {
        case .badRequest, .malformedJSON, .malformedMultipart, .digestMismatch: 400
        case .validation: 422
        case .unsupportedMediaType, .fileTypeNotAllowed: 415
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .conflict: 409
        case .preconditionFailed: 412
        case .preconditionRequired: 428
        case .payloadTooLarge: 413
        case .rangeNotSatisfiable: 416
        case .insufficientStorage: 507
        case .unavailable: 503
        case .gone: 410
        case .locked: 423
        case .checksumMismatch: 460  // tus 1.0 checksum extension
        case .requestTimeout: 408
        case .quotaExceeded: 403
        case .tooManyRequests: 429
        case .internal: 500
        }
    }

    /// The stable problem `type` (RFC 9457).
    var typeURI: String { "https://ziyuanku.dev/problems/\(rawValue)" }
}

/// A domain error with the HTTP header fields that belong to this one answer (`Allow`,
/// `Content-Range`, `Tus-Resumable`, `Connection: close`, a specific `WWW-Authenticate`).
/// Only the server builds these; everything below it throws plain `DomainError`s.
struct HTTPProblem: Error, HTTPResponseError, CustomStringConvertible {
    var error: DomainError
    var headers: [(String, String)]

    init(_ error: DomainError, headers: [(String, String)]) {
        self.error = error
        self.headers = headers
    }

    var status: HTTPResponse.Status { .init(code: error.code.httpStatus) }
    var description: String { error.description }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        problemResponse(instance: request.uri.path, requestId: context.id)
    }

    /// Adds a header field unless the answer already has one of that name.
    func adding(_ name: String, _ value: String) -> HTTPProblem {
        var copy = self
        if !headers.contains(where: { $0.0.lowercased() == name.lowercased() }) { copy.headers.append((name, value)) }
        return copy
    }

    /// The header fields that follow from the domain error itself, then this answer's own.
    var allHeaders: [(String, String)] {
        var all = headers
        func add(_ name: String, _ value: String) {
            if !all.contains(where: { $0.0.lowercased() == name.lowercased() }) { all.append((name, value)) }
        }
        if let seconds = error.retryAfterSeconds { add("Retry-After", String(max(0, seconds))) }
        if error.code == .unauthorized { add("WWW-Authenticate", "Bearer realm=\"ziyuanku\"") }
        return all
    }

    static let maxErrors = 50

    static func capped(_ s: String, _ max: Int) -> String {
        s.unicodeScalars.count <= max ? s : String(String.UnicodeScalarView(s.unicodeScalars.prefix(max))) + "…"
    }

    /// The RFC 9457 problem document.
    func problemResponse(instance: String?, requestId: String?) -> Response {
        var fields: HTTPFields = [.contentType: "application/problem+json; charset=utf-8"]
        for (name, value) in allHeaders {
            if let n = HTTPField.Name(name) { fields[n] = value }
        }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: documentBytes(instance: instance, requestId: requestId))))
    }

    /// The RFC 9457 document itself, bounded whatever a request provokes (a few KiB).
    func documentBytes(instance: String?, requestId: String?) -> Data {
        let code = error.code
        var doc: [String: JSONValue] = [
            "type": .string(code.typeURI),
            "title": .string(code.title),
            "titleZh": .string(code.titleZh),
            "status": .number(Double(code.httpStatus)),
            "detail": .string(Self.capped(error.message, 2000)),
        ]
        if let instance { doc["instance"] = .string(instance) }
        if let requestId { doc["requestId"] = .string(requestId) }
        if !error.fields.isEmpty {
            doc["errors"] = .array(
                error.fields.prefix(Self.maxErrors).map {
                    .object(["field": .string(Self.capped($0.field, 200)), "message": .string(Self.capped($0.message, 500))])
                })
            if error.fields.count > Self.maxErrors { doc["errorsOmitted"] = .number(Double(error.fields.count - Self.maxErrors)) }
        }
        for (k, v) in error.extra where doc[k] == nil { doc[k] = v }
        return (try? JSONResponse.encoder.encode(JSONValue.object(doc))) ?? Data()
    }

    /// The problem as a whole HTTP/1.1 response that closes the connection, for answers written
    /// below the HTTP codec (the connection limit, the header timeout, an unparseable head).
    func wireResponse() -> ByteBuffer {
        let body = documentBytes(instance: nil, requestId: nil)
        let code = error.code.httpStatus
        var head = "HTTP/1.1 \(code) \(HTTPResponse.Status(code: code).reasonPhrase)\r\n"
        head += "Content-Type: application/problem+json; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in allHeaders where name.lowercased() != "connection" { head += "\(name): \(value)\r\n" }
        var buffer = ByteBuffer(string: head + "\r\n")
        buffer.writeBytes(body)
        return buffer
    }
}

extension DomainError: HTTPResponseError {
    public var status: HTTPResponse.Status { .init(code: code.httpStatus) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try HTTPProblem(self, headers: []).response(from: request, context: context)
    }

    /// As an answer with header fields of its own.
    func with(headers: [(String, String)]) -> HTTPProblem { HTTPProblem(self, headers: headers) }
}

enum JSONResponse {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var h = headers
        h[.contentType] = "application/json; charset=utf-8"
        let data = try encoder.encode(value)
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Maps anything thrown by a route into a problem document, so every error a client sees is
/// `application/problem+json` with a stable type — including the router's own 404/405 and
/// framework errors.
enum ProblemMapping {
    static func problem(for error: any Error, request: Request, context: some RequestContext) -> HTTPProblem {
        switch error {
        case let e as HTTPProblem:
            if e.error.code == .internal { context.logger.error("internal error", metadata: ["error": "\(TextCleaning.oneLine(e.error.message, max: 1000))"]) }
            return e
        default:
            return HTTPProblem(domainError(for: error, request: request, context: context), headers: connectionHeaders(for: error))
        }
    }

    /// Errors that leave the connection unusable close it.
    static func connectionHeaders(for error: any Error) -> [(String, String)] {
        switch error {
        case is HTTPParserError, is IOError, is ChannelError: [("Connection", "close")]
        default: []
        }
    }

    static func domainError(for error: any Error, request: Request, context: some RequestContext) -> DomainError {
        switch error {
        case let e as DomainError:
            if e.code == .internal { context.logger.error("internal error", metadata: ["error": "\(TextCleaning.oneLine(e.message, max: 1000))"]) }
            return e
        case let e as HTTPError:
            switch e.status.code {
            case 404: return DomainError.notFound(request.uri.path.hasPrefix("/v1/") ? "route or resource" : "route")
            case 405: return DomainError(.methodNotAllowed, "\(request.method.rawValue) is not supported on \(request.uri.path).")
            case 413: return DomainError(.payloadTooLarge, e.body ?? "The request body is too large.")
            case 400: return DomainError(.badRequest, e.body ?? "The request could not be understood.")
            default:
                if e.status.code >= 500 { context.logger.error("framework error", metadata: ["error": "\(TextCleaning.oneLine("\(e)", max: 1000))"]) }
                return DomainError(e.status.code >= 500 ? .internal : .badRequest, e.body ?? e.status.reasonPhrase)
            }
        case let e where StoreErrors.map(e) != nil:
            let mapped = StoreErrors.map(e)!
            context.logger.warning("storage error", metadata: ["error": "\(TextCleaning.oneLine("\(e)", max: 1000))"])
            return mapped
        case is HTTPParserError:
            // The connection's bytes cannot be framed any more (e.g. `Transfer-Encoding: xchunked`
            // found mid-body): say so and close, never a 500.
            return DomainError(
                .badRequest,
                "The request's bytes could not be read as HTTP/1.1 (for example a transfer coding other than chunked, or a broken chunk); the connection is closed."
            )
        case is IOError, is ChannelError:
            // The client went away (a reset or a close mid-body): nobody will read an answer,
            // and it is not the server's failure — no 5xx in the logs and metrics for it.
            context.logger.notice("the connection failed mid-request", metadata: ["error": "\(TextCleaning.oneLine("\(error)", max: 300))"])
            return DomainError(.badRequest, "The connection failed before the request had arrived whole.")
        case is CancellationError:
            return DomainError(.unavailable, "The request was cancelled.")
        default:
            context.logger.error("unexpected error", metadata: ["error": "\(TextCleaning.oneLine("\(error)", max: 1000))"])
            return DomainError(.internal, "Something went wrong on the server; the request id identifies it in the logs.")
        }
    }
}
