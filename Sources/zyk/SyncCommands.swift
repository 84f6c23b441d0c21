import ArgumentParser
import Foundation
import Logging
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuSync

/// `zyk sync …`: push selected resources to the national platform (docs/product.md#sync-to-the-national-platform).
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Send selected resources to the national platform (国家平台推送).",
        discussion: """
            Set the platform's address and credentials with platform_url, platform_app_key and \
            platform_app_secret in the config file, or with ZYK_PLATFORM_URL, \
            ZYK_PLATFORM_APP_KEY and ZYK_PLATFORM_APP_SECRET. Only published, public resources \
            with pushToPlatform set can be sent.

            Selecting a resource puts it in the outbox. From then on, its new publications, \
            withdrawals and deletions are queued by themselves. `zyk sync run`, or the server on \
            its schedule, sends what the outbox holds.

            EXAMPLES:
              zyk sync select --major 520601    # all 康复治疗技术 resources in scope
              zyk sync select --id 0193…-… --id 0193…-…
              zyk sync dry-run                  # what would be sent, and problems
              zyk sync run                      # send now, with a progress bar
              zyk sync status                   # counts, dead entries and why
              zyk sync status --id 0193…-…      # one entry's attempts
              zyk sync retry --dead             # queue dead entries again after a fix
            """,
        subcommands: [SyncSelect.self, SyncDryRun.self, SyncRun.self, SyncStatusCommand.self, SyncRetry.self]
    )
}

struct SyncSelect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Put resources in the outbox, by id or by major, type or organization.",
        discussion: """
            Filters combine: a resource must match all of them. A major code may be a major \
            (520601), a class (5206) or a category (52). Resources named with --id that cannot \
            be sent are listed with the reason. Use --dry-run to see what would be queued.

            EXAMPLES:
              zyk sync select --major 5206 --type video
              zyk sync select --organization 0193… --dry-run --json
            """)

    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Option(name: .customLong("id"), help: "A resource id (repeatable).") var ids: [String] = []
    @Option(help: "A major, class or category code.") var major: String?
    @Option(help: "A resource type: \(ResourceType.allCases.map(\.rawValue).joined(separator: ", ")).") var type: String?
    @Option(help: "An organization id or exact name.") var organization: String?
    @Flag(help: "Show what would be queued without queueing anything.") var dryRun = false

    func run() async throws {
        try await cli {
            var s = PlatformSyncService.Selection()
            s.ids = ids
            s.majorCode = major
            s.resourceType = try choice(type, option: "type")
            s.organization = organization
            let (library, actor) = try root.openLibrary()
            let sync = PlatformSyncService(library: library)
            let result = try usage(
                ["ids": "--id", "majorCode": "--major", "organizationId": "--organization"],
                messages: ["ids": "say what to select: --id, --major, --type or --organization"]
            ) {
                try sync.select(s, as: actor, dryRun: dryRun)
            }
            if output.json { return try Output.json(result) }
            let verb = dryRun ? "would queue" : "queued"
            if result.queued.isEmpty && result.unchanged.isEmpty && result.skipped.isEmpty {
                print("nothing matched: no published, public resource with pushToPlatform set fits these criteria")
                return
            }
            print("\(verb) \(result.queued.count), already current \(result.unchanged.count), skipped \(result.skipped.count)")
            if !result.skipped.isEmpty {
                Output.table(["skipped", "reason"], result.skipped.map { [$0.id, $0.reason] })
            }
        }
    }
}

struct SyncDryRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dry-run",
        abstract: "Show what the next run would send, and what the platform would refuse.",
        discussion: """
            Nothing is sent. Each outbox entry is listed with its files, its bytes and any \
            problem that would make the platform refuse it. Exits 1 when an entry has a problem.

            EXAMPLES:
              zyk sync dry-run
              zyk sync dry-run --json | jq '.[] | select(.problems != [])'
            """)

    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "At most this many entries (1–100000).") var limit: Int = 1000

    func run() async throws {
        try await cli {
            guard (1...100_000).contains(limit) else { throw CLIError("--limit must be 1–100000", code: 64) }
            let (library, actor) = try root.openLibrary()
            let plan = try PlatformSyncService(library: library).plan(limit: limit, as: actor)
            if output.json {
                try Output.json(plan)
            } else {
                Output.table(
                    ["resource", "title", "send", "state", "files", "bytes", "problems"],
                    plan.map { p in
                        [
                            p.resourceId, String((p.title ?? "—").prefix(24)), p.op == .put ? "put v\(p.version ?? 0)" : "delete", p.state.rawValue,
                            "\(p.files)",
                            formatBytes(p.bytes), p.problems.isEmpty ? "—" : p.problems.joined(separator: "; "),
                        ]
                    })
                let bytes = plan.reduce(Int64(0)) { $0 + $1.bytes }
                print(
                    "\(plan.count) to send (\(formatBytes(bytes)) of files, before skipping what the platform has); \(plan.filter { !$0.problems.isEmpty }.count) with problems"
                )
            }
            if plan.contains(where: { !$0.problems.isEmpty }) { throw ExitCode(1) }
        }
    }
}

