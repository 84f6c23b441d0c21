import ArgumentParser
import Foundation
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Runs one upkeep job (a recorded run) through the library, with a progress bar, then prints
/// the summary (or JSON) and exits 1 when the job found problems. `options` names the command's
/// options for the library's validation errors (see `usage`).
func runJob<R: JobReport>(
    root: RootOptions, output: OutputOptions, label: String, options: [String: String] = [:], messages: [String: String] = [:],
    _ body: (UpkeepService, AdminActor, @escaping UpkeepService.Progress) throws -> (run: JobRun, report: R), summary: (R) -> Void
) async throws {
    try await cli {
        let (library, actor) = try root.openLibrary()
        let bar = ProgressBar(total: 1, label: label)
        let (run, report) = try usage(options, messages: messages) {
            try body(library.upkeep, actor) { done, total in bar.update(Int(clamping: done), of: Int(clamping: total)) }
        }
        bar.finish()
        if output.json {
            try Output.json(JobOutput(run: run, report: report))
        } else {
            summary(report)
            print("run \(run.id): \(run.outcome.rawValue)")
        }
        if run.outcome == .problems { throw ExitCode(1) }
    }
}

struct JobOutput<R: Encodable>: Encodable {
    var run: JobRun
    var report: R
}

func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 {
        v /= 1024
        u += 1
    }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

