import Foundation
import ZIPFoundation
import ZiyuankuCore
import ZiyuankuStore

/// One problem with one manifest row (row numbers count the header as row 1 in CSV, lines in
/// JSON lines).
public struct ImportProblem: Sendable, Codable, Equatable {
    public var row: Int
    public var key: String?
    public var field: String
    public var message: String

    public init(row: Int, key: String?, field: String, message: String) {
        self.row = row
        self.key = key
        self.field = field
        self.message = message
    }
}

public struct ImportSummary: Sendable, Codable, Equatable {
    public var rows = 0
    public var created = 0
    /// Rows whose key this owner had imported before (a re-run, or a resume after a crash).
    public var alreadyImported = 0
    public var failed = 0
    public var dryRun = false
    public var problems: [ImportProblem] = []
    public var seconds = 0.0

    public init(dryRun: Bool = false) { self.dryRun = dryRun }

    /// The problems as a CSV report for people (UTF-8 with a BOM, so Excel and WPS read the
    /// Chinese right): row, key, field, message. Every text cell is quoted, and a cell that a
    /// spreadsheet would take for a formula (it starts with =, +, -, @, a tab or a carriage
    /// return: a manifest's key or value can be anything) is kept as text with a leading '.
    public func problemsCSV() -> String {
        func cell(_ s: String) -> String {
            let text = s.first.map { "=+-@\t\r".contains($0) } == true ? "'" + s : s
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        var csv = "\u{FEFF}row,key,field,message\r\n"
        for p in problems { csv += "\(p.row),\(cell(p.key ?? "")),\(cell(p.field)),\(cell(p.message))\r\n" }
        return csv
    }
}

/// Limits for reading a zip of files, enforced while extracting (the sizes a zip declares are
/// not trusted).
public struct ZipLimits: Sendable {
    public var maxEntries = 10_000
    public var maxTotalBytes: Int64 = 8 << 30
    /// Uncompressed bytes per compressed byte, per entry (a zip bomb inflates by far more).
    public var maxRatio: Int64 = 200
    public init() {}
}

/// Bulk import (docs/product.md#import): a manifest (CSV, UTF-8 with or without a BOM, or JSON lines),
/// one row per resource with its metadata, its files (paths in a folder or a zip) and an import
/// key. Rows are checked first; rows with problems are skipped and reported; the others become
/// drafts of `owner`, each in its own transaction with its key, so a re-run skips what is done.
public struct Importer: Sendable {
    let library: Library

    public init(library: Library) { self.library = library }

    static let listSeparators: Set<Character> = [";", "；", "、", "\n"]
    static let listFields: Set<String> = ["keywords", "knowledgePoints", "majorCodes", "audience"]

    struct Row {
        var number: Int
        var key: String?
        var object: [String: JSONValue]
        var files: [(path: String, role: String?)]
    }

    public func run(
        manifest: String, files: String, owner: Principal, dryRun: Bool, limits: ZipLimits = ZipLimits(),
        manifestLabel: String? = nil, filesLabel: String? = nil,
        progress: (Int, Int) -> Void = { _, _ in }
    ) async throws -> ImportSummary {
        // Messages name the manifest and the files as the user knows them (the HTTP import
        // keeps them as blobs: their paths on this server are nobody's business).
        let filesLabel = filesLabel ?? files
        let start = Date()
        var summary = ImportSummary(dryRun: dryRun)
        let rows = try Self.readManifest(manifest, label: manifestLabel ?? manifest, problems: &summary.problems)
        summary.rows = rows.count
        // Files: a folder as is, or a zip extracted (with limits) into temporary space.
        let source = URL(fileURLWithPath: files).standardizedFileURL.path
        var base = source
        var extracted: String?
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: base, isDirectory: &isDir) else {
            throw DomainError(.validation, "\(filesLabel) does not exist.", fields: [.init(field: "files", message: "not found")])
        }
        library.blobs.removeStaleScratchFolders("import")
        if !isDir.boolValue {
            let dir = library.blobs.newScratchFolderPath("import")
            extracted = dir
            base = dir
        }
        defer { if let extracted { try? FileManager.default.removeItem(atPath: extracted) } }
        if let extracted { try Self.extractZip(source, into: extracted, limits: limits, label: filesLabel) }

