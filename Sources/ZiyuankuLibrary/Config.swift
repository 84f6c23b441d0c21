import Foundation
import Logging
import ZiyuankuCore
import ZiyuankuSync

/// Server configuration: defaults, then a config file (`key = value` lines), then environment
/// variables (`ZYK_*`), then command-line flags — each later source overriding the earlier.
public struct ServerConfig: Sendable, Equatable {
    /// Data root: the catalog, blobs, temporary files and backups (`ZYK_DATA_ROOT`).
    public var dataRoot = "./storage"
    /// Address to bind (`ZYK_HOST`); loopback by default.
    public var host = "127.0.0.1"
    /// Port (`ZYK_PORT`).
    public var port = 8080
    /// Largest accepted upload body in bytes (`ZYK_MAX_UPLOAD_BYTES`), default 8 GiB.
    public var maxUploadBytes: Int64 = 8 << 30
    /// Largest JSON request body in bytes (`ZYK_MAX_JSON_BYTES`).
    public var maxJSONBytes = 1 << 20
    /// Whether anonymous callers may list and download public, published resources (`ZYK_ALLOW_ANONYMOUS`).
    public var allowAnonymous = true
    /// Log level (`ZYK_LOG_LEVEL`): trace, debug, info, notice, warning, error, critical.
    public var logLevel: Logger.Level = .info
    /// Days an admin can still restore a deleted resource (`ZYK_DELETED_RETENTION_DAYS`).
    public var deletedRetentionDays = 30
    /// Upkeep schedule inside the server, in minutes between runs (0: off). Heavy jobs are off
    /// by default (`ZYK_FIXITY_INTERVAL_MINUTES`, `ZYK_GC_INTERVAL_MINUTES`,
    /// `ZYK_VERIFY_INTERVAL_MINUTES`); optimize runs daily (`ZYK_OPTIMIZE_INTERVAL_MINUTES`).
    public var fixityIntervalMinutes = 0
    public var gcIntervalMinutes = 0
    public var verifyIntervalMinutes = 0
    public var optimizeIntervalMinutes = 1440
    /// Seconds one scheduled fixity slice may take (`ZYK_FIXITY_BUDGET_SECONDS`).
    public var fixityBudgetSeconds = 600
    /// Hours an unused blob, trash or partial upload is kept before gc removes it (`ZYK_GC_GRACE_HOURS`).
    public var gcGraceHours: Double = 24
    /// Scheduled backups (`ZYK_BACKUP_INTERVAL_MINUTES`, off by default) go to this folder
    /// (`ZYK_BACKUP_DIR`, default `backups/latest` in the data root), incrementally.
    public var backupIntervalMinutes = 0
    public var backupDir: String?
    /// Scheduled library reports and search index rebuilds (`ZYK_REPORT_INTERVAL_MINUTES`,
    /// `ZYK_REINDEX_INTERVAL_MINUTES`; off by default).
    public var reportIntervalMinutes = 0
    public var reindexIntervalMinutes = 0
    /// The national platform (docs/product.md#sync-to-the-national-platform, schema/platform-v1.md): base URL, app key and
    /// secret, and an extra CA bundle for its TLS certificate. Sync is off until the URL is set.
    public var platformURL: String?
    public var platformAppKey = ""
    public var platformAppSecret = ""
    public var platformCAFile: String?
    /// Sync pacing: transfers at once, minutes between scheduled runs in the server (0: only on
    /// demand), connect timeout, the low-speed window that cuts stalled transfers, attempts
    /// before an entry goes dead, and the backoff between attempts.
    public var syncConcurrency = 4
    public var syncIntervalMinutes = 10
    public var syncConnectTimeoutSeconds = 10
    public var syncLowSpeedBytes = 1024
    public var syncLowSpeedSeconds = 30
    public var syncMaxAttempts = 25
    public var syncBackoffBaseSeconds = 2.0
    public var syncBackoffCapSeconds = 600.0
    /// Connection bounds (`ZYK_HEADER_TIMEOUT_SECONDS`, `ZYK_IDLE_TIMEOUT_SECONDS`,
    /// `ZYK_MIN_BODY_RATE`, `ZYK_MAX_CONNECTIONS`); see `ConnectionLimits`.
    public var connectionLimits = ConnectionLimits()
    /// The address people and harvesters use (`ZYK_PUBLIC_URL`), e.g.
    /// `https://ziyuanku.example.edu.cn`: links, cookies' `Secure`, OAI-PMH's baseURL.
    public var publicURL: String?
    /// Proxies whose `X-Forwarded-For`/`-Proto` are believed (`ZYK_TRUSTED_PROXIES`): addresses
    /// or CIDR ranges, comma-separated. From anyone else those headers are ignored.
    public var trustedProxies: [AddressRange] = []
    /// Who may read `/metrics` when anonymous access is off (`ZYK_METRICS_ALLOW`): addresses or
    /// CIDR ranges, and/or `token:SECRET` for a bearer token; empty: admins only.
    public var metricsAllow: [AddressRange] = []
    public var metricsToken: String?
    /// Per-user quotas (`ZYK_MAX_OPEN_UPLOADS_PER_USER`, `ZYK_MAX_OPEN_UPLOAD_BYTES_PER_USER`,
    /// `ZYK_MAX_TOKENS_PER_USER`): resumable uploads not yet complete, the bytes they declare,
    /// and live API tokens.
    public var maxOpenUploadsPerUser = 100
    public var maxOpenUploadBytesPerUser: Int64 = 64 << 30
    public var maxTokensPerUser = 100
    /// Seconds a stopping server lets requests in flight finish before it cancels them
    /// (`ZYK_SHUTDOWN_TIMEOUT_SECONDS`); below a supervisor's own stop timeout.
    public var shutdownTimeoutSeconds = 20