struct Fixity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-hash stored files to find damaged or missing ones.",
        discussion: """
            Every stored file (blob) is named by its SHA-256. Fixity reads the files back, \
            hashes them and compares, starting with those checked longest ago. Each result is \
            recorded, so a series of short runs with --budget covers the whole store.

            Damaged or missing files are listed with the resources and versions that use them, \
            and the command exits 1. It is safe to run while the server is running.

            EXAMPLES:
              zyk fixity                       # everything
              zyk fixity --budget 600          # at most 10 minutes, oldest checks first
              zyk fixity --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Stop after this many seconds (the rest is checked first next time).") var budget: Double?

    func run() async throws {
        try await runJob(
            root: root, output: output, label: "fixity", options: ["budget": "--budget"],
            { u, a, p in try u.fixity(budget: budget, trigger: .cli, as: a, progress: p) }
        ) { r in
            print(
                "checked \(r.checked) blobs (\(formatBytes(r.bytes))) in \(String(format: "%.1f", r.seconds)) s: \(r.ok) ok, \(r.problems.count) problems"
                    + (r.remaining > 0 ? ", \(r.remaining) left for the next run" : ""))
            if !r.problems.isEmpty {
                Output.table(
                    ["sha256", "result", "size", "used by"],
                    r.problems.map { p in
                        [p.sha256, p.result, String(p.size), p.references.map { "\($0.resourceId) v\($0.version) \($0.name)" }.joined(separator: "; ")]
                    })
            }
        }
    }
}

struct GC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove stored files that nothing uses, old trash and abandoned uploads.",
        discussion: """
            Only what is older than the grace period (--grace-hours, default 24, at least 1) is \
            removed, so uploads in progress, and files uploaded for a resource that is not saved \
            yet, are kept. Removed files wait in trash/ for one more grace period before they \
            are deleted.

            Use --dry-run to see what would be removed and how much space that frees. It is \
            safe to run while the server is running.

            EXAMPLES:
              zyk gc --dry-run                 # list what would go and the bytes freed
              zyk gc
              zyk gc --grace-hours 72 --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "List what would be removed without removing anything.") var dryRun = false
    @Option(help: "Keep anything younger than this many hours (default 24).") var graceHours: Double = 24

    func run() async throws {
        try await runJob(
            root: root, output: output, label: "gc", options: ["graceHours": "--grace-hours"],
            { u, a, p in try u.gc(graceHours: graceHours, dryRun: dryRun, trigger: .cli, as: a, progress: p) }
        ) { r in
            print(
                "\(r.dryRun ? "would remove" : "removed") \(r.removed.count) unused blobs (\(formatBytes(r.bytesFreed))), "
                    + "\(r.trashPurged) old trash files, \(r.tmpRemoved) abandoned partial uploads"
                    + (r.keptInUse > 0 ? "; \(r.keptInUse) kept because a save started using them" : ""))
            if r.dryRun && !r.removed.isEmpty { Output.table(["sha256", "size"], r.removed.prefix(200).map { [$0.sha256, String($0.size)] }) }
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the catalog, the stored files, the search index and the audit log.",
        discussion: """
            Runs SQLite's integrity and foreign-key checks, then checks that every stored file a \
            version uses exists with the right size, that the search index holds exactly the \
            resources it should, and that the audit log's hash chain is intact. It does not \
            re-hash file contents; `zyk fixity` does.

            Exits 1 on any problem. It is safe to run while the server is running.

            EXAMPLES:
              zyk verify
              zyk verify --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runJob(root: root, output: output, label: "verify", { u, a, p in try u.verify(trigger: .cli, as: a, progress: p) }) { r in
            print(
                "integrity \(r.integrity), \(r.foreignKeyViolations) foreign key violations, \(r.referencedBlobs) referenced blobs, "
                    + "search index \(r.searchIndexed)/\(r.searchExpected), audit log \(r.auditEntries) entries")
            if !r.findings.isEmpty { Output.table(["check", "problem"], r.findings.map { [$0.check, $0.message] }) }
        }
    }
}

struct Optimize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compact the search index and tidy the catalog's database.",
        discussion: """
            Merges the search index, refreshes SQLite's query statistics and truncates the \
            write-ahead log. The server does this by itself once a day \
            (optimize_interval_minutes); run it by hand after a large import. It is safe to run \
            while the server is running; if readers keep the log busy, it is truncated next time.

            EXAMPLES:
              zyk optimize
              zyk optimize --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runJob(root: root, output: output, label: "optimize", { u, a, _ in try u.optimize(trigger: .cli, as: a) }) { r in
            print(
                "catalog \(formatBytes(r.catalogBytesBefore)) → \(formatBytes(r.catalogBytesAfter)) (with its log)"
                    + (r.walBusy ? "; the log could not be truncated while readers were active (retried next time)" : ""))
        }
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recent runs of the upkeep jobs.",
        discussion: """
            Every run of an upkeep job (fixity, gc, verify, optimize, reindex, backup, restore, \
            report), from this tool or from the server's schedule, is recorded: when it started \
            and ended, how it ended, and its counts. --kind shows one job; --limit is 1 to 1000 \
            (default 20).

            EXAMPLES:
              zyk jobs
              zyk jobs --kind fixity --limit 5 --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Only this job: \(JobKind.allCases.map(\.rawValue).joined(separator: ", ")).") var kind: String?
    @Option(help: "How many runs (1–1000).") var limit: Int = 20

    func run() async throws {
        try await cli {
            let k: JobKind? = try choice(kind, option: "kind")
            let (library, actor) = try root.openLibrary()
            let runs = try usage(["limit": "--limit"]) { try library.upkeep.runs(kind: k, limit: limit, as: actor).items }
            if output.json {
                try Output.json(runs)
            } else {
                Output.table(
                    ["id", "job", "trigger", "started", "ended", "outcome", "counts"],
                    runs.map { r in
                        [
                            String(r.id), r.kind.rawValue, r.trigger.rawValue, r.startedAt, r.endedAt ?? "-", r.outcome.rawValue,
                            r.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                        ]
                    })
            }
        }
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up the catalog and its stored files to a folder.",
        discussion: """
            It is safe to run while the server is running. The catalog is copied with SQLite's \
            online backup, which gives one consistent snapshot even while teachers upload. The \
            stored files it uses are hard-linked when the folder is on the same filesystem, and \
            copied otherwise. manifest.json, with the digests, is written last.

            Backing up to the same folder again only adds the new files. Restore a backup with \
            `zyk restore`.

            EXAMPLES:
              zyk backup /srv/backups/zyk-2026-11-30
              zyk backup /mnt/usb/zyk --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The backup folder (created if needed).") var target: String

    func run() async throws {
        let target = URL(fileURLWithPath: target).standardizedFileURL.path
        try await runJob(root: root, output: output, label: "backup", { u, a, p in try u.backup(to: target, trigger: .cli, as: a, progress: p) }) { r in
            print(
                "backed up the catalog (\(formatBytes(r.catalogBytes))) and \(r.blobs) blobs (\(formatBytes(r.blobBytes))) to \(r.target) in "
                    + String(format: "%.1f s", r.seconds) + ": \(r.linked) linked, \(r.copied) copied, \(r.alreadyThere) already there")
            if !r.missing.isEmpty { print("MISSING in the data root (run zyk fixity): \(r.missing.prefix(20).joined(separator: ", "))") }
        }
    }
}

struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into an empty data root, then check it.",
        discussion: """
            The data root (--data-root) must be empty: restore never overwrites a library. The \
            backup is checked against the digests in its manifest, copied in, and then checked \
            with fixity and verify. Exits 1 when either finds a problem.

            EXAMPLES:
              zyk restore /srv/backups/zyk-2026-11-30 --data-root /srv/zyk-restored
              zyk restore /mnt/usb/zyk --data-root ./storage --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The backup folder (with manifest.json).") var source: String

    func run() async throws {
        try await cli {
            let dataRoot = DataRoot(path: try root.serverConfig().dataRoot)
            let bar = ProgressBar(total: 1, label: "restore")
            let (run, report) = try UpkeepService.restore(from: source, into: dataRoot) { done, total in
                bar.update(Int(clamping: done), of: Int(clamping: total))
            }
            bar.finish()
            if output.json {
                try Output.json(JobOutput(run: run, report: report))
            } else {
                print("restored \(report.blobs) blobs (\(formatBytes(report.bytes))) into \(dataRoot.path)")
                print(
                    "fixity: \(report.fixity?.ok ?? 0) ok, \(report.fixity?.problems.count ?? 0) problems; verify: \(report.verify?.findings.count ?? 0) problems"
                )
                for f in report.verify?.findings ?? [] { print("  \(f.check): \(f.message)") }
                for p in report.fixity?.problems ?? [] { print("  \(p.result): \(p.sha256)") }
            }
            if run.outcome == .problems { throw ExitCode(1) }
        }
    }
}

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the library report: resources, updates, downloads, storage and sync.",
        discussion: """
            Counts the resources by type, level, organization and major, and shows the \
            downloads, active teachers, storage use and the state of the sync to the national \
            platform. Downloads and active teachers are counted from --since up to, but not \
            including, --until; by default over the last 365 days.

            Exits 1 when fewer than 10% of the resources were added or updated in the last 12 \
            months (the Ministry's yearly update rule).

            EXAMPLES:
              zyk report
              zyk report --since 2026-01-01 --until 2027-01-01 --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Start of the period (YYYY-MM-DD or RFC 3339, default 365 days ago).") var since: String?
    @Option(help: "End of the period, exclusive (default now).") var until: String?

    static func parseDay(_ s: String, _ flag: String) throws -> Date {
        if let d = Timestamp.parse(s) { return d }
        if let d = Timestamp.parse(s + "T00:00:00Z") { return d }
        throw CLIError("\(flag) must be a day like 2026-01-01 or an RFC 3339 time", code: 64)
    }

    func run() async throws {
        let to = try until.map { try Self.parseDay($0, "--until") }
        let from = try since.map { try Self.parseDay($0, "--since") }
        try await runJob(
            root: root, output: output, label: "report", options: ["from": "--since"], messages: ["from": "--since must be before --until"],
            { u, a, _ in try u.report(from: from, to: to, trigger: .cli, as: a) }
        ) { r in
            print("资源库报告 library report, \(r.from) – \(r.to)")
            print("resources \(r.resources) (published \(r.published)); non-text \(r.nonText) (\(String(format: "%.1f%%", r.nonTextShare * 100)))")
            print(
                "added or updated in the last 12 months: \(r.updatedLast12Months) (\(String(format: "%.1f%%", r.updatedShare * 100))) — "
                    + (r.meetsYearlyUpdateRule ? "meets the ≥ 10% yearly rule" : "BELOW the ≥ 10% yearly rule"))
            print("downloads \(r.downloads), active teachers \(r.activeTeachers)")
            print("storage \(formatBytes(r.storedBytes)) in \(r.storedBlobs) blobs; deduplication saves \(formatBytes(r.savedByDeduplication))")
            let s = r.platformSync
            print(
                "national platform: \(s.done) on the platform, \(s.waiting) waiting, \(s.dead) dead"
                    + (r.lastSyncRunEndedAt.map { "; last sync run ended \($0)" } ?? "; never synced"))
            for (title, buckets) in [
                ("type", r.byType), ("level", r.byLevel), ("organization", r.byOrganization), ("大类", r.byMajorCategory), ("类", r.byMajorClass),
            ] {
                print("")
                Output.table([title, "name", "resources"], buckets.prefix(30).map { [$0.key, $0.name ?? "", String($0.count)] })
            }
        }
    }
}
