import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// The metrics of one server instance, recorded through the swift-metrics API (`Counter`,
/// `Timer`, `Gauge`) into this instance's own Prometheus registry, which `/metrics` renders.
/// Each instance has its own registry, so several servers in one process (the tests) never
/// share a count; `zyk serve` also makes `factory` the process-wide `MetricsSystem` factory.
public final class ServerMetrics: Sendable {
    /// Metric names, with the `# HELP` text each is exposed with.
    enum Name {
        static let requests = "zyk_http_requests_total"
        static let requestDuration = "zyk_http_request_duration_seconds"
        static let uploadBytes = "zyk_upload_bytes_total"
        static let uploads = "zyk_uploads_total"
        static let downloadBytes = "zyk_download_bytes_total"
        static let jobRuns = "zyk_job_runs_total"
        static let jobLastRunTime = "zyk_job_last_run_timestamp_seconds"
        static let jobLastRunOK = "zyk_job_last_run_ok"
        static let jobLastRunCount = "zyk_job_last_run_count"
        static let syncOutbox = "zyk_sync_outbox_entries"

        static let help: [String: String] = [
            requests: "HTTP requests by method, route and status",
            requestDuration: "Time to the response head",
            uploadBytes: "Bytes stored from uploads",
            uploads: "Completed file uploads",
            downloadBytes: "File bytes served (by Content-Length)",
            jobRuns: "Finished upkeep job runs by job and outcome.",
            jobLastRunTime: "When the last run of each job ended.",
            jobLastRunOK: "Whether the last run of each job found nothing wrong (1) or not (0).",
            jobLastRunCount: "The counts the last run of each job reported.",
            syncOutbox: "National-platform outbox entries by state.",
        ]
    }

    /// What the metrics are made with: swift-prometheus's factory over this instance's registry.
    public let factory: PrometheusHelpTextFactory
    public var registry: PrometheusCollectorRegistry { factory.registry }
    let uploadBytes: Metrics.Counter
    let uploadsCompleted: Metrics.Counter
    let downloadBytes: Metrics.Counter
    /// The values read from the catalog, refreshed when `/metrics` is read.
    let catalog: CatalogMetrics

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        var prometheus = PrometheusMetricsFactory(registry: registry)
        prometheus.durationHistogramBuckets[Name.requestDuration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10), .seconds(60),
        ]
        factory = PrometheusHelpTextFactory(prometheus, help: Name.help)
        uploadBytes = Metrics.Counter(label: Name.uploadBytes, factory: factory)
        uploadsCompleted = Metrics.Counter(label: Name.uploads, factory: factory)
        downloadBytes = Metrics.Counter(label: Name.downloadBytes, factory: factory)
        catalog = CatalogMetrics(factory: factory)
    }

    private struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }
    private let requests = Mutex<[RequestKey: (count: Metrics.Counter, duration: Metrics.Timer)]>([:])

    /// Counts one answered request and records its time to the response head.
    func recordRequest(method: String, route: String, status: Int, elapsed: Duration) {
        let key = RequestKey(method: method, route: route, status: status)
        let metrics = requests.withLock { cache in
            if let hit = cache[key] { return hit }
            let made = (
                count: Metrics.Counter(label: Name.requests, dimensions: [("method", method), ("route", route), ("status", String(status))], factory: factory),
                duration: Metrics.Timer(label: Name.requestDuration, dimensions: [("method", method), ("route", route)], factory: factory)
            )
            cache[key] = made
            return made
        }
        metrics.count.increment()
        metrics.duration.record(duration: elapsed)
    }

    /// The Prometheus text exposition of every metric, the catalog's read afresh.
    public func exposition(catalog store: Catalog) -> [UInt8] {
        catalog.refresh(from: store)
        return registry.emitToBuffer()
    }
}

/// swift-prometheus's `PrometheusMetricsFactory`, plus the `# HELP` line of the metrics it
/// knows a text for: the plain factory registers every metric without one, and the registry
/// takes a help text only when a metric is registered. Every metric lives in the factory's
/// registry; names without a help text go to the plain factory unchanged.
public struct PrometheusHelpTextFactory: MetricsFactory {
    public let prometheus: PrometheusMetricsFactory
    let help: [String: String]
    public var registry: PrometheusCollectorRegistry { prometheus.registry }

