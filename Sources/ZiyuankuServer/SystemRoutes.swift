import Foundation
import Hummingbird
import NIOCore
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuSchema
import ZiyuankuStore

struct SystemRoutes {
    let services: AppServices

    func register(_ r: Routes) {
        r.on(.get, "/healthz") { _, _ in try JSONResponse.make(["status": "ok"]) }
        r.on(.get, "/readyz") { _, _ in try ready() }
        r.on(.get, "/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: services.metrics.exposition(catalog: services.catalog))))
        }
        r.on(.get, "/openapi.yaml") { _, _ in
            guard let url = ZiyuankuSchema.bundle.url(forResource: "openapi", withExtension: "yaml"), let data = try? Data(contentsOf: url) else {
                throw DomainError(.internal, "the OpenAPI document is missing from the build")
            }
            return Response(status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// Ready when the catalog takes a write transaction and the data root takes a synced file.
    func ready() throws -> Response {
        let now = ContinuousClock.now
        // Only a good answer is reused: a problem is looked at again on every call.
        if let last = services.lastReadiness.withLock({ $0 }), last.ok, now - last.at < .seconds(1) {
            return try Self.readiness(ok: last.ok, checks: last.checks)
        }
        let (ok, checks) = runChecks()
        services.lastReadiness.withLock { $0 = (now, ok, checks) }
        return try Self.readiness(ok: ok, checks: checks)
    }

    static func readiness(ok: Bool, checks: [String: String]) throws -> Response {
        let doc: JSONValue = .object(["status": .string(ok ? "ready" : "not ready"), "checks": checks.jsonValue])
        return try JSONResponse.make(doc, status: ok ? .ok : .serviceUnavailable, headers: [.cacheControl: "no-store"])
    }

    func runChecks() -> (Bool, [String: String]) {
        let r = services.library.readiness()
        return (r.ok, r.checks)
    }
}

/// Small helper to build heterogeneous JSON objects.
protocol JSONValueConvertible { var jsonValue: JSONValue { get } }
extension String: JSONValueConvertible { var jsonValue: JSONValue { .string(self) } }
extension Int: JSONValueConvertible { var jsonValue: JSONValue { .number(Double(self)) } }
extension Int64: JSONValueConvertible { var jsonValue: JSONValue { .number(Double(self)) } }
extension Bool: JSONValueConvertible { var jsonValue: JSONValue { .bool(self) } }
extension JSONValue: JSONValueConvertible { var jsonValue: JSONValue { self } }
extension Optional: JSONValueConvertible where Wrapped: JSONValueConvertible { var jsonValue: JSONValue { self?.jsonValue ?? .null } }
extension Array: JSONValueConvertible where Element: JSONValueConvertible { var jsonValue: JSONValue { .array(map(\.jsonValue)) } }
extension Dictionary: JSONValueConvertible where Key == String, Value == String { var jsonValue: JSONValue { .object(mapValues { .string($0) }) } }
