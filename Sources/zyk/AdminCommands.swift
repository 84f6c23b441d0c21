import ArgumentParser
import Foundation
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "org", abstract: "Add and list organizations (schools and other units, 学校/单位).",
        discussion: """
            Every user belongs to one organization. Wherever a command asks for an organization, \
            give its id or its exact name.

            EXAMPLES:
              zyk org add 某某职业技术学院 --kind higherVocational
              zyk org list
            """,
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an organization.",
            discussion: """
                The name must be 1 to 200 printable characters, and no other organization may \
                have it. The kind is one of: \(OrganizationKind.allowedValues).

                EXAMPLES:
                  zyk org add 某某职业技术学院 --kind higherVocational
                  zyk org add 某某卫生学校 --kind secondaryVocational --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Organization name.") var name: String
        @Option(help: "Kind of organization.") var kind: String

        func run() async throws {
            try await cli {
                guard let k: OrganizationKind = try choice(kind, option: "kind") else { return }
                let (library, actor) = try root.openLibrary()
                let org = try usage(["name": "the name"]) {
                    try library.accounts.createOrganization(["name": .string(name), "kind": .string(k.rawValue)], as: actor)
                }
                if output.json { try Output.json(org) } else { print("created organization \(org.name) (\(org.id))") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List organizations.",
            discussion: """
                Prints each organization's id, name and kind.

                EXAMPLES:
                  zyk org list
                  zyk org list --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await cli {
                let (library, _) = try root.openLibrary()
                let orgs = try library.accounts.organizations()
                if output.json { try Output.json(orgs) } else { Output.table(["id", "name", "kind"], orgs.map { [$0.id, $0.name, $0.kind.rawValue] }) }
            }
        }
    }
}

