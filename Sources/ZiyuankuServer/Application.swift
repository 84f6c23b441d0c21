import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuSchema
import ZiyuankuStore

/// Everything a route needs, built once per server: the library (its use cases, catalog and
/// blobs) and what only the HTTP surface keeps (metrics, resumable-upload state, queues).
public struct AppServices: Sendable {
    public let library: Library
    public let metrics: ServerMetrics
    /// Downloads: the files they serve, their counts and audit.
    public let downloads: DownloadService
    /// Resumable uploads, with the writers and running digests of this process.
    public let resumable: ResumableUploadService
    /// Imports sent over HTTP, run one at a time in the background.
    public let imports: ImportService
    /// Platform sync, with the run going in this process.
    public let sync: PlatformSyncService
    /// The last readiness check and when it ran: /readyz is open to anyone, and each check
    /// writes to the catalog and fsyncs a file, so a check is reused for a second.
    let lastReadiness = ReadinessCache()

    public var config: ServerConfig { library.config }
    public var root: DataRoot { library.root }
    public var catalog: Catalog { library.catalog }
    public var blobs: FileBlobStore { library.blobs }

    public init(library: Library, metrics: ServerMetrics = ServerMetrics()) {
        self.library = library
        self.metrics = metrics
        self.downloads = DownloadService(library: library)
        self.resumable = ResumableUploadService(library: library)
        self.sync = PlatformSyncService(library: library)
        self.imports = ImportService(library: library)
    }

    public init(config: ServerConfig, catalog: Catalog, metrics: ServerMetrics = ServerMetrics()) {
        self.init(library: Library(config: config, catalog: catalog), metrics: metrics)
    }
}

final class ReadinessCache: Sendable {
    private let last = Mutex<(at: ContinuousClock.Instant, ok: Bool, checks: [String: String])?>(nil)
    func withLock<T>(_ body: (inout (at: ContinuousClock.Instant, ok: Bool, checks: [String: String])?) -> T) -> T { last.withLock { body(&$0) } }
}

/// The routes the server answers, as registered (method, OpenAPI-style path). The OpenAPI
/// drift test compares this list with `schema/openapi.yaml`.
public final class RouteTable: @unchecked Sendable {
    public init() {}
    public private(set) var entries: [(method: String, path: String)] = []
    func add(_ method: HTTPRequest.Method, _ hbPath: String) {
        let openAPIPath = hbPath.split(separator: "/", omittingEmptySubsequences: false).map { seg in
            seg.hasPrefix(":") ? "{\(seg.dropFirst())}" : String(seg)
        }.joined(separator: "/")
        entries.append((method.rawValue, openAPIPath))
    }

    /// Methods registered for a concrete request path (`{x}` matches one segment).
    public func methods(matching path: String) -> [String] {
        let segs = path.split(separator: "/", omittingEmptySubsequences: false)
        return entries.filter { e in
            let p = e.path.split(separator: "/", omittingEmptySubsequences: false)
            return p.count == segs.count && zip(p, segs).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.map(\.method)
    }
}

/// Opens the library (see `Library.open`) and builds the server's services on it.
public func openServices(config: ServerConfig, logger: Logger) throws -> AppServices {
    AppServices(library: try Library.open(config: config, logger: logger))
}

public func buildRouter(services: AppServices, routes: RouteTable = RouteTable()) -> Router<ZykContext> {
    let router = Router(context: ZykContext.self)
    // Outermost first. The metrics and the access log see every answer as the client gets it,
    // problem documents included; the gate runs with the client's forwarded address.
    router.add(middleware: RequestMetricsMiddleware(metrics: services.metrics))
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: ProblemMiddleware(routes: routes))
    router.add(middleware: TrustedProxyMiddleware(trustedProxies: services.config.trustedProxies))
    router.add(
        middleware: AuthGateMiddleware(
            auth: AuthMiddleware(accounts: services.library.accounts),
            gate: AnonymousGate(
                allowAnonymous: services.config.allowAnonymous, metricsAllow: services.config.metricsAllow, metricsToken: services.config.metricsToken)))
    let r = Routes(router: router, table: routes, services: services)
    SystemRoutes(services: services).register(r)
    AdminRoutes(services: services).register(r)
    BlobRoutes(services: services).register(r)
    ResourceRoutes(services: services).register(r)
    WorkflowRoutes(services: services).register(r)
    JobRoutes(services: services).register(r)
    TusRoutes(services: services).register(r)
    ImportRoutes(services: services).register(r)
    SyncRoutes(services: services).register(r)
    return router
}

/// Builds the application: the one composition root used by `zyk serve` and the tests. Each
/// route it registers is recorded in `routes` (the OpenAPI drift test compares them).
public func buildApplication(services: AppServices, logger: Logger, routes: RouteTable = RouteTable()) -> some ApplicationProtocol {
    let router = buildRouter(services: services, routes: routes)
    let limit = services.config.maxUploadBytes
    return Application(
        router: router,
        server: ZykHTTP1Channel.builder(maxBodyBytes: limit, limits: services.config.connectionLimits),
        configuration: .init(address: .hostname(services.config.host, port: services.config.port), serverName: "ziyuanku"),
        services: [
            DownloadFlushService(counter: services.downloads.counter, logger: logger), JobScheduler(services: services, logger: logger),
            SyncService(services: services, logger: logger),
        ],
        logger: logger)
}

/// Runs the server until SIGTERM or SIGINT. Shutdown is graceful for at most
/// `shutdown_timeout_seconds`: requests in flight may finish, then what is still running is
/// cancelled (a slow upload must not keep a stopping server alive until a supervisor kills it
/// and the download counts are lost); the counts are written and a running sync stopped either way.
public func runServer(services: AppServices, logger: Logger) async throws {
    let app = buildApplication(services: services, logger: logger)
    var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = .seconds(services.config.shutdownTimeoutSeconds)
    configuration.maximumCancellationDuration = .seconds(5)
    try await ServiceGroup(configuration: configuration).run()
}

/// Registers routes and records them in the route table.
struct Routes {
    let router: Router<ZykContext>
    let table: RouteTable
    let services: AppServices

    func on(
        _ method: HTTPRequest.Method, _ path: String,
        _ handler: @escaping @Sendable (Request, ZykContext) async throws -> Response
    ) {
        table.add(method, path)
        router.on(RouterPath(path), method: method, use: handler)
    }
}

/// Writes buffered download counts every few seconds, and once more on shutdown.
struct DownloadFlushService: Service, CustomStringConvertible {
    /// How the service group names it in errors (never a dump of the configuration and its secrets).
    var description: String { "download counter flush" }

    let counter: DownloadCounter
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
            do { try counter.flush() } catch { logger.warning("could not write download counts yet: \(error)") }
        }
        do { try counter.flush() } catch { logger.error("download counts lost at shutdown: \(error)") }
    }
}
