import CSystemShim
import Crypto
import Foundation
import GRDB
import ZiyuankuCore

/// What a backup folder holds, written last (`manifest.json`): a backup without it is incomplete.
public struct BackupManifest: Sendable, Codable, Equatable {
    public var format = 1
    public var createdAt: String
    public var sourceRoot: String
    public var catalogFile = "catalog.sqlite"  // named per backup: catalog-<time>.sqlite
    public var catalogSHA256: String
    public var catalogBytes: Int64
    public var migrations: [String]
    /// `blobs-<time>.txt`: one `sha256 size` line per blob the catalog snapshot knows.
    public var blobList = "blobs.txt"
    public var blobListSHA256: String
    public var blobCount: Int
    public var blobBytes: Int64
}

public struct BackupReport: JobReport {
    public var target: String
    public var catalogBytes: Int64 = 0
    public var blobs = 0
    public var blobBytes: Int64 = 0
    /// New in this backup (hard-linked or copied); the rest were already in the folder.
    public var linked = 0
    public var copied = 0
    public var alreadyThere = 0
    /// Referenced blobs whose files could not be found (a fixity problem of the source).
    public var missing: [String] = []
    public var seconds = 0.0
    public var problemCount: Int { missing.count }
    public var counts: [String: Int64] {
        [
            "catalogBytes": catalogBytes, "blobs": Int64(blobs), "blobBytes": blobBytes, "linked": Int64(linked), "copied": Int64(copied),
            "alreadyThere": Int64(alreadyThere), "missing": Int64(missing.count),
        ]
    }
}

public struct RestoreReport: JobReport {
    public var source: String
    public var blobs = 0
    public var bytes: Int64 = 0
    public var fixity: FixityReport?
    public var verify: VerifyReport?
    public var problemCount: Int { (fixity?.problemCount ?? 0) + (verify?.problemCount ?? 0) }
    public var counts: [String: Int64] {
        ["blobs": Int64(blobs), "bytes": bytes, "fixityProblems": Int64(fixity?.problemCount ?? 0), "verifyProblems": Int64(verify?.problemCount ?? 0)]
    }
}