    public init(_ prometheus: PrometheusMetricsFactory, help: [String: String]) {
        self.prometheus = prometheus
        self.help = help
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor? {
        help[label].map { MetricNameDescriptor(metricName: label, unitName: "", helpText: $0) }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let d = descriptor(label) else { return prometheus.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: d, labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let d = descriptor(label) else { return prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: d, labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let d = descriptor(label) else { return prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate) }
        guard aggregate else { return registry.makeGauge(descriptor: d, labels: dimensions) }
        return registry.makeValueHistogram(
            descriptor: d, labels: dimensions, buckets: prometheus.valueHistogramBuckets[label] ?? prometheus.defaultValueHistogramBuckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let d = descriptor(label) else { return prometheus.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: d, labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let d = descriptor(label) else { return prometheus.makeTimer(label: label, dimensions: dimensions) }
        return registry.makeDurationHistogram(
            descriptor: d, labels: dimensions, buckets: prometheus.durationHistogramBuckets[label] ?? prometheus.defaultDurationHistogramBuckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { prometheus.destroyTimer(handler) }
}

/// Counts every request by method, route and status and records its time to the response
/// head (`zyk_http_requests_total`, `zyk_http_request_duration_seconds`). Outside the problem
/// middleware, so errors arrive here as the problem documents the client gets. The route is the
/// matched template (Hummingbird's router names a path no route matches `NotFound`).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ZykContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: ZykContext, next: (Request, ZykContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.recordRequest(
            method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: Int(response.status.code),
            elapsed: ContinuousClock.now - start)
        return response
    }
}

/// One structured log line per request: method, path, status, user, bytes and duration (the
/// request id comes with the logger). Never logs headers, so tokens stay out of the logs.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = ZykContext

    func handle(_ request: Request, context: ZykContext, next: (Request, ZykContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let bytes = response.headers[.contentLength] ?? (response.body.contentLength.map(String.init) ?? "-")
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
                "user": "\(context.caller.userId ?? "anonymous")", "bytes": "\(bytes)",
                "duration_ms": "\(String(format: "%.2f", ms))",
            ])
        return response
    }
}

/// Maps anything thrown inside it (the gate, the router, a route) into the problem document
/// the client gets; the router's 404 for a known path with another method becomes a 405.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = ZykContext
    let routes: RouteTable

    func handle(_ request: Request, context: ZykContext, next: (Request, ZykContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var problem = ProblemMapping.problem(for: error, request: request, context: context)
            if let e = error as? HTTPError, e.status == .notFound {
                let allowed = routes.methods(matching: request.uri.path)
                if !allowed.isEmpty {
                    problem = DomainError(
                        .methodNotAllowed, "\(request.method.rawValue) is not supported on \(request.uri.path); use \(allowed.joined(separator: ", "))."
                    )
                    .with(headers: [("Allow", allowed.joined(separator: ", "))])
                }
            }
            return problem.problemResponse(instance: request.uri.path, requestId: context.id)
        }
    }
}

/// The client's address and scheme as a trusted proxy (`trusted_proxies`) forwarded them.
struct TrustedProxyMiddleware: RouterMiddleware {
    typealias Context = ZykContext
    let trustedProxies: [AddressRange]

    func handle(_ request: Request, context: ZykContext, next: (Request, ZykContext) async throws -> Response) async throws -> Response {
        var context = context
        if !trustedProxies.isEmpty, let peer = context.remoteAddress, trustedProxies.contains(address: peer) {
            context.clientAddress = AddressRange.clientAddress(peer: peer, forwardedFor: request.headers[.xForwardedFor], trusted: trustedProxies)
            if let proto = request.headers[.xForwardedProto]?.split(separator: ",").last?.trimmingCharacters(in: .whitespaces).lowercased(),
                proto == "https" || proto == "http"
            {
                context.forwardedProto = proto
            }
        }
        return try await next(request, context)
    }
}

/// Authentication and the anonymous gate: who is asking, and whether they may reach the path
/// at all. `/metrics` is checked before authentication: a metrics scraper's token is not a
/// user token.
struct AuthGateMiddleware: RouterMiddleware {
    typealias Context = ZykContext
    let auth: AuthMiddleware
    var gate = AnonymousGate()

    func handle(_ request: Request, context: ZykContext, next: (Request, ZykContext) async throws -> Response) async throws -> Response {
        var context = context
        let path = request.uri.path
        if path == "/metrics" {
            try gate.checkMetrics(request, clientAddress: context.clientAddress) { try auth.principal(for: request) }
        } else {
            context.principal = try auth.principal(for: request)
            context.caller.userId = context.principal?.userId
            if context.principal == nil { try gate.checkAnonymous(path: path) }
        }
        return try await next(request, context)
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