    public init() {}

    public static let keys: [(key: String, env: String, help: String)] = [
        ("data_root", "ZYK_DATA_ROOT", "data root folder (catalog, blobs, tmp, backups); default ./storage"),
        ("host", "ZYK_HOST", "bind address; default 127.0.0.1"),
        ("port", "ZYK_PORT", "TCP port; default 8080"),
        ("max_upload_bytes", "ZYK_MAX_UPLOAD_BYTES", "largest upload in bytes; default 8589934592 (8 GiB)"),
        ("max_json_bytes", "ZYK_MAX_JSON_BYTES", "largest JSON body in bytes; default 1048576"),
        ("allow_anonymous", "ZYK_ALLOW_ANONYMOUS", "anonymous read access to public published resources; default true"),
        ("log_level", "ZYK_LOG_LEVEL", "trace|debug|info|notice|warning|error|critical; default info"),
        ("deleted_retention_days", "ZYK_DELETED_RETENTION_DAYS", "days a deleted resource can be restored by an admin; default 30"),
        ("fixity_interval_minutes", "ZYK_FIXITY_INTERVAL_MINUTES", "minutes between scheduled fixity slices; default 0 (off)"),
        ("fixity_budget_seconds", "ZYK_FIXITY_BUDGET_SECONDS", "seconds one scheduled fixity slice may take; default 600"),
        ("gc_interval_minutes", "ZYK_GC_INTERVAL_MINUTES", "minutes between scheduled gc runs; default 0 (off)"),
        ("gc_grace_hours", "ZYK_GC_GRACE_HOURS", "hours unused blobs, trash and partial uploads are kept; default 24"),
        ("verify_interval_minutes", "ZYK_VERIFY_INTERVAL_MINUTES", "minutes between scheduled verify runs; default 0 (off)"),
        ("optimize_interval_minutes", "ZYK_OPTIMIZE_INTERVAL_MINUTES", "minutes between scheduled optimize runs; default 1440 (daily), 0 off"),
        ("backup_interval_minutes", "ZYK_BACKUP_INTERVAL_MINUTES", "minutes between scheduled backups; default 0 (off)"),
        ("backup_dir", "ZYK_BACKUP_DIR", "folder for scheduled backups; default backups/latest in the data root"),
        ("report_interval_minutes", "ZYK_REPORT_INTERVAL_MINUTES", "minutes between scheduled library reports; default 0 (off)"),
        ("reindex_interval_minutes", "ZYK_REINDEX_INTERVAL_MINUTES", "minutes between scheduled search index rebuilds; default 0 (off)"),
        ("platform_url", "ZYK_PLATFORM_URL", "national platform base URL (contract v1), e.g. https://platform.example.cn/api/v1; unset: sync off"),
        ("platform_app_key", "ZYK_PLATFORM_APP_KEY", "app key for request signing"),
        ("platform_app_secret", "ZYK_PLATFORM_APP_SECRET", "app secret for request signing (HMAC-SHA256)"),
        ("platform_ca_file", "ZYK_PLATFORM_CA_FILE", "CA bundle (PEM) to trust instead of the system's, for a platform behind a private CA"),
        ("sync_concurrency", "ZYK_SYNC_CONCURRENCY", "transfers in flight at once, 1–64; default 4"),
        ("sync_interval_minutes", "ZYK_SYNC_INTERVAL_MINUTES", "minutes between sync runs inside the server; default 10, 0 only on demand"),
        ("sync_connect_timeout_seconds", "ZYK_SYNC_CONNECT_TIMEOUT_SECONDS", "connect timeout; default 10"),
        ("sync_low_speed_bytes", "ZYK_SYNC_LOW_SPEED_BYTES", "a transfer below this many bytes/s ..."),
        ("sync_low_speed_seconds", "ZYK_SYNC_LOW_SPEED_SECONDS", "... for this many seconds is cut and retried; defaults 1024 and 30"),
        ("sync_max_attempts", "ZYK_SYNC_MAX_ATTEMPTS", "attempts before an entry goes dead; default 25"),
        ("sync_backoff_base_seconds", "ZYK_SYNC_BACKOFF_BASE_SECONDS", "first retry waits up to this long (full jitter, doubling); default 2"),
        ("sync_backoff_cap_seconds", "ZYK_SYNC_BACKOFF_CAP_SECONDS", "longest wait between attempts; default 600"),
        ("header_timeout_seconds", "ZYK_HEADER_TIMEOUT_SECONDS", "seconds a request head may take to arrive once it starts (then 408); default 30"),
        ("idle_timeout_seconds", "ZYK_IDLE_TIMEOUT_SECONDS", "seconds an idle connection is kept open; default 75"),
        ("min_body_rate", "ZYK_MIN_BODY_RATE", "bytes per second a request body must average over each window of waiting; default 256, 0 off"),
        ("min_body_rate_window_seconds", "ZYK_MIN_BODY_RATE_WINDOW_SECONDS", "the window min_body_rate is measured over; default 60"),
        (
            "max_connections", "ZYK_MAX_CONNECTIONS",
            "open connections at most (idle ones are closed to make room, else 503); default 4096, capped by the open-file limit"
        ),
        ("public_url", "ZYK_PUBLIC_URL", "the address people use, e.g. https://ziyuanku.example.edu.cn; default http://HOST:PORT"),
        ("trusted_proxies", "ZYK_TRUSTED_PROXIES", "comma-separated addresses or CIDR ranges whose X-Forwarded-For/-Proto are believed; default none"),
        ("metrics_allow", "ZYK_METRICS_ALLOW", "who may read /metrics when anonymous access is off: addresses, CIDR ranges, token:SECRET; default admins only"),
        ("max_open_uploads_per_user", "ZYK_MAX_OPEN_UPLOADS_PER_USER", "resumable uploads a user may have open at once; default 100"),
        (
            "max_open_upload_bytes_per_user", "ZYK_MAX_OPEN_UPLOAD_BYTES_PER_USER",
            "bytes a user's open resumable uploads may declare in all; default 68719476736 (64 GiB)"
        ),
        ("max_tokens_per_user", "ZYK_MAX_TOKENS_PER_USER", "live API tokens per user; default 100"),
        (
            "shutdown_timeout_seconds", "ZYK_SHUTDOWN_TIMEOUT_SECONDS",
            "seconds requests in flight may run on after SIGTERM before they are cancelled; default 20"
        ),
    ]

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Applies one setting by its file key.
    public mutating func set(_ key: String, _ value: String, source: String) throws {
        let v = value.trimmingCharacters(in: .whitespaces)
        func bad(_ what: String) -> Invalid { Invalid(description: "\(source): \(key) = \(value): \(what)") }
        switch key {
        case "data_root":
            guard !v.isEmpty else { throw bad("must not be empty") }
            dataRoot = v
        case "host":
            guard !v.isEmpty else { throw bad("must not be empty") }
            host = v
        case "port":
            guard let p = Int(v), (1...65535).contains(p) else { throw bad("must be a port number 1–65535") }
            port = p
        case "max_upload_bytes":
            guard let n = Int64(v), n > 0 else { throw bad("must be a positive number of bytes") }
            maxUploadBytes = n
        case "max_json_bytes":
            guard let n = Int(v), n >= 1024 else { throw bad("must be at least 1024") }
            maxJSONBytes = n
        case "allow_anonymous":
            switch v.lowercased() {
            case "1", "true", "yes", "on": allowAnonymous = true
            case "0", "false", "no", "off": allowAnonymous = false
            default: throw bad("must be true or false")
            }
        case "log_level":
            guard let l = Logger.Level(rawValue: v.lowercased()) else { throw bad("must be one of trace, debug, info, notice, warning, error, critical") }
            logLevel = l
        case "fixity_interval_minutes", "gc_interval_minutes", "verify_interval_minutes", "optimize_interval_minutes", "backup_interval_minutes",
            "report_interval_minutes", "reindex_interval_minutes":
            guard let n = Int(v), (0...525_600).contains(n) else { throw bad("must be minutes 0–525600 (0 turns the job off)") }
            switch key {
            case "fixity_interval_minutes": fixityIntervalMinutes = n
            case "gc_interval_minutes": gcIntervalMinutes = n
            case "verify_interval_minutes": verifyIntervalMinutes = n
            case "backup_interval_minutes": backupIntervalMinutes = n
            case "report_interval_minutes": reportIntervalMinutes = n
            case "reindex_interval_minutes": reindexIntervalMinutes = n
            default: optimizeIntervalMinutes = n
            }
        case "backup_dir":
            guard !v.isEmpty else { throw bad("must not be empty") }
            backupDir = v
        case "fixity_budget_seconds":
            guard let n = Int(v), (1...86_400).contains(n) else { throw bad("must be seconds 1–86400") }
            fixityBudgetSeconds = n
        case "gc_grace_hours":
            guard let n = Double(v), n >= 1, n <= 8760 else { throw bad("must be hours 1–8760") }
            gcGraceHours = n
        case "platform_url":
            platformURL = v.isEmpty ? nil : v
        case "platform_app_key":
            platformAppKey = v
        case "platform_app_secret":
            platformAppSecret = v
        case "platform_ca_file":
            platformCAFile = v.isEmpty ? nil : v
        case "sync_concurrency", "sync_interval_minutes", "sync_connect_timeout_seconds", "sync_low_speed_bytes", "sync_low_speed_seconds",
            "sync_max_attempts":
            let ranges: [String: ClosedRange<Int>] = [
                "sync_concurrency": 1...64, "sync_interval_minutes": 0...525_600, "sync_connect_timeout_seconds": 1...600,
                "sync_low_speed_bytes": 1...1 << 30, "sync_low_speed_seconds": 1...3600, "sync_max_attempts": 1...1000,
            ]
            let r = ranges[key]!
            guard let n = Int(v), r.contains(n) else { throw bad("must be a whole number \(r.lowerBound)–\(r.upperBound)") }
            switch key {
            case "sync_concurrency": syncConcurrency = n
            case "sync_interval_minutes": syncIntervalMinutes = n
            case "sync_connect_timeout_seconds": syncConnectTimeoutSeconds = n
            case "sync_low_speed_bytes": syncLowSpeedBytes = n
            case "sync_low_speed_seconds": syncLowSpeedSeconds = n
            default: syncMaxAttempts = n
            }
        case "sync_backoff_base_seconds", "sync_backoff_cap_seconds":
            guard let n = Double(v), n >= 0.01, n <= 86_400 else { throw bad("must be seconds 0.01–86400") }
            if key == "sync_backoff_base_seconds" { syncBackoffBaseSeconds = n } else { syncBackoffCapSeconds = n }
        case "header_timeout_seconds", "idle_timeout_seconds":
            guard let n = Int(v), (1...86_400).contains(n) else { throw bad("must be seconds 1–86400") }
            if key == "header_timeout_seconds" { connectionLimits.headerTimeout = .seconds(n) } else { connectionLimits.idleTimeout = .seconds(n) }
        case "min_body_rate":
            guard let n = Int(v), (0...1 << 30).contains(n) else { throw bad("must be bytes per second, 0 (off) or more") }
            connectionLimits.minBodyBytesPerSecond = n
        case "min_body_rate_window_seconds":
            guard let n = Int(v), (1...3600).contains(n) else { throw bad("must be seconds 1–3600") }
            connectionLimits.rateWindow = .seconds(n)
        case "max_connections":
            guard let n = Int(v), (1...1_000_000).contains(n) else { throw bad("must be a whole number 1–1000000") }
            connectionLimits.maxConnections = n
        case "public_url":
            if v.isEmpty {
                publicURL = nil
            } else {
                guard let url = URL(string: v), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil,
                    url.query == nil, url.fragment == nil
                else { throw bad("must be an http or https address like https://ziyuanku.example.edu.cn") }
                publicURL = v.hasSuffix("/") ? String(v.dropLast()) : v
            }
        case "trusted_proxies":
            trustedProxies = try v.split(separator: ",").map { item in
                guard let r = AddressRange(String(item)) else { throw bad("'\(item)' is not an address or CIDR range") }
                return r
            }
        case "metrics_allow":
            metricsAllow = []
            metricsToken = nil
            for item in v.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                if item.hasPrefix("token:") {
                    let t = String(item.dropFirst(6))
                    guard t.count >= 16 else { throw bad("a metrics token must be at least 16 characters") }
                    metricsToken = t
                } else {
                    guard let r = AddressRange(item) else { throw bad("'\(item)' is not an address, CIDR range or token:SECRET") }
                    metricsAllow.append(r)
                }
            }
        case "max_open_uploads_per_user", "max_tokens_per_user":
            guard let n = Int(v), (1...1_000_000).contains(n) else { throw bad("must be a whole number 1–1000000") }
            if key == "max_tokens_per_user" { maxTokensPerUser = n } else { maxOpenUploadsPerUser = n }
        case "shutdown_timeout_seconds":
            guard let n = Int(v), (1...3600).contains(n) else { throw bad("must be seconds 1–3600") }
            shutdownTimeoutSeconds = n
        case "max_open_upload_bytes_per_user":
            guard let n = Int64(v), n > 0 else { throw bad("must be a positive number of bytes") }
            maxOpenUploadBytesPerUser = n
        case "deleted_retention_days":
            guard let n = Int(v), (1...3650).contains(n) else { throw bad("must be a number of days 1–3650") }
            deletedRetentionDays = n
        default:
            throw Invalid(description: "\(source): unknown setting '\(key)'; known: \(Self.keys.map(\.key).joined(separator: ", "))")
        }
    }

    /// Reads `key = value` lines; `#` starts a comment.
    public mutating func apply(file path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw Invalid(description: "cannot read config file \(path): \(error.localizedDescription)")
        }
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard let eq = line.firstIndex(of: "=") else { throw Invalid(description: "\(path):\(i + 1): expected key = value") }
            var value = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            try set(String(line[..<eq]).trimmingCharacters(in: .whitespaces), value, source: "\(path):\(i + 1)")
        }
    }

    public mutating func apply(environment: [String: String]) throws {
        for k in Self.keys {
            if let v = environment[k.env] { try set(k.key, v, source: k.env) }
        }
    }
}

