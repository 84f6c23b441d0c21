import ArgumentParser
import Foundation
import Logging
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Options every data-root command takes.
struct RootOptions: ParsableArguments {
    @Option(name: .long, help: "Data root folder (default: $ZYK_DATA_ROOT or ./storage).")
    var dataRoot: String?

    @Option(name: .long, help: "Config file with key = value lines (see README, Configuration).")
    var config: String?

    @Option(name: .long, help: "Act as this admin token (default: $ZYK_TOKEN; optional for local use).")
    var token: String?

    func serverConfig() throws -> ServerConfig {
        var c = ServerConfig()
        do {
            if let config { try c.apply(file: config) }
            try c.apply(environment: ProcessInfo.processInfo.environment)
        } catch let e as ServerConfig.Invalid {
            throw CLIError(e.description, code: 64)
        }
        if let dataRoot { c.dataRoot = dataRoot }
        return c
    }

    /// Opens the catalog (migrating it) and checks --token when one is given.
    func openCatalog(requireAdmin: Bool = true) throws -> (Catalog, DataRoot) {
        let c = try serverConfig()
        let root = DataRoot(path: c.dataRoot)
        let catalog: Catalog
        do { catalog = try Catalog.open(root: root) } catch {
            throw CLIError("cannot open the data root \(root.path): \(error)", code: 74)
        }
        if requireAdmin, let token = token ?? ProcessInfo.processInfo.environment["ZYK_TOKEN"] {
            guard let p = try catalog.authenticate(token: token.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw CLIError("the token is invalid, expired or revoked", code: 77)
            }
            guard p.role == .admin else { throw CLIError("the token belongs to \(p.name), who is not an admin", code: 77) }
        }
        return (catalog, root)
    }

    /// The library on the data root (migrated), and who acts: the operator at the machine, as
    /// the --token's admin when one is given.
    func openLibrary() throws -> (Library, AdminActor) {
        let (catalog, _) = try openCatalog()
        return (Library(config: try serverConfig(), catalog: catalog), .local(userId: try actor(catalog)))
    }

    /// The admin acting, for the audit log: the --token's user, or nil for local use without one.
    func actor(_ catalog: Catalog) throws -> String? {
        guard let token = token ?? ProcessInfo.processInfo.environment["ZYK_TOKEN"] else { return nil }
        return try catalog.authenticate(token: token.trimmingCharacters(in: .whitespacesAndNewlines))?.userId
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of a table.")
    var json = false
}

/// An error with a plain message and an exit code.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    let code: Int32
    init(_ message: String, code: Int32 = 1) {
        description = message
        self.code = code
    }
}

/// Runs `body`, reporting a validation error about what the command's options said as a usage
/// error (64) in the command's words: `options` maps the library's field names to the options
/// (`["majorCode": "--major"]`; `ids[2]` is found under `ids`), and `messages` replaces the whole
/// message of a field where the option's own wording is clearer.
func usage<T>(_ options: [String: String], messages: [String: String] = [:], _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as DomainError where e.code == .validation {
        let lines = e.fields.map { f in
            if let whole = messages[f.field] { return whole }
            let base = f.field.split(separator: "[").first.map(String.init) ?? f.field
            return "\(options[base] ?? f.field): \(f.message)"
        }
        throw CLIError(lines.joined(separator: "; "), code: 64)
    }
}

/// Runs a command body, turning errors into a plain message on stderr and an exit code.
func cli(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as CLIError {
        FileHandle.standardError.write(Data("zyk: \(e.description)\n".utf8))
        throw ExitCode(e.code)
    } catch let e as DomainError {
        FileHandle.standardError.write(Data("zyk: \(e.message)\n".utf8))
        for f in e.fields { FileHandle.standardError.write(Data("  \(f.field): \(f.message)\n".utf8)) }
        throw ExitCode(e.code.exitCode)
    }
}

extension DomainError.Code {
    /// The one table from domain codes to exit codes (sysexits.h, as `CLIError`s use them).
    var exitCode: Int32 {
        switch self {
        // The input named something that is not there, or is not acceptable as given.
        case .validation, .notFound, .conflict, .payloadTooLarge, .badRequest, .malformedJSON, .malformedMultipart, .fileTypeNotAllowed,
            .unsupportedMediaType, .digestMismatch, .checksumMismatch, .gone, .preconditionFailed, .preconditionRequired, .rangeNotSatisfiable:
            65  // EX_DATAERR
        case .unauthorized, .forbidden, .quotaExceeded: 77  // EX_NOPERM
        case .unavailable, .locked, .tooManyRequests, .requestTimeout: 75  // EX_TEMPFAIL
        case .insufficientStorage: 74  // EX_IOERR
        case .methodNotAllowed, .internal: 70  // EX_SOFTWARE
        }
    }
}

enum Output {
    static func json<T: Encodable>(_ value: T) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try e.encode(value), as: UTF8.self))
    }

    /// A plain text table; widths count CJK characters as two columns.
    static func table(_ header: [String], _ rows: [[String]]) {
        func width(_ s: String) -> Int { s.unicodeScalars.reduce(0) { $0 + (isWide($1) ? 2 : 1) } }
        var widths = header.map(width)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], width(c)) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in c + String(repeating: " ", count: max(0, widths[i] - width(c))) }.joined(separator: "  ")
        }
        print(line(header))
        print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for r in rows { print(line(r)) }
    }

    static func isWide(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
            0x1F300...0x1F64F, 0x20000...0x3FFFD:
            true
        default: false
        }
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal (so logs and pipes stay clean).
final class ProgressBar {
    var total: Int
    let label: String
    let enabled: Bool
    let start = Date()
    private var lastDraw = Date.distantPast

    init(total: Int, label: String) {
        self.total = max(total, 1)
        self.label = label
        enabled = isatty(2) == 1
    }

    func update(_ done: Int, of total: Int) {
        self.total = max(total, 1)
        update(done)
    }

    func update(_ done: Int, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let frac = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(frac * Double(width))
        let rate = Double(done) / max(now.timeIntervalSince(start), 0.001)
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = String(format: "\r%@ %@ %3.0f%% %d/%d  %.0f/s ", label, bar, frac * 100, done, total, rate)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        update(total, force: true)
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardOutput(label: label)
        h.logLevel = level
        return h
    }
}

/// A closed-vocabulary option (`--kind`, `--role`, `--state`, …): nil when not given; a usage
/// error (exit 64) naming the option, the allowed values and what was given otherwise.
func choice<E: CaseIterable & RawRepresentable>(_ value: String?, option: String) throws -> E? where E.RawValue == String {
    guard let value else { return nil }
    guard let parsed = E(rawValue: value) else { throw CLIError("--\(option) must be one of: \(E.allowedValues) (got '\(value)')", code: 64) }
    return parsed
}
