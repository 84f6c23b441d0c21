import ArgumentParser
import Foundation
import ZiyuankuCore
import ZiyuankuStore

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check and read the audit log.",
        discussion: """
            The audit log records who did what, and when. It is tamper-evident: each entry holds \
            the SHA-256 of its own fields and of the entry before it, so `zyk audit verify` can \
            tell when an entry was edited, removed or moved.

            EXAMPLES:
              zyk audit verify
              zyk audit list --limit 20
            """,
        subcommands: [Verify.self, List.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit log's hash chain and report the first broken link.",
            discussion: """
                Walks the chain from the first entry to the newest. Any change to an entry, even \
                one made by writing to the SQLite file directly, breaks the chain from that entry \
                on. The newest entry is also recorded outside the log, so entries removed from the \
                end are noticed too. Exits 1 when the chain is broken.

                It is safe to run while the server is running: it reads one consistent snapshot.

                EXAMPLES:
                  zyk audit verify
                  zyk audit verify --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await cli {
                let (catalog, _) = try root.openCatalog()
                let bar = ProgressBar(total: 1, label: "verifying")
                let result = try catalog.verifyAudit { done, total in bar.update(Int(done), of: Int(total)) }
                bar.finish()
                if output.json {
                    try Output.json(result)
                } else if result.ok {
                    print("audit log intact: \(result.entries) entries, chain and head verified")
                } else {
                    print("audit log BROKEN at entry \(result.brokenAt ?? 0): \(result.problem ?? "")")
                }
                if !result.ok { throw ExitCode(1) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List audit entries, newest first.",
            discussion: """
                Filters combine: an entry is shown only if it matches all of them. --since takes \
                an RFC 3339 time; --limit is 1 to 10000 (default 50).

                EXAMPLES:
                  zyk audit list --limit 20
                  zyk audit list --resource 0193… --json
                  zyk audit list --action resource.approve --since 2026-11-01T00:00:00Z
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only entries about this resource id.") var resource: String?
        @Option(help: "Only entries by this user id.") var user: String?
        @Option(help: "Only this action (e.g. resource.publish, token.issue).") var action: String?
        @Option(help: "Only entries at or after this RFC 3339 time.") var since: String?
        @Option(help: "How many entries (1–10000).") var limit: Int = 50

        func run() async throws {
            try await cli {
                guard (1...10_000).contains(limit) else { throw CLIError("--limit must be 1–10000", code: 64) }
                var q = AuditQuery()
                q.resourceId = resource
                q.actorId = user
                q.action = action
                if let since {
                    guard let d = Timestamp.parse(since) else { throw CLIError("--since must be an RFC 3339 time such as 2026-11-01T00:00:00Z", code: 64) }
                    q.since = Timestamp.format(d)
                }
                q.limit = limit
                let (catalog, _) = try root.openCatalog()
                let items = try catalog.auditEntries(q)
                if output.json {
                    try Output.json(items)
                } else {
                    Output.table(
                        ["seq", "at", "actor", "action", "resource", "version", "details"],
                        items.map {
                            [String($0.seq), $0.at, $0.actorId ?? "-", $0.action, $0.resourceId ?? "-", $0.version.map(String.init) ?? "-", $0.details]
                        })
                }
            }
        }
    }
}
