import ArgumentParser
import Foundation
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import many resources at once from a manifest and their files.",
        discussion: """
            The manifest lists one resource per row: an import key, its metadata and its files. \
            It is CSV or JSON lines. The files come from a folder, or from a zip file that is \
            unpacked with limits on its entries and size.

            In CSV (UTF-8, with or without the BOM that Excel writes) each metadata field is a \
            column. List fields (keywords, knowledgePoints, majorCodes, audience, files, \
            authors) separate their items with ; or 、. A file may give its role as path|role, \
            and an author as name|role. In JSON lines, each line is one metadata object with \
            "key" and "files": [{"path", "role"}]. See docs/import-sample.csv.

            Every row is checked first. Rows with problems are skipped and listed with the row, \
            field and reason (and written to --report). The other rows become drafts owned by \
            --user, each with its key. Running the same import again skips the rows already \
            imported, so an interrupted import can simply be run again.

            Exits 0 when every row was imported (or already had been), 2 when some rows were \
            skipped, and 65 when the manifest or the zip was refused as a whole.

            EXAMPLES:
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
            if let report { try Data(summary.problemsCSV().utf8).write(to: URL(fileURLWithPath: report), options: .atomic) }
            if output.json {
                try Output.json(summary)
            } else {
                print(
                    "\(summary.rows) rows: \(dryRun ? "would create" : "created") \(summary.created), already imported \(summary.alreadyImported), skipped \(summary.failed)"
                        + String(format: " (%.1f s)", summary.seconds))
                if !summary.problems.isEmpty {
                    Output.table(["row", "key", "field", "problem"], summary.problems.prefix(50).map { [String($0.row), $0.key ?? "", $0.field, $0.message] })
                    if summary.problems.count > 50 {
                        print("… \(summary.problems.count - 50) more" + (report.map { " in \($0)" } ?? " (use --report FILE)"))
                    }
                }
            }
            if summary.failed > 0 { throw ExitCode(2) }
        }
    }
}
