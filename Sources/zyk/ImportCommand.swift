import ArgumentParser
import Foundation
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import many resources from a manifest (CSV or JSON lines) and a folder or zip of files.",
        discussion: """
            Each manifest row is one resource: an import key, the metadata and its files. CSV (UTF-8,
            with or without the BOM Excel writes) takes one column per metadata field; list fields
            (keywords, knowledgePoints, majorCodes, audience, files, authors) separate items with ; or
            、, a file may name its role as path|role and an author as name|role. JSON lines take one
            metadata object per line with "key" and "files": [{"path", "role"}]. See
            docs/import-sample.csv. Every row is checked first; rows with problems are skipped and listed
            (row, field, reason) in the report; the others become drafts of --user, each with its key,
            so running the same import again skips what is done and resumes after a crash.
            Exits 0 when every row was imported (or already was), 2 when some rows were skipped
            (see the report), 65 when the manifest or the zip was refused as a whole.

            Examples:
              zyk import 资源清单.csv --files ./素材 --user 0193… --dry-run
              zyk import 资源清单.csv --files 素材.zip --user 0193… --report 导入报告.csv
              zyk import rows.jsonl --files ./files --user 0193… --json
            """)
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The manifest: .csv or JSON lines.") var manifest: String
    @Option(help: "The files: a folder, or a .zip (extracted with limits).") var files: String
    @Option(help: "The teacher who will own the imported drafts (user id).") var user: String
    @Flag(help: "Check everything, import nothing.") var dryRun = false
    @Option(help: "Write the rows skipped and why to this CSV file (UTF-8 with BOM).") var report: String?
    @Option(help: "Most entries a zip may have.") var maxZipEntries: Int = 10_000
    @Option(help: "Most bytes a zip may unpack to.") var maxUnzippedBytes: Int64 = 8 << 30

    func run() async throws {
        try await cli {
            guard maxZipEntries > 0, maxUnzippedBytes > 0 else { throw CLIError("the zip limits must be positive", code: 64) }
            let config = try root.serverConfig()
            let (catalog, _) = try root.openCatalog()
            guard Identifiers.isUUID(user), let u = try catalog.user(id: user), u.role.canAuthor, !u.disabled else {
                throw CLIError("--user must be the id of a teacher, reviewer or admin (see zyk user list)", code: 65)
            }
            let owner = Principal(userId: u.id, name: u.name, role: u.role, organizationId: u.organizationId, tokenId: "cli")
            let library = Library(config: config, catalog: catalog)
            var limits = ZipLimits()
            limits.maxEntries = maxZipEntries
            limits.maxTotalBytes = maxUnzippedBytes
            let bar = ProgressBar(total: 1, label: dryRun ? "checking" : "importing")
            let summary = try await Importer(library: library).run(
                manifest: manifest, files: files, owner: owner, dryRun: dryRun, limits: limits
            ) { done, total in bar.update(done, of: total) }
            bar.finish()
            if let report {
                var csv = "\u{FEFF}row,key,field,message\n"
                func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
                for p in summary.problems { csv += "\(p.row),\(q(p.key ?? "")),\(q(p.field)),\(q(p.message))\n" }
                try Data(csv.utf8).write(to: URL(fileURLWithPath: report))
            }
            if output.json { try Output.json(summary) } else {
                print("\(summary.rows) rows: \(dryRun ? "would create" : "created") \(summary.created), already imported \(summary.alreadyImported), skipped \(summary.failed)"
                    + String(format: " (%.1f s)", summary.seconds))
                if !summary.problems.isEmpty {
                    Output.table(["row", "key", "field", "problem"], summary.problems.prefix(50).map { [String($0.row), $0.key ?? "", $0.field, $0.message] })
                    if summary.problems.count > 50 { print("… \(summary.problems.count - 50) more\(report == nil ? " (use --report FILE)" : " in \(report!)")") }
                }
            }
            if summary.failed > 0 { throw ExitCode(2) }
        }
    }
}
