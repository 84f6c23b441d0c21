import ArgumentParser

@main
struct Zyk: AsyncParsableCommand {
    /// The one place the version is written; `zyk --version` prints it.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "zyk",
        abstract: "Ziyuanku (资源库): the vocational-education teaching resource library server and its admin tools.",
        discussion: """
            Commands work on a data root (default ./storage, or ZYK_DATA_ROOT, or --data-root).
            Whoever can read the data root administers it; pass --token (or ZYK_TOKEN) to act as
            a specific admin and have that token checked.

            Examples:
              zyk serve                                   # start on 127.0.0.1:8080 with ./storage
              zyk org add 某某职业技术学院 --kind higherVocational
              zyk user add --org 某某职业技术学院 --name 王老师 --role teacher
              zyk vocab import-majors majors-2021.csv
              zyk sync run                                # push selected resources to the national platform

            Exit codes: 0 success, 1 failure, 64 usage error, 65 bad input data, 74 I/O error,
            75 busy (another sync run), 77 permission denied.
            """,
        version: version,
        subcommands: [
            Serve.self, Migrate.self, OrgCommand.self, UserCommand.self, TokenCommand.self, VocabCommand.self, Reindex.self, AuditCommand.self,
            Fixity.self, GC.self, Verify.self, Optimize.self, Backup.self, Restore.self, Report.self, Jobs.self, Import.self, SyncCommand.self,
        ]
    )
}