extension ServerConfig {
    /// The address people use: `public_url`, else this server's own.
    public var effectivePublicURL: String { publicURL ?? "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// The platform settings, or nil when sync is not configured (`platform_url` unset).
    public var platform: PlatformConfig? {
        guard let platformURL else { return nil }
        var p = PlatformConfig(baseURL: platformURL, appKey: platformAppKey, appSecret: platformAppSecret)
        p.transfer.connectTimeoutSeconds = syncConnectTimeoutSeconds
        p.transfer.lowSpeedLimitBytes = syncLowSpeedBytes
        p.transfer.lowSpeedTimeSeconds = syncLowSpeedSeconds
        p.transfer.caFile = platformCAFile
        return p
    }

    public var syncSettings: SyncSettings {
        var s = SyncSettings()
        s.concurrency = syncConcurrency
        s.maxAttempts = syncMaxAttempts
        s.backoffBaseSeconds = syncBackoffBaseSeconds
        s.backoffCapSeconds = max(syncBackoffCapSeconds, syncBackoffBaseSeconds)
        return s
    }

    /// A ready platform adapter and its transfer pool, or a plain-words reason why not.
    /// The platform settings when they are complete and usable, else a plain-words reason.
    public func usablePlatform() throws(SyncUnavailable) -> PlatformConfig {
        guard let platform else {
            throw SyncUnavailable(
                "sync is not configured: set platform_url, platform_app_key and platform_app_secret (or ZYK_PLATFORM_URL, ZYK_PLATFORM_APP_KEY, ZYK_PLATFORM_APP_SECRET)"
            )
        }
        let problems = platform.problems
        guard problems.isEmpty else { throw SyncUnavailable(problems.joined(separator: "; ")) }
        return platform
    }

    /// A ready platform adapter and its transfer pool (threads: shut it down after use).
    public func makePlatform() throws(SyncUnavailable) -> (adapter: PlatformV1, pool: CurlPool) {
        let platform = try usablePlatform()
        let pool = CurlPool(size: syncConcurrency, options: platform.transfer)
        return (PlatformV1(config: platform, pool: pool), pool)
    }
}

public struct SyncUnavailable: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// Time and count bounds for client connections (docs/product.md#limits-and-slow-clients):
/// - `idleTimeout`: a connection with no request in progress and nothing received for this
///   long is closed (keep-alive idle, or a socket that never sends anything);
/// - `headerTimeout`: once the first byte of a request arrives, its whole head must arrive
///   within this time (slowloris); the client gets a 408, then the connection is closed;
/// - `minBodyBytesPerSecond`: while the server is waiting for body bytes, at least this rate
///   over each `rateWindow` of waiting (time the server itself holds back reading does not
///   count, so a slow disk never cuts a client);
/// - a client that takes nothing of its response for `idleTimeout` is dropped too;
/// - `maxConnections`: past it, the longest-idle connection that is not in a request is
///   closed to make room; when every connection is busy the new one gets a 503 with
///   `Retry-After` and is closed, never left hanging.
public struct ConnectionLimits: Sendable, Equatable {
    public var idleTimeout: Duration = .seconds(75)
    public var headerTimeout: Duration = .seconds(30)
    public var minBodyBytesPerSecond = 256
    public var rateWindow: Duration = .seconds(60)
    public var maxConnections = 4096
    public init() {}
}

extension ServerConfig: CustomStringConvertible, CustomDebugStringConvertible {
    /// Where the server listens and its data root; never the platform secret or the metrics token,
    /// whatever prints a configuration (an error, a log line, a debugger).
    public var description: String { "ServerConfig(dataRoot: \(dataRoot), address: \(host):\(port))" }
    public var debugDescription: String { description }
}
