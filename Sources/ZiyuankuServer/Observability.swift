import Foundation
import Hummingbird
import Logging
import Prometheus
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Prometheus metrics of one server instance (the registry is rendered at `/metrics`).
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let uploadBytes: Counter
    let uploadsCompleted: Counter
    let downloadBytes: Counter

    public init() {
        uploadBytes = registry.makeCounter(descriptor: .init(metricName: "zyk_upload_bytes", unitName: "total", helpText: "Bytes stored from uploads"))
        uploadsCompleted = registry.makeCounter(descriptor: .init(metricName: "zyk_uploads", unitName: "total", helpText: "Completed file uploads"))
        downloadBytes = registry.makeCounter(
            descriptor: .init(metricName: "zyk_download_bytes", unitName: "total", helpText: "File bytes served (by Content-Length)"))
    }

    private let cache = Mutex<[String: (Counter, DurationHistogram)]>([:])

    /// The counter and latency histogram of one method/route/status, looked up once.
    func requestMetrics(method: String, route: String, status: Int) -> (Counter, DurationHistogram) {
        let key = "\(method) \(route) \(status)"
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let made = (requestCounter(method: method, route: route, status: status), latency(method: method, route: route))
        cache.withLock { $0[key] = made }
        return made
    }

    func requestCounter(method: String, route: String, status: Int) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "zyk_http_requests", unitName: "total", helpText: "HTTP requests by method, route and status"),
            labels: [("method", method), ("route", route), ("status", String(status))])
    }

    func latency(method: String, route: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "zyk_http_request_duration", unitName: "seconds", helpText: "Time to the response head"),
            labels: [("method", method), ("route", route)],
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10), .seconds(60)])
    }
}

/// The front of every request: authentication, errors mapped to problem documents, one
/// structured log line (request id, user, status, bytes, duration) and the request metrics.
/// Never logs headers, so tokens stay out of the logs.
struct FrontMiddleware: RouterMiddleware {
    typealias Context = ZykContext
    let metrics: ServerMetrics
    let auth: AuthMiddleware
    let routes: RouteTable
    var trustedProxies: [AddressRange] = []
    var gate = AnonymousGate()

    func handle(_ request: Request, context: ZykContext, next: (Request, ZykContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        if !trustedProxies.isEmpty, let peer = context.remoteAddress, trustedProxies.contains(address: peer) {
            context.clientAddress = AddressRange.clientAddress(peer: peer, forwardedFor: request.headers[.xForwardedFor], trusted: trustedProxies)
            if let proto = request.headers[.xForwardedProto]?.split(separator: ",").last?.trimmingCharacters(in: .whitespaces).lowercased(),
                proto == "https" || proto == "http"
            {
                context.forwardedProto = proto
            }
        }
        let response: Response
        do {
            let path = request.uri.path
            if path == "/metrics" {
                // Before authentication: a metrics scraper's token is not a user token.
                try gate.checkMetrics(request, clientAddress: context.clientAddress) { try auth.principal(for: request) }
            } else {
                context.principal = try auth.principal(for: request)
                if context.principal == nil { try gate.checkAnonymous(path: path) }
            }
            response = try await next(request, context)
        } catch {
            var problem = ProblemMapping.problem(for: error, request: request, context: context)
            if let e = error as? HTTPError, e.status == .notFound {
                // The router says 404 for a known path with another method: that is a 405.
                let allowed = routes.methods(matching: request.uri.path)
                if !allowed.isEmpty {
                    problem = DomainError(
                        .methodNotAllowed, "\(request.method.rawValue) is not supported on \(request.uri.path); use \(allowed.joined(separator: ", ")).")
                        .with(headers: [("Allow", allowed.joined(separator: ", "))])
                }
            }
            response = problem.problemResponse(instance: request.uri.path, requestId: context.id)
        }
        let elapsed = ContinuousClock.now - start
        let route = context.endpointPath ?? "unmatched"
        let status = Int(response.status.code)
        let (counter, histogram) = metrics.requestMetrics(method: request.method.rawValue, route: route, status: status)
        counter.increment()
        histogram.record(elapsed)
        let bytes = response.headers[.contentLength] ?? (response.body.contentLength.map(String.init) ?? "-")
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(status)",
                "user": "\(context.principal?.userId ?? "anonymous")", "bytes": "\(bytes)",
                "duration_ms": "\(String(format: "%.2f", ms))",
            ])
        return response
    }
}

/// What an anonymous caller may reach. With anonymous access on: everything the routes allow
/// anonymous callers. With it off: only health and readiness, the API description (and later
/// sign-in pages and static assets); every other path answers 401 before any route runs.
/// `/metrics` follows `metrics_allow` (addresses or a token) and is otherwise open only while
/// anonymous access is on and no allow list is set; admins may always read it.
struct AnonymousGate: Sendable {
    var allowAnonymous = true
    var metricsAllow: [AddressRange] = []
    var metricsToken: String?

    static let alwaysOpen: Set<String> = ["/healthz", "/readyz", "/openapi.yaml"]

    func checkAnonymous(path: String) throws {
        guard !allowAnonymous, !Self.alwaysOpen.contains(path) else { return }
        throw DomainError(
            .unauthorized, "This library is not open to anonymous visitors: sign in, or send Authorization: Bearer zyk_….")
    }

    func checkMetrics(_ request: Request, clientAddress: String?, principal: () throws -> Principal?) throws {
        if let metricsToken, let credential = request.headers[.authorization].flatMap(AuthMiddleware.bearerCredential),
            Self.constantTimeEqual(Array(credential.utf8), Array(metricsToken.utf8))
        {
            return
        }
        if let clientAddress, metricsAllow.contains(address: clientAddress) { return }
        if metricsAllow.isEmpty && metricsToken == nil && allowAnonymous { return }
        let p = try principal()
        if p?.role == .admin { return }
        if p != nil { throw DomainError.forbidden("Only administrators and the addresses in metrics_allow may read /metrics.") }
        throw DomainError(
            .unauthorized, "/metrics is open only to the addresses or the token in metrics_allow, and to administrators.")
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in a.indices { d |= a[i] ^ b[i] }
        return d == 0
    }
}
