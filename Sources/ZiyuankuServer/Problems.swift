import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import ZiyuankuCore
import ZiyuankuStore

extension AppError: HTTPResponseError {
    public var status: HTTPResponse.Status { .init(code: kind.status) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        problemResponse(instance: request.uri.path, requestId: context.id)
    }

    static let maxErrors = 50

    static func capped(_ s: String, _ max: Int) -> String {
        s.unicodeScalars.count <= max ? s : String(String.UnicodeScalarView(s.unicodeScalars.prefix(max))) + "…"
    }

    /// The RFC 9457 problem document.
    public func problemResponse(instance: String?, requestId: String?) -> Response {
        var headers: HTTPFields = [.contentType: "application/problem+json; charset=utf-8"]
        for (name, value) in self.headers {
            if let n = HTTPField.Name(name) { headers[n] = value }
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: documentBytes(instance: instance, requestId: requestId))))
    }

    /// The RFC 9457 document itself, bounded whatever a request provokes (a few KiB).
    func documentBytes(instance: String?, requestId: String?) -> Data {
        var doc: [String: JSONValue] = [
            "type": .string(kind.typeURI),
            "title": .string(kind.title),
            "titleZh": .string(kind.titleZh),
            "status": .number(Double(kind.status)),
            "detail": .string(Self.capped(detail, 2000)),
        ]
        if let instance { doc["instance"] = .string(instance) }
        if let requestId { doc["requestId"] = .string(requestId) }
        if !errors.isEmpty {
            doc["errors"] = .array(
                errors.prefix(Self.maxErrors).map { .object(["field": .string(Self.capped($0.field, 200)), "message": .string(Self.capped($0.message, 500))]) })
            if errors.count > Self.maxErrors { doc["errorsOmitted"] = .number(Double(errors.count - Self.maxErrors)) }
        }
        for (k, v) in extra where doc[k] == nil { doc[k] = v }
        return (try? JSONResponse.encoder.encode(JSONValue.object(doc))) ?? Data()
    }

    /// The problem as a whole HTTP/1.1 response that closes the connection, for answers written
    /// below the HTTP codec (the connection limit, the header timeout, an unparseable head).
    func wireResponse() -> ByteBuffer {
        let body = documentBytes(instance: nil, requestId: nil)
        var head = "HTTP/1.1 \(kind.status) \(HTTPResponse.Status(code: kind.status).reasonPhrase)\r\n"
        head += "Content-Type: application/problem+json; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers where name.lowercased() != "connection" { head += "\(name): \(value)\r\n" }
        var buffer = ByteBuffer(string: head + "\r\n")
        buffer.writeBytes(body)
        return buffer
    }
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
    static func problem(for error: any Error, request: Request, context: some RequestContext) -> AppError {
        switch error {
        case let e as AppError:
            if e.kind == .internal { context.logger.error("internal error", metadata: ["error": "\(TextCleaning.oneLine(e.detail, max: 1000))"]) }
            return e
        case let e as HTTPError:
            switch e.status.code {
            case 404: return AppError.notFound(request.uri.path.hasPrefix("/v1/") ? "route or resource" : "route")
            case 405: return AppError(.methodNotAllowed, "\(request.method.rawValue) is not supported on \(request.uri.path).")
            case 413: return AppError(.payloadTooLarge, e.body ?? "The request body is too large.")
            case 400: return AppError(.badRequest, e.body ?? "The request could not be understood.")
            default:
                if e.status.code >= 500 { context.logger.error("framework error", metadata: ["error": "\(TextCleaning.oneLine("\(e)", max: 1000))"]) }
                return AppError(e.status.code >= 500 ? .internal : .badRequest, e.body ?? e.status.reasonPhrase)
            }
        case let e where StoreErrors.map(e) != nil:
            let mapped = StoreErrors.map(e)!
            context.logger.warning("storage error", metadata: ["error": "\(TextCleaning.oneLine("\(e)", max: 1000))"])
            return mapped
        case is HTTPParserError:
            // The connection's bytes cannot be framed any more (e.g. `Transfer-Encoding: xchunked`
            // found mid-body): say so and close, never a 500.
            return AppError(
                .badRequest,
                "The request's bytes could not be read as HTTP/1.1 (for example a transfer coding other than chunked, or a broken chunk); the connection is closed.",
                headers: [("Connection", "close")])
        case is IOError, is ChannelError:
            // The client went away (a reset or a close mid-body): nobody will read an answer,
            // and it is not the server's failure — no 5xx in the logs and metrics for it.
            context.logger.notice("the connection failed mid-request", metadata: ["error": "\(TextCleaning.oneLine("\(error)", max: 300))"])
            return AppError(.badRequest, "The connection failed before the request had arrived whole.", headers: [("Connection", "close")])
        case is CancellationError:
            return AppError(.unavailable, "The request was cancelled.")
        default:
            context.logger.error("unexpected error", metadata: ["error": "\(TextCleaning.oneLine("\(error)", max: 1000))"])
            return AppError(.internal, "Something went wrong on the server; the request id identifies it in the logs.")
        }
    }
}
