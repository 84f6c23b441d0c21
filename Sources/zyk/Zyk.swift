import ArgumentParser

@main
struct Zyk: AsyncParsableCommand {
    /// The one place the version is written; `zyk --version` prints it.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "zyk",
        abstract: "Ziyuanku (资源库): the teaching resource library server for vocational schools, and its admin tools.",
        discussion: """
            Every command works on a data root: the folder that holds the catalog and the stored \
            files. It is ./storage unless you set ZYK_DATA_ROOT or pass --data-root.

            Anyone who can read the data root can administer it. To act as a named admin, pass \
            --token (or set ZYK_TOKEN): the token is checked, and changes are recorded in the \
            audit log under that admin's name.

            Start with `zyk serve`. On its first start it creates an admin user and writes that \
            admin's token to <data root>/admin-token.

            EXAMPLES:
              zyk serve                           # start on 127.0.0.1:8080 with ./storage
              zyk org add 某某职业技术学院 --kind higherVocational
              zyk user add --org 某某职业技术学院 --name 王老师 --role teacher
              zyk vocab import-majors majors-2021.csv
              zyk sync run                        # send queued resources to the platform
              zyk help sync run                   # help on one command
              zyk --version

            EXIT CODES:
              0   Success.
              1   The command ran but found a problem: a check failed (fixity, verify,
                  audit verify, restore, sync dry-run, the report's yearly update rule),
                  or sync entries are left failed, dead or pending. Also any unexpected
                  error.
              2   zyk import finished but skipped some rows (they are in its report).
              64  Usage error: an unknown option, a missing or bad argument or option
                  value, a bad config file, or the platform is not configured.
              65  Bad input data: something named does not exist, or the input was
                  refused (a bad CSV file or manifest, a name already in use).
              70  Internal error: a bug in zyk; please report it.
              74  I/O error: the data root or a file cannot be opened, read or written,
                  or the storage is full.
              75  Try again later: another sync run is going, or something is
                  temporarily locked or unavailable.
              77  Permission denied: the --token is invalid, expired or revoked, or is
                  not an admin's.
            """,
        version: version,
        subcommands: [
            Serve.self, Migrate.self, OrgCommand.self, UserCommand.self, TokenCommand.self, VocabCommand.self, Reindex.self, AuditCommand.self,
            Fixity.self, GC.self, Verify.self, Optimize.self, Backup.self, Restore.self, Report.self, Jobs.self, Import.self, SyncCommand.self,
        ]
    )
}
