import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import ZiyuankuServer
import ZiyuankuStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the HTTP API server.",
        discussion: """
            Serves the API until it gets SIGTERM or SIGINT, then lets requests in flight finish \
            (for at most shutdown_timeout_seconds) and stops. An option wins over its ZYK_ \
            environment variable, which wins over the --config file.

            On the first start with an empty data root, it creates an admin user and writes the \
            admin's token to <data root>/admin-token, readable by its owner only. The token is \
            never written to the log.

            EXAMPLES:
              zyk serve
              zyk serve --data-root /srv/zyk --host 0.0.0.0 --port 8080
              ZYK_MAX_UPLOAD_BYTES=4294967296 zyk serve --config /etc/zyk.conf
            """)

    @OptionGroup var root: RootOptions
    @Option(help: "Bind address (default: $ZYK_HOST or 127.0.0.1).") var host: String?
    @Option(help: "TCP port (default: $ZYK_PORT or 8080).") var port: Int?
    @Option(help: "Largest upload in bytes (default: $ZYK_MAX_UPLOAD_BYTES or 8 GiB).") var maxUploadBytes: Int64?
    @Flag(help: "Refuse anonymous reads (default: allowed, $ZYK_ALLOW_ANONYMOUS).") var noAnonymous = false

    func run() async throws {
        try await cli {
            var config = try root.serverConfig()
            if let host { config.host = host }
            if let port {
                guard (1...65535).contains(port) else { throw CLIError("--port must be 1–65535", code: 64) }
                config.port = port
            }
            if let maxUploadBytes {
                guard maxUploadBytes > 0 else { throw CLIError("--max-upload-bytes must be positive", code: 64) }
                config.maxUploadBytes = maxUploadBytes
            }
            if noAnonymous { config.allowAnonymous = false }
            bootstrapLogging(level: config.logLevel)
            let logger = Logger(label: "zyk")
            let services: AppServices
            do { services = try openServices(config: config, logger: logger) } catch {
                throw CLIError("cannot open the data root \(config.dataRoot): \(error)", code: 74)
            }
            // Metrics made by libraries through the global API land in the same registry as
            // the server's own, and so in /metrics.
            MetricsSystem.bootstrap(services.metrics.factory)
            logger.notice(
                "serving",
                metadata: [
                    "address": "http://\(config.host):\(config.port)", "dataRoot": "\(services.root.path)",
                    "adminTokenFile": "\(services.root.adminTokenPath)",
                ])
            try await runServer(services: services, logger: logger)
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring the catalog's database schema up to date.",
        discussion: """
            Applies the schema migrations that the catalog does not have yet, and lists them. \
            The server does this by itself when it starts, so you need this command only to \
            upgrade a data root without starting the server. Running it again changes nothing.

            EXAMPLES:
              zyk migrate
              zyk migrate --data-root /srv/zyk --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await cli {
            let c = try root.serverConfig()
            let dataRoot = DataRoot(path: c.dataRoot)
            try dataRoot.prepare()
            let catalog = try Catalog(path: dataRoot.catalogPath)
            let applied = try catalog.migrate()
            let all = try catalog.appliedMigrations()
            if output.json {
                try Output.json(["applied": applied, "all": all])
            } else {
                print(applied.isEmpty ? "catalog is up to date (\(all.count) migrations)" : "applied: \(applied.joined(separator: ", "))")
            }
        }
    }
}

struct Reindex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild the search index from the catalog.",
        discussion: """
            The search index is normally updated together with every change. Rebuild it after a \
            restore, or when `zyk verify` reports that the index and the catalog differ. It is \
            safe to run while the server is running.

            EXAMPLES:
              zyk reindex
              zyk reindex --data-root /srv/zyk --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runJob(root: root, output: output, label: "reindexing", { u, a, p in try u.reindex(trigger: .cli, as: a, progress: p) }) { r in
            print("indexed \(r.indexed) resources")
        }
    }
}