extension Upkeep {
    /// A consistent backup while the server runs: the catalog through SQLite's online backup API
    /// (one snapshot, fsynced, then renamed into place), every blob that snapshot knows (hard
    /// links on the same filesystem, copies otherwise; blobs already in the folder are kept, so
    /// later backups to the same folder only add what is new), and a manifest with digests,
    /// written last.
    public func backup(to target: String, progress: (Int64, Int64) -> Void = { _, _ in }) throws -> BackupReport {
        let start = Date()
        let target = URL(fileURLWithPath: target).standardizedFileURL.path
        if target == root.path || (target.hasPrefix(root.path + "/") && !target.hasPrefix(root.backupsPath + "/")) {
            throw DomainError(.validation, "Back up to a folder outside the data root (or under its backups/ folder), not \(target).")
        }
        var report = BackupReport(target: target)
        let fm = FileManager.default
        // Private: the catalog holds unpublished metadata, the audit log and token digests.
        try fm.createDirectory(atPath: target + "/blobs", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(target, 0o700)
        // The previous backup in this folder stays valid until the new manifest replaces it: the
        // new catalog and blob list get names of their own, and the old ones go afterwards.
        let stamp = Timestamp.now().replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "")
        let catalogName = "catalog-\(stamp).sqlite"
        let listName = "blobs-\(stamp).txt"
        let snapshot = target + "/" + catalogName + ".partial"
        unlink(snapshot)
        do {
            let destination = try DatabaseQueue(path: snapshot)
            try catalog.pool.backup(to: destination)
            try destination.close()
        }
        chmod(snapshot, 0o600)
        try Self.fsyncFile(snapshot)
        let migrations = try DatabaseQueue(path: snapshot, configuration: Self.readOnly).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
        }
        // The snapshot's blobs, streamed (one cursor; the blob list is written and hashed as it goes).
        let snapshotDB = try DatabaseQueue(path: snapshot, configuration: Self.readOnly)
        let total = try snapshotDB.read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blobs") ?? 0 }
        var done: Int64 = 0
        guard FileManager.default.createFile(atPath: target + "/" + listName, contents: nil, attributes: [.posixPermissions: 0o600]),
            let listFile = FileHandle(forWritingAtPath: target + "/" + listName)
        else { throw DomainError(.internal, "cannot write the blob list in \(target)") }
        defer { try? listFile.close() }
        var listHasher = SHA256()
        // The backup folder holds blobs in the same layout as a data root.
        let mirror = FileBlobStore(root: DataRoot(path: target))
        try snapshotDB.read { db in
            let cursor = try Row.fetchCursor(
                db, sql: "SELECT b.sha256, b.size, EXISTS (SELECT 1 FROM version_files f WHERE f.sha256 = b.sha256) FROM blobs b ORDER BY b.sha256")
            while let row = try cursor.next() {
                let sha: String = row[0]
                let size: Int64 = row[1]
                let isReferenced: Bool = row[2]
                switch try mirror.adopt(sha, size: size, from: blobs, orItsTrash: true, regularFilesOnly: false) {
                case .alreadyThere: report.alreadyThere += 1
                case .linked: report.linked += 1
                case .copied: report.copied += 1  // flushed all at once below, before the manifest
                case .missing:
                    if isReferenced { report.missing.append(sha) }
                    continue
                }
                let line = Data((sha + " " + String(size) + "\n").utf8)
                try listFile.write(contentsOf: line)
                listHasher.update(data: line)
                report.blobs += 1
                report.blobBytes += size
                done += size
                progress(done, total)
            }
        }
        try snapshotDB.close()
        try listFile.synchronize()
        try Self.syncFilesystem(of: target)
        let catalogFile = target + "/" + catalogName
        if rename(snapshot, catalogFile) != 0 { throw DomainError(.internal, "cannot move the catalog snapshot into place: errno \(errno)") }
        BlobFiles.fsyncDirectory(mirror.root.blobsPath)
        report.catalogBytes = Self.fileSize(catalogFile)
        var manifest = BackupManifest(
            createdAt: Timestamp.now(), sourceRoot: root.path, catalogSHA256: try Self.sha256(ofFile: catalogFile), catalogBytes: report.catalogBytes,
            migrations: migrations, blobListSHA256: Array(listHasher.finalize()).hexString, blobCount: report.blobs, blobBytes: report.blobBytes)
        manifest.catalogFile = catalogName
        manifest.blobList = listName
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(manifest).write(to: URL(fileURLWithPath: target + "/manifest.json.partial"))
        try Self.fsyncFile(target + "/manifest.json.partial")
        if rename(target + "/manifest.json.partial", target + "/manifest.json") != 0 {
            throw DomainError(.internal, "cannot write the manifest: errno \(errno)")
        }
        BlobFiles.fsyncDirectory(target)
        // The previous catalog and blob list are no longer referenced.
        for name in (try? fm.contentsOfDirectory(atPath: target)) ?? []
        where (name.hasPrefix("catalog") && name != catalogName) || (name.hasPrefix("blobs-") && name != listName) {
            unlink(target + "/" + name)
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// Restores a backup into an empty data root, then checks it: fixity over every blob and
    /// verify over the catalog. Refuses a data root that holds anything.
    public static func restore(from source: String, into root: DataRoot, progress: (Int64, Int64) -> Void = { _, _ in }) throws -> (Catalog, RestoreReport) {
        let fm = FileManager.default
        let existing = (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        if !existing.isEmpty {
            throw DomainError(
                .conflict, "\(root.path) is not empty (\(existing.sorted().prefix(5).joined(separator: ", "))); restore only into an empty or new folder.")
        }
        guard let data = fm.contents(atPath: source + "/manifest.json"),
            let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data)
        else { throw DomainError(.validation, "\(source) has no readable manifest.json: it is not a complete backup.") }
        // The manifest names files inside the backup folder only: a plain regular file, never a
        // path that climbs out of it or a link that points elsewhere.
        for name in [manifest.catalogFile, manifest.blobList] where !Self.isPlainFile(name, in: source) {
            throw DomainError(
                .validation,
                "The manifest in \(source) names '\(name.prefix(100))', which is not a plain file inside the backup folder; the backup is damaged or not ours.")
        }
        let catalogSource = source + "/" + manifest.catalogFile
        guard try sha256(ofFile: catalogSource) == manifest.catalogSHA256 else {
            throw DomainError(.validation, "The catalog in \(source) does not match its manifest's SHA-256; the backup is damaged.")
        }
        guard let listData = fm.contents(atPath: source + "/" + manifest.blobList), Identifiers.sha256Hex(Array(listData)) == manifest.blobListSHA256 else {
            throw DomainError(.validation, "The blob list in \(source) is missing or does not match its manifest; the backup is damaged.")
        }
        try root.prepare()
        try copyFile(catalogSource, root.catalogPath)
        var report = RestoreReport(source: source)
        let store = FileBlobStore(root: root)
        let entries = String(decoding: listData, as: UTF8.self).split(separator: "\n").compactMap { line -> (String, Int64)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let size = Int64(parts[1]), size >= 0, Identifiers.isSHA256Hex(String(parts[0])) else { return nil }
            return (String(parts[0]), size)
        }
        let backupBlobs = FileBlobStore(root: DataRoot(path: source))
        for (sha, size) in entries {
            // Only regular files come in; what is skipped, fixity then reports as missing.
            guard try store.adopt(sha, size: nil, from: backupBlobs, orItsTrash: false, regularFilesOnly: true) != .missing else { continue }
            report.blobs += 1
            report.bytes = report.bytes.addingReportingOverflow(size).overflow ? Int64.max : report.bytes + size
            progress(report.bytes, manifest.blobBytes)
        }
        try store.syncAll()
        let catalog = try Catalog.open(root: root)
        let upkeep = Upkeep(catalog: catalog, root: root)
        report.fixity = try upkeep.fixity()
        report.verify = try upkeep.verify()
        return (catalog, report)
    }

    /// A name of a regular file directly inside `folder` (not a link, no slashes, no dots only).
    static func isPlainFile(_ name: String, in folder: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255, !name.contains("/"), name != ".", name != "..", !name.contains("\0") else { return false }
        var st = stat()
        return lstat(folder + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    static let readOnly: Configuration = {
        var c = Configuration()
        c.readonly = true
        return c
    }()

    static func fsyncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DomainError(.internal, "cannot open \(path) to flush it: errno \(errno)") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw DomainError(.insufficientStorage, "cannot flush \(path) to disk: errno \(errno)") }
    }

    /// Flushes everything written to the filesystem holding `path` (Linux `syncfs`).
    static func syncFilesystem(of path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw DomainError(.internal, "cannot open \(path) to flush it: errno \(errno)") }
        defer { close(fd) }
        if zyk_syncfs(fd) != 0 { throw DomainError(.insufficientStorage, "cannot flush \(path) to disk: errno \(errno)") }
    }