struct SyncRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Send what the outbox holds now.",
        discussion: """
            Sends every entry that is due, several at a time (--concurrency), and retries the \
            failures that fall due within --max-wait seconds. On a terminal it shows a progress \
            bar; at the end it prints a table, or --json.

            Exits 0 when nothing is left failed, dead or pending, 1 otherwise, 75 when another \
            run is already going, and 64 when the platform is not configured.

            EXAMPLES:
              ZYK_PLATFORM_URL=http://127.0.0.1:9090/api/v1 ZYK_PLATFORM_APP_KEY=zyk-demo \\
                ZYK_PLATFORM_APP_SECRET=zyk-demo-secret zyk sync run
              zyk sync run --config zyk.conf --max-wait 0 --json
            """)

    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Wait up to this many seconds for retries that fall due (default 30).") var maxWait: Double = 30
    @Option(help: "Transfers at once (default: sync_concurrency, 4).") var concurrency: Int?

    func run() async throws {
        try await cli {
            guard maxWait >= 0, maxWait <= 86_400 else { throw CLIError("--max-wait must be 0–86400 seconds", code: 64) }
            if let concurrency, !(1...64).contains(concurrency) { throw CLIError("--concurrency must be 1–64", code: 64) }
            let (library, _) = try root.openLibrary()
            do { _ = try library.config.usablePlatform() } catch { throw CLIError("\(error)", code: 64) }
            var logger = Logger(label: "zyk.sync")
            logger.logLevel = .error
            let bar = SyncBar()
            let summary: SyncRunSummary
            do {
                summary = try await PlatformSyncService(library: library).run(maxWait: maxWait, concurrency: concurrency, logger: logger) {
                    bar.draw($0)
                }
            } catch let e as DomainError where e.code == .conflict {
                throw CLIError(e.message, code: 75)
            }
            bar.finish()
            if output.json {
                try Output.json(summary)
            } else {
                Output.table(
                    ["", "this run", "outbox now"],
                    [
                        ["done", "\(summary.done)", "\(summary.outbox.done)"], ["failed (will retry)", "\(summary.failed)", "\(summary.outbox.failed)"],
                        ["dead", "\(summary.dead)", "\(summary.outbox.dead)"], ["pending", "—", "\(summary.outbox.pending)"],
                    ])
                print(String(format: "sent %@ in %.1f s", formatBytes(summary.bytesSent), summary.seconds))
                if let next = summary.nextAttemptAt { print("next retry due at \(next); run again or let the server's schedule pick it up") }
                if summary.outbox.dead > 0 { print("dead entries need a look: zyk sync status") }
            }
            if summary.outbox.dead > 0 || summary.outbox.failed > 0 || summary.outbox.pending > 0 { throw ExitCode(1) }
        }
    }
}

/// A progress line on stderr (terminals only): items, bytes, rates.
final class SyncBar: @unchecked Sendable {
    private let lock = NSLock()
    private let enabled = isatty(2) == 1
    private let start = Date()
    private var last = SyncProgress()

    func draw(_ p: SyncProgress) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        last = p
        let finished = p.done + p.dead
        let total = max(finished + p.remaining, 1)
        let frac = min(1, Double(finished) / Double(total))
        let secs = max(Date().timeIntervalSince(start), 0.001)
        let filled = Int(frac * 30)
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: 30 - filled)
        let line = String(
            format: "\rsync %@ %3.0f%% %d/%d  %.1f/s  %@ (%@/s)  failed %d dead %d ", bar, frac * 100, finished, total, Double(p.done) / secs,
            formatBytes(p.bytesSent), formatBytes(Int64(Double(p.bytesSent) / secs)), p.failed, p.dead)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