/// An organization id or its exact name, as every command takes it.
func resolveOrganization(_ library: Library, _ ref: String) throws -> Organization {
    do { return try library.accounts.organization(ref) } catch let e as DomainError where e.code == .notFound {
        throw CLIError("no organization '\(ref)' (give its id or exact name; see zyk org list)", code: 65)
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Add and list users.",
        discussion: """
            A user belongs to one organization and has one role: \(Role.allowedValues). Users \
            call the API with tokens: `zyk user add` prints the first one, and `zyk token` \
            issues more.

            EXAMPLES:
              zyk user add --org 某某职业技术学院 --name 王老师 --role teacher
              zyk user list --json
            """,
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user and print their first token.",
            discussion: """
                The token is printed once and cannot be shown again, because only its digest is \
                stored: keep it somewhere safe, or issue a new one later with `zyk token create`. \
                The name must be 1 to 100 printable characters. The role is one of: \
                \(Role.allowedValues).

                EXAMPLES:
                  zyk user add --org 某某职业技术学院 --name 王老师 --role teacher
                  zyk user add --org 0193… --name 李审核 --role reviewer --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Organization id or exact name.") var org: String
        @Option(help: "Display name.") var name: String
        @Option(help: "Role.") var role: String

        func run() async throws {
            try await cli {
                guard let r: Role = try choice(role, option: "role") else { return }
                let (library, actor) = try root.openLibrary()
                let o = try resolveOrganization(library, org)
                let (user, token) = try usage(["name": "--name"]) {
                    try library.accounts.createUser(
                        ["organizationId": .string(o.id), "name": .string(name), "role": .string(r.rawValue)], as: actor)
                }
                if output.json {
                    try Output.json(["id": user.id, "name": user.name, "role": user.role.rawValue, "organizationId": o.id, "token": token.secret])
                } else {
                    print("created \(user.role.rawValue) \(user.name) (\(user.id)) in \(o.name)")
                    print("token (shown once, store it now): \(token.secret)")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List users.",
            discussion: """
                Prints each user's id, name, role and organization id. With --org, only the \
                users of that organization.

                EXAMPLES:
                  zyk user list
                  zyk user list --org 某某职业技术学院 --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only this organization (id or name).") var org: String?

        func run() async throws {
            try await cli {
                let (library, actor) = try root.openLibrary()
                let orgId = try org.map { try resolveOrganization(library, $0).id }
                let users = try library.accounts.users(organizationId: orgId, as: actor)
                if output.json {
                    try Output.json(users)
                } else {
                    Output.table(["id", "name", "role", "organization"], users.map { [$0.id, $0.name, $0.role.rawValue, $0.organizationId] })
                }
            }
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Issue, revoke and list API tokens.",
        discussion: """
            Clients send a token in the Authorization header: `Authorization: Bearer <token>`. \
            A token is shown once, when it is issued; the library stores only its SHA-256 \
            digest, so a lost token cannot be recovered, only revoked and replaced.

            EXAMPLES:
              zyk token create --user 0193… --label laptop
              zyk token list --user 0193…
              zyk token revoke 0193…
            """,
        subcommands: [Create.self, Revoke.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a new token for a user.",
            discussion: """
                The token is printed once: store it now. A --label (at most 100 characters) \
                helps you recognise it later. With --expires-in-days (1 to 3650) it expires; \
                without it, it lasts until it is revoked.

                EXAMPLES:
                  zyk token create --user 0193… --label laptop --expires-in-days 90
                  zyk token create --user 0193… --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "User id.") var user: String
        @Option(help: "A label to recognise the token by.") var label: String = ""
        @Option(help: "Days until the token expires (default: never).") var expiresInDays: Int?

        func run() async throws {
            try await cli {
                let (library, actor) = try root.openLibrary()
                var request: [String: JSONValue] = ["userId": .string(user), "label": .string(label)]
                if let expiresInDays { request["expiresInDays"] = .number(Double(expiresInDays)) }
                let t: IssuedToken
                do {
                    t = try usage(["expiresInDays": "--expires-in-days", "label": "--label", "userId": "--user"]) {
                        try library.accounts.issueToken(request, as: actor)
                    }
                } catch let e as DomainError where e.code == .notFound {
                    throw CLIError("no user \(user)", code: 65)
                }
                if output.json {
                    try Output.json(["id": t.info.id, "token": t.secret, "expiresAt": t.info.expiresAt ?? ""])
                } else {
                    print("token \(t.info.id)\(t.info.expiresAt.map { ", expires \($0)" } ?? "")")
                    print("token (shown once, store it now): \(t.secret)")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token, by its id.",
            discussion: """
                From then on the token is refused. Find its id with `zyk token list`. Revoking \
                a token that is already revoked changes nothing.

                EXAMPLES:
                  zyk token revoke 0193…
                """)
        @OptionGroup var root: RootOptions
        @Argument(help: "Token id (see zyk token list).") var id: String

        func run() async throws {
            try await cli {
                let (library, actor) = try root.openLibrary()
                let revoked: Bool
                do { revoked = try library.accounts.revokeToken(id: id, as: actor) } catch let e as DomainError where e.code == .notFound {
                    throw CLIError("no token \(id)", code: 65)
                }
                print(revoked ? "revoked \(id)" : "\(id) was already revoked")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List tokens, without their secrets.",
            discussion: """
                Prints each token's id, user, label, and when it was created, when it expires \
                and when it was revoked. With --user, only that user's tokens.

                EXAMPLES:
                  zyk token list
                  zyk token list --user 0193… --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only this user's tokens.") var user: String?

        func run() async throws {
            try await cli {
                let (library, actor) = try root.openLibrary()
                let tokens = try library.accounts.tokens(userId: user, as: actor)
                if output.json {
                    try Output.json(tokens)
                } else {
                    Output.table(
                        ["id", "user", "label", "created", "expires", "revoked"],
                        tokens.map { [$0.id, $0.userId, $0.label, $0.createdAt, $0.expiresAt ?? "-", $0.revokedAt ?? "-"] })
                }
            }
        }
    }
}

struct VocabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vocab", abstract: "Manage vocabularies: the official list of majors (职业教育专业目录).",
        discussion: """
            Resources are tagged with major codes from this list. A few majors are built in; \
            load the full official list with `zyk vocab import-majors`.

            EXAMPLES:
              zyk vocab import-majors majors-2021.csv
            """,
        subcommands: [ImportMajors.self])

    struct ImportMajors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-majors",
            abstract: "Load the official list of majors from a CSV file.",
            discussion: """
                The file must be UTF-8 (with or without a BOM) and have the columns \
                \(MajorCatalogCSV.requiredColumns.joined(separator: ", ")).

                Every row is checked first. If any row is bad, nothing is imported, each bad row \
                is listed, and the command exits 65. Importing the same file again changes \
                nothing. Use --dry-run to check a file without importing it.

                EXAMPLES:
                  zyk vocab import-majors majors-2021.csv
                  zyk vocab import-majors majors-2021.csv --dry-run --json
                """)
        @OptionGroup var root: RootOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "CSV file.") var file: String
        @Flag(help: "Check the file and report, without importing.") var dryRun = false

        func run() async throws {
            try await cli {
                guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)", code: 74) }
                let (library, actor) = try root.openLibrary()
                let bar = ProgressBar(total: 1, label: "importing majors")
                let outcome: Catalog.MajorCatalogImport
                do {
                    outcome = try library.accounts.importMajors(
                        csv: [UInt8](data), source: URL(fileURLWithPath: file).lastPathComponent, dryRun: dryRun, as: actor
                    ) { done, total in bar.update(done, of: total) }
                } catch let failure as MajorCatalogCSV.RowErrors {
                    let errors = failure.all
                    if output.json {
                        try Output.json(["imported": false, "errors": AnyEncodable(errors.map(\.description))] as [String: AnyEncodable])
                    } else {
                        FileHandle.standardError.write(Data("zyk: \(file) has \(errors.count) bad row(s); nothing was imported:\n".utf8))
                        for e in errors.prefix(50) { FileHandle.standardError.write(Data("  \(e.description)\n".utf8)) }
                        if errors.count > 50 { FileHandle.standardError.write(Data("  … and \(errors.count - 50) more\n".utf8)) }
                    }
                    throw ExitCode(65)
                }
                if !dryRun { bar.finish() }
                let c = outcome.byItemLevel
                if output.json {
                    try Output.json(outcome)
                } else if dryRun {
                    print(
                        "\(file): \(outcome.rows) rows OK (\(c["category"] ?? 0) 大类, \(c["class"] ?? 0) 类, \(c["major"] ?? 0) 专业); nothing imported (--dry-run)"
                    )
                } else {
                    let r = outcome.result
                    print(
                        "\(outcome.rows) rows: \(r.inserted) inserted, \(r.updated) updated, \(r.unchanged) unchanged; the catalog now has \(outcome.majorsInCatalog) majors (专业)"
                    )
                }
            }
        }
    }
}

/// Type-erased Encodable for mixed JSON output.
struct AnyEncodable: Encodable, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    let encodeFn: (any Encoder) throws -> Void
    init<T: Encodable>(_ v: T) { encodeFn = { try v.encode(to: $0) } }
    init(booleanLiteral value: Bool) { self.init(value) }
    init(integerLiteral value: Int) { self.init(value) }
    init(stringLiteral value: String) { self.init(value) }
    func encode(to encoder: any Encoder) throws { try encodeFn(encoder) }
}