    /// Streams a file to a new path (no whole file in memory), fsynced unless the caller
    /// flushes the whole filesystem afterwards.
    static func copyFile(_ src: String, _ dst: String, sync: Bool = true) throws {
        let input = open(src, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw DomainError(.internal, "cannot read \(src): errno \(errno)") }
        defer { close(input) }
        let tmp = dst + ".partial"
        let output = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw DomainError(.internal, "cannot create \(tmp): errno \(errno)") }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        var ok = true
        while ok {
            let n = read(input, buffer, 1 << 20)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                ok = n == 0
                break
            }
            var off = 0
            while off < n {
                let w = write(output, buffer + off, n - off)
                if w < 0 && errno == EINTR { continue }
                if w <= 0 {
                    ok = false
                    break
                }
                off += w
            }
        }
        let synced = !sync || fsync(output) == 0
        close(output)
        guard ok, synced, rename(tmp, dst) == 0 else {
            unlink(tmp)
            throw DomainError(.insufficientStorage, "cannot copy \(src) to \(dst) (errno \(errno))")
        }
    }

    static func sha256(ofFile path: String) throws -> String {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64)
        defer { buffer.deallocate() }
        guard let d = try BlobFiles.digest(path: path, buffer: buffer) else { throw DomainError(.internal, "cannot read \(path)") }
        return Array(d.hasher.finalize()).hexString
    }
}