struct SyncStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the outbox: counts, entries that need attention, or one entry's history.",
        discussion: """
            Without options, prints the counts by state and every entry that is not done. \
            --state shows the entries in one state. --id shows one entry with each of its \
            attempts: when, the outcome, the HTTP status, the bytes sent and the error.

            EXAMPLES:
              zyk sync status
              zyk sync status --state dead --json
              zyk sync status --id 0193…-…
            """)

    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Only entries in this state: \(SyncState.allCases.map(\.rawValue).joined(separator: ", ")).") var state: String?
    @Option(help: "Show one entry and its attempts.") var id: String?
    @Option(help: "At most this many entries (1–10000).") var limit: Int = 50

    struct Status: Encodable {
        var outbox: SyncCounts
        var lastRun: JSONValue?
        var entries: [SyncEntry]
    }

    func run() async throws {
        try await cli {
            guard (1...10_000).contains(limit) else { throw CLIError("--limit must be 1–10000", code: 64) }
            let filter: SyncState? = try choice(state, option: "state")
            let (library, actor) = try root.openLibrary()
            let sync = PlatformSyncService(library: library)
            if let id {
                let detail = try sync.entry(id: id, as: actor)
                if output.json { return try Output.json(detail) }
                let (entry, attempts) = (detail.entry, detail.attempts)
                print("\(entry.resourceId)  \(entry.title ?? "(purged)")")
                print("  \(entry.op == .put ? "put version \(entry.version ?? 0)" : "delete")  state \(entry.state.rawValue)  attempts \(entry.attempts)")
                if let r = entry.remoteId { print("  remote id \(r)" + (entry.sentVersion.map { ", platform has version \($0)" } ?? "")) }
                if let e = entry.lastError { print("  last error: \(e)") }
                if entry.state == .failed { print("  next attempt at \(entry.nextAttemptAt)") }
                Output.table(
                    ["finished", "outcome", "send", "HTTP", "bytes", "error"],
                    attempts.map { a in
                        [
                            a.finishedAt, a.outcome, a.op == .put ? "put v\(a.version ?? 0)" : "delete", a.httpStatus.map(String.init) ?? "—",
                            formatBytes(a.bytesSent),
                            a.error ?? "",
                        ]
                    })
                return
            }
            let status = try sync.status(as: actor)
            let counts = status.outbox
            let entries = try sync.entries(state: filter, limit: limit, as: actor)
            if output.json { return try Output.json(Status(outbox: counts, lastRun: status.lastRun, entries: entries)) }
            Output.table(
                ["pending", "inFlight", "done", "failed", "dead", "total"],
                [[counts.pending, counts.inFlight, counts.done, counts.failed, counts.dead, counts.total].map(String.init)])
            if let ended = status.lastRunEndedAt { print("last run ended \(ended)") }
            let shown = filter == nil ? entries.filter { $0.state != .done } : entries
            if !shown.isEmpty {
                print("")
                Output.table(
                    ["resource", "title", "send", "state", "attempts", "next attempt", "last error"],
                    shown.map { e in
                        [
                            e.resourceId, String((e.title ?? "(purged)").prefix(20)), e.op == .put ? "put v\(e.version ?? 0)" : "delete", e.state.rawValue,
                            "\(e.attempts)",
                            e.state == .failed || e.state == .pending ? e.nextAttemptAt : "—", e.lastError ?? "",
                        ]
                    })
            }
        }
    }
}

struct SyncRetry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Queue dead or failed entries again, due now.",
        discussion: """
            An entry goes dead when the platform refuses it, when it cannot be sent (its files \
            are missing here, say), or when it has failed too many times. Fix the cause, queue \
            it again with --dead, --failed or --id, then send it with `zyk sync run`.

            EXAMPLES:
              zyk sync retry --dead
              zyk sync retry --failed
              zyk sync retry --id 0193…-…
            """)

    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Every dead entry.") var dead = false
    @Flag(help: "Every failed entry waiting for its next attempt (e.g. after a long Retry-After).") var failed = false
    @Option(name: .customLong("id"), help: "A dead or failed entry's resource id (repeatable).") var ids: [String] = []

    func run() async throws {
        try await cli {
            let (library, actor) = try root.openLibrary()
            let n = try usage(["ids": "--id"], messages: ["dead": "say which: --dead, --failed, or --id"]) {
                try PlatformSyncService(library: library).retry(dead: dead, failed: failed, ids: ids, as: actor)
            }
            if output.json { return try Output.json(["requeued": n]) }
            print("queued \(n) entr\(n == 1 ? "y" : "ies") again; send them with: zyk sync run")
        }
    }
}