        let done = try library.catalog.importedKeys(owner: owner.userId)
        let resources = library.resources
        var seenKeys: [String: Int] = [:]
        var valid: [(Row, ResourceMetadata, [(path: String, name: String, role: FileRole, size: Int64)])] = []
        for row in rows {
            var problems: [ImportProblem] = []
            func problem(_ field: String, _ message: String) { problems.append(ImportProblem(row: row.number, key: row.key, field: field, message: message)) }
            if case .string(let why)? = row.object["_error"] {
                problem("row", why)
                summary.problems += problems
                summary.failed += 1
                continue
            }
            guard let key = row.key, !key.isEmpty, key.unicodeScalars.count <= 200 else {
                problem("key", "every row needs an import key (1–200 characters)")
                summary.problems += problems
                summary.failed += 1
                continue
            }
            if let first = seenKeys[key] {
                problem("key", "the key \(key) is also used by row \(first)")
            } else {
                seenKeys[key] = row.number
            }
            if done.contains(key) && problems.isEmpty {
                summary.alreadyImported += 1
                continue
            }
            var metadata: ResourceMetadata?
            do { metadata = try resources.validateMetadata(row.object) } catch let e as DomainError {
                for f in e.fields { problem(f.field, f.message) }
                if e.fields.isEmpty { problem("metadata", e.message) }
            }
            var resolved: [(path: String, name: String, role: FileRole, size: Int64)] = []
            if row.files.isEmpty { problem("files", "a resource needs at least one file") }
            for (i, f) in row.files.enumerated() {
                let field = "files[\(i)]"
                guard let path = Self.safePath(f.path, under: base) else {
                    problem(field, "\(f.path) is not a plain relative path inside the files (no .., no absolute paths, no links)")
                    continue
                }
                var st = stat()
                guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                    problem(field, "\(f.path) is not a file in \(filesLabel)")
                    continue
                }
                guard Int64(st.st_size) <= library.config.maxUploadBytes else {
                    problem(field, "\(f.path) is larger than the upload limit")
                    continue
                }
                var role: FileRole?
                if let r = f.role {
                    role = FileRole(rawValue: r)
                    if role == nil { problem(field, "role must be one of \(FileRole.allCases.map(\.rawValue).joined(separator: ", "))") }
                }
                guard let name = Filenames.clean((f.path as NSString).lastPathComponent) else {
                    problem(field, "\(f.path) has no usable file name")
                    continue
                }
                resolved.append(
                    (path, name, role ?? ResourceService.defaultRole(for: name, hasPrimary: resolved.contains { $0.role == .primary }), Int64(st.st_size)))
            }
            if let metadata, problems.isEmpty {
                // Media types are sniffed from the bytes, as for an upload.
                let manifestFiles = resolved.map { f in
                    NewFile(name: f.name, sha256: "", size: f.size, mediaType: MediaSniffer.mediaType(head: Self.head(f.path), filename: f.name), role: f.role)
                }
                do { try ResourceService.checkManifest(manifestFiles, resourceType: metadata.resourceType) } catch let e as DomainError {
                    for f in e.fields { problem(f.field, f.message) }
                }
                if problems.isEmpty { valid.append((row, metadata, resolved)) }
            }
            if !problems.isEmpty {
                summary.problems += problems
                summary.failed += 1
            }
        }
        progress(0, valid.count)
        if dryRun {
            summary.created = valid.count
            summary.seconds = Date().timeIntervalSince(start)
            return summary
        }
        for (k, (row, metadata, resolved)) in valid.enumerated() {
            do {
                var newFiles: [NewFile] = []
                for f in resolved {
                    let blob = try await Self.store(f.path, library: library)
                    newFiles.append(
                        NewFile(
                            name: f.name, sha256: blob.sha256, size: blob.size, mediaType: MediaSniffer.mediaType(head: blob.head, filename: f.name),
                            role: f.role))
                }
                if try library.catalog.createImported(owner: owner, key: row.key!, metadata: metadata, files: newFiles) != nil {
                    summary.created += 1
                } else {
                    summary.alreadyImported += 1
                }
            } catch let e as DomainError where e.code == .insufficientStorage {
                throw e  // a full disk stops the import; a re-run resumes after the space is freed
            } catch {
                // One row failing to store does not lose the others (or the report).
                summary.problems.append(
                    ImportProblem(
                        row: row.number, key: row.key, field: "row",
                        message: (error as? DomainError)?.message ?? "the row could not be stored (\(type(of: error)))"))
                summary.failed += 1
            }
            progress(k + 1, valid.count)
        }
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    // MARK: manifest

    /// Manifests are read whole, so they are bounded (100,000 rows fit in well under this).
    public static let maxManifestBytes = 32 << 20

    static func readManifest(_ path: String, label: String, problems: inout [ImportProblem]) throws -> [Row] {
        var st = stat()
        if stat(path, &st) == 0, Int(st.st_size) > maxManifestBytes {
            throw DomainError(.payloadTooLarge, "The manifest is larger than \(maxManifestBytes >> 20) MiB; split it into several imports.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DomainError(.validation, "Cannot read the manifest \(label).", fields: [.init(field: "manifest", message: "not readable")])
        }
        var bytes = Array(data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }  // Excel on Chinese Windows writes a BOM
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw DomainError(.validation, "The manifest is not UTF-8 (save it as “CSV UTF-8” in Excel, or as JSON lines).")
        }
        let first = bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }
        return first == UInt8(ascii: "{") ? try jsonLines(bytes) : try csv(bytes, problems: &problems)
    }

    static func csv(_ bytes: [UInt8], problems: inout [ImportProblem]) throws -> [Row] {
        let table: [[String]]
        do { table = try CSV.parse(bytes) } catch { throw DomainError(.validation, "The manifest is not valid CSV: line \(error.line): \(error.reason).") }
        guard let header = table.first?.map({ $0.trimmingCharacters(in: .whitespaces) }), header.contains("key") else {
            throw DomainError(.validation, "The manifest's first row must name the columns, including key and files.")
        }
        let repeated = Dictionary(grouping: header.filter { !$0.isEmpty }, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        if !repeated.isEmpty { throw DomainError(.validation, "The manifest names a column twice: \(repeated.joined(separator: ", ")).") }
        var rows: [Row] = []
        for (i, cells) in table.dropFirst().enumerated() where !cells.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            var object: [String: JSONValue] = [:]
            var key: String?
            var files: [(String, String?)] = []
            for (c, name) in header.enumerated() where c < cells.count {
                let value = cells[c].trimmingCharacters(in: .whitespacesAndNewlines)
                if value.isEmpty { continue }
                switch name {
                case "key": key = value
                case "files":
                    // File names may contain 、 or ； (一、课程简介.pptx): only ; and new lines separate them.
                    files = value.split(whereSeparator: { $0 == ";" || $0 == "\n" }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map
                    { item in
                        let parts = item.split(separator: "|", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
                        return (parts[0], parts.count > 1 ? parts[1] : nil)
                    }
                case "authors":
                    object["authors"] = .array(
                        split(value).map { item in
                            let parts = item.split(separator: "|", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
                            return .object(["name": .string(parts[0]), "role": .string(parts.count > 1 ? parts[1] : "author")])
                        })
                case let list where listFields.contains(list): object[list] = .array(split(value).map { .string($0) })
                default: object[name] = .string(value)
                }
            }
            if cells.count > header.count, cells[header.count...].contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                // Unquoted commas in the last column would otherwise lose data silently.
                object["_error"] = .string("the row has more cells than the header has columns (quote values that contain commas)")
            }
            rows.append(Row(number: i + 2, key: key, object: object, files: files))
        }
        return rows
    }

    static func split(_ s: String) -> [String] {
        s.split(whereSeparator: { listSeparators.contains($0) }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func jsonLines(_ bytes: [UInt8]) throws -> [Row] {
        var rows: [Row] = []
        for (i, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }
            if trimmed.isEmpty || trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            var object: [String: JSONValue]
            do { object = try JSONValue.parseObject(Array(trimmed)) } catch {
                rows.append(Row(number: i + 1, key: nil, object: ["_error": .string(error.message)], files: []))
                continue
            }
            var key: String?
            if case .string(let k)? = object.removeValue(forKey: "key") { key = k }
            var files: [(String, String?)] = []
            if case .array(let items)? = object.removeValue(forKey: "files") {
                for item in items {
                    switch item {
                    case .string(let p): files.append((p, nil))
                    case .object(let o):
                        if case .string(let p)? = o["path"] {
                            var role: String?
                            if case .string(let r)? = o["role"] { role = r }
                            files.append((p, role))
                        } else {
                            object["_error"] = .string("every item of files must be a path or an object with a path")
                        }
                    default:
                        object["_error"] = .string("every item of files must be a path or an object with a path")
                    }
                }
            }
            rows.append(Row(number: i + 1, key: key?.trimmingCharacters(in: .whitespaces), object: object, files: files))
        }
        return rows
    }

    // MARK: files

    /// The absolute path of `relative` inside `base`, or nil when it is absolute, climbs out
    /// with `..`, or passes through a symbolic link.
    static func safePath(_ relative: String, under base: String) -> String? {
        // The same rule as for zip entries (by code point, no "..", no absolute paths, no
        // control characters), then no link on the way.
        guard let clean = ZipEntryNames.safeRelativePath(relative) else { return nil }
        var path = base
        for part in clean.unicodeScalars.split(separator: "/") {
            path += "/" + String(String.UnicodeScalarView(part))
            var st = stat()
            if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK { return nil }
        }
        return path
    }

    static func head(_ path: String) -> [UInt8] {
        guard let h = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? h.close() }
        return Array((try? h.read(upToCount: MediaSniffer.headLength)) ?? Data())
    }

    /// Streams a file into the blob store (hashed while copied, fsynced, renamed).
    static func store(_ path: String, library: Library) async throws -> BlobInfo {
        let writer = try library.blobs.makeWriter(maxSize: library.config.maxUploadBytes)
        guard let h = FileHandle(forReadingAtPath: path) else { throw DomainError(.internal, "A file to import could not be opened any more.") }
        defer { try? h.close() }
        do {
            while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty {
                try await writer.write(Array(chunk))
            }
            return try await writer.finish()
        } catch {
            writer.abort()
            throw error
        }
    }

    /// An entry's name: zips made on Chinese Windows (Explorer's compressed folders, 360压缩,
    /// older WinRAR) write GBK names without the UTF-8 flag, which readers would otherwise show
    /// as code page 437. Unflagged names are read as UTF-8 when they are valid UTF-8, else as
    /// GB18030, else as code page 437.
    static func entryName(_ entry: Entry) -> String {
        let utf8 = entry.path(using: .utf8)
        if !utf8.isEmpty { return utf8 }
        let gb18030 = entry.path(using: String.Encoding(rawValue: 0x8000_0632))
        return gb18030.isEmpty ? entry.path : gb18030
    }

    /// Extracts a zip with limits checked while extracting: at most `maxEntries` entries (counted
    /// before anything is written), only plain files and folders (no links), no absolute paths
    /// or `..`, at most `maxTotalBytes` in all and `maxRatio` bytes out per byte in per entry.
    /// Anything refused leaves nothing behind.
    /// A zip entry the file system will not take where it belongs: named as the zip names it,
    /// never by where it would have gone on this server.
    static func cannotUnpack(_ name: String) -> DomainError {
        DomainError(
            .validation, "The zip entry \(name) cannot be unpacked (it repeats another entry's name, or a file and a folder share a name).",
            fields: [.init(field: "files", message: "entry cannot be unpacked")])
    }

    static func extractZip(_ zip: String, into dir: String, limits: ZipLimits, label: String? = nil) throws {
        let archive: Archive
        do { archive = try Archive(url: URL(fileURLWithPath: zip), accessMode: .read) } catch {
            throw DomainError(
                .validation, "\(label ?? zip) is neither a folder nor a readable zip file.", fields: [.init(field: "files", message: "not a zip")])
        }
        var entries: [Entry] = []
        var declaredTotal: Int64 = 0
        var zipStat = stat()
        let zipSize = stat(zip, &zipStat) == 0 ? Int64(zipStat.st_size) : 0
        for entry in archive {
            entries.append(entry)
            if entries.count > limits.maxEntries {
                throw DomainError(
                    .validation, "The zip has more than \(limits.maxEntries) entries.", fields: [.init(field: "files", message: "too many entries")])
            }
            // What the zip declares is checked before anything is written; what it actually
            // inflates to is checked again while extracting (headers can lie).
            let declared = Int64(clamping: entry.uncompressedSize)
            declaredTotal += declared
            if declared > (1 << 20) && declared / max(Int64(clamping: entry.compressedSize), 1) > limits.maxRatio {
                throw DomainError(
                    .validation, "The zip entry \(entryName(entry)) inflates more than \(limits.maxRatio)× (a zip bomb?).",
                    fields: [.init(field: "files", message: "compression ratio")])
            }
            if declaredTotal > limits.maxTotalBytes {
                throw DomainError(.payloadTooLarge, "The zip unpacks to more than \(limits.maxTotalBytes) bytes.")
            }
            // Many small entries can inflate as much as one big one: the ratio holds for the whole zip.
            if declaredTotal > (8 << 20) && declaredTotal / max(zipSize, 1) > limits.maxRatio {
                throw DomainError(
                    .validation, "The zip inflates more than \(limits.maxRatio)× in all (a zip bomb?).",
                    fields: [.init(field: "files", message: "compression ratio")])
            }
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        do {
            var total: Int64 = 0
            for entry in entries {
                let raw = Self.entryName(entry)
                let name = TextCleaning.oneLine(raw)
                guard let relative = ZipEntryNames.safeRelativePath(raw) else {
                    throw DomainError(
                        .validation, "The zip entry \(name) would land outside the import folder.", fields: [.init(field: "files", message: "unsafe path")])
                }
                switch entry.type {
                case .symlink:
                    throw DomainError(
                        .validation, "The zip entry \(name) is a symbolic link; links are not imported.", fields: [.init(field: "files", message: "link")])
                case .directory:
                    do { try fm.createDirectory(atPath: dir + "/" + relative, withIntermediateDirectories: true) } catch {
                        throw Self.cannotUnpack(name)
                    }
                    continue
                case .file:
                    break
                }
                let target = dir + "/" + relative
                do { try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true) } catch {
                    throw Self.cannotUnpack(name)
                }
                var st = stat()
                guard lstat(target, &st) != 0, fm.createFile(atPath: target, contents: nil), let out = FileHandle(forWritingAtPath: target) else {
                    throw Self.cannotUnpack(name)
                }
                defer { try? out.close() }
                var written: Int64 = 0
                let declared = Int64(clamping: entry.uncompressedSize)
                _ = try archive.extract(entry, skipCRC32: false) { data in
                    written += Int64(data.count)
                    total += Int64(data.count)
                    if total > limits.maxTotalBytes {
                        throw DomainError(.payloadTooLarge, "The zip unpacks to more than \(limits.maxTotalBytes) bytes.")
                    }
                    if written > declared {
                        throw DomainError(
                            .validation, "The zip entry \(name) inflates past the size it declares (a zip bomb?).",
                            fields: [.init(field: "files", message: "compression ratio")])
                    }
                    try out.write(contentsOf: data)
                }
            }
        } catch {
            try? fm.removeItem(atPath: dir)
            throw error
        }
    }
}
