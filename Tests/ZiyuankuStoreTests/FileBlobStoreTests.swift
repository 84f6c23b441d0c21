import Foundation
import Testing
import ZiyuankuCore
import ZiyuankuStore
import ZiyuankuTestSupport

/// `FileBlobStore` through its public API, on a real data root: uploads through `BlobWriter`,
/// resumable upload files, the trash protocol with gc, adoption from another store, and the
/// reads fixity relies on.
@Suite struct FileBlobStoreTests {
    /// A store on a fresh data root (no catalog needed below the store). The folder goes with
    /// the `ScratchDirectory`: callers keep it alive to the end of the test.
    static func store() throws -> (ScratchDirectory, DataRoot, FileBlobStore) {
        let scratch = ScratchDirectory(prefix: "zyk-blob-test")
        let root = DataRoot(path: scratch.path)
        try root.prepare()
        return (scratch, root, FileBlobStore(root: root))
    }

    static func upload(_ store: FileBlobStore, _ bytes: [UInt8], chunk: Int = 64 * 1024, maxSize: Int64 = 1 << 30) async throws -> BlobInfo {
        let w = try store.makeWriter(maxSize: maxSize)
        var at = 0
        while at < bytes.count {
            try await w.write(bytes[at..<min(bytes.count, at + chunk)])
            at += chunk
        }
        return try await w.finish()
    }

    static func contents(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }

    static func setModified(_ path: String, _ date: Date) throws {
        try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path)
    }

    // MARK: uploads

    @Test func anUploadIsPlacedUnderItsDigestAndStoredOnce() async throws {
        let (scratch, root, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        // Over 1 MiB, so the writer hands several batches to its thread-pool job.
        let bytes = SampleFiles.video(3 * (1 << 20) + 12_345, seed: 7)
        let sha = Identifiers.sha256Hex(bytes)
        let first = try await Self.upload(store, bytes)
        #expect(first.sha256 == sha)
        #expect(first.size == Int64(bytes.count))
        #expect(first.head == Array(bytes.prefix(MediaSniffer.headLength)))
        let path = store.path(of: sha)
        #expect(path.hasSuffix("/blobs/\(sha.prefix(2))/\(sha.dropFirst(2).prefix(2))/\(sha)"))
        #expect(store.localPath(of: sha) == path)
        #expect(Self.contents(path) == bytes)
        #expect(store.storedSize(of: sha) == Int64(bytes.count))
        // Read-only once placed.
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o444)
        #expect(try store.head(of: sha, count: 8) == Array(bytes.prefix(8)))

        // The same bytes again: the second temporary file is dropped, one blob remains.
        let second = try await Self.upload(store, bytes, chunk: 1 << 20)
        #expect(second == first)
        #expect(root.blobFileNames() == ["\(sha.prefix(2))/\(sha.dropFirst(2).prefix(2))/\(sha)"])
        #expect(root.temporaryFileNames(prefix: "upload-").isEmpty)
        #expect(Self.contents(path) == bytes)
    }

    @Test func anAbortedOrAbandonedUploadLeavesNothing() async throws {
        let (scratch, root, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        let w = try store.makeWriter(maxSize: 1 << 30)
        try await w.write(SampleFiles.video(2 * (1 << 20) + 1))
        #expect(root.temporaryFileNames(prefix: "upload-").count == 1, "the writer receives into tmp/")
        w.abort()
        w.abort()  // twice is harmless
        #expect(root.temporaryFileNames(prefix: "upload-").isEmpty)
        #expect(root.blobFileNames().isEmpty)

        // A writer dropped without finish or abort cleans up too.
        do {
            let dropped = try store.makeWriter(maxSize: 1 << 30)
            try await dropped.write(SampleFiles.pdf)
            withExtendedLifetime(dropped) { #expect(root.temporaryFileNames(prefix: "upload-").count == 1) }
        }
        #expect(root.temporaryFileNames(prefix: "upload-").isEmpty)

        // A digest that does not match the one announced keeps nothing either.
        let m = try store.makeWriter(maxSize: 1 << 30)
        try await m.write(SampleFiles.pdf)
        let wrong = [UInt8](repeating: 0xAB, count: 32)
        let error = await #expect(throws: DomainError.self) { try await m.finish(expectedSHA256: wrong) }
        #expect(error?.code == .digestMismatch)
        #expect(root.temporaryFileNames(prefix: "upload-").isEmpty)
        #expect(root.blobFileNames().isEmpty)
    }

    @Test func theSizeLimitIsEnforcedAsBytesArrive() async throws {
        let (scratch, root, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        // Exactly at the limit is fine.
        let exact = try await Self.upload(store, [UInt8](repeating: 1, count: 100), maxSize: 100)
        #expect(exact.size == 100)
        // One byte over is refused at the write that passes it.
        let w = try store.makeWriter(maxSize: 100)
        try await w.write([UInt8](repeating: 2, count: 60))
        let error = await #expect(throws: DomainError.self) { try await w.write([UInt8](repeating: 2, count: 41)) }
        #expect(error?.code == .payloadTooLarge)
        #expect(error?.extra["limit"] == .number(100))
        w.abort()
        #expect(root.temporaryFileNames(prefix: "upload-").isEmpty)
        #expect(root.blobFileNames() == [String(exact.sha256.prefix(2)) + "/" + String(exact.sha256.dropFirst(2).prefix(2)) + "/" + exact.sha256])
    }

    @Test func staleTemporaryFilesOfGoneProcessesAreRemoved() throws {
        let (scratch, root, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        // pid 2^22+1 is above Linux's pid_max limit, so no process has it.
        let gone = root.tmpPath + "/upload-4194305-\(Identifiers.uuidV7())"
        let ours = root.tmpPath + "/upload-\(ProcessInfo.processInfo.processIdentifier)-\(Identifiers.uuidV7())"
        let other = root.tmpPath + "/tus-\(Identifiers.uuidV7())"
        for p in [gone, ours, other] { #expect(FileManager.default.createFile(atPath: p, contents: Data([1, 2, 3]))) }
        #expect(store.removeStaleTemporaryFiles() == 1)
        #expect(!FileManager.default.fileExists(atPath: gone))
        #expect(FileManager.default.fileExists(atPath: ours) && FileManager.default.fileExists(atPath: other))
    }

    // MARK: resumable uploads

    @Test func resumableUploadFilesReceiveDigestAndCommit() async throws {
        let (scratch, root, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        let id = Identifiers.uuidV7()
        #expect(!store.hasResumable(id))
        #expect(store.openResumable(id) == nil)
        try store.createResumable(id)
        #expect(store.hasResumable(id))
        #expect(root.temporaryFileNames(prefix: "tus-") == ["tus-\(id)"])
        // Never created twice (a second create must not truncate received bytes).
        #expect(throws: DomainError.self) { try store.createResumable(id) }

        let bytes = SampleFiles.video(300_000, seed: 9)
        let file = try #require(store.openResumable(id))
        // Chunks at their offsets, and one that is not kept (truncated away).
        try bytes[0..<100_000].withUnsafeBytes { try file.write($0, at: 0) }
        try bytes[100_000...].withUnsafeBytes { try file.write($0, at: 100_000) }
        try [UInt8](repeating: 0xEE, count: 5000).withUnsafeBytes { try file.write($0, at: 300_000) }
        file.truncate(to: 300_000)
        try file.sync()

        let part = try #require(try store.digestResumable(id, upTo: 100_000))
        #expect(part.bytes == 100_000)
        #expect(Array(part.hasher.finalize()).hexString == Identifiers.sha256Hex(Array(bytes[0..<100_000])))
        #expect(part.head == Array(bytes.prefix(MediaSniffer.headLength)))
        let whole = try #require(try store.digestResumable(id))
        #expect(whole.bytes == 300_000)
        let sha = Identifiers.sha256Hex(bytes)
        #expect(Array(whole.hasher.finalize()).hexString == sha)
        // A limit past the end stops at the end.
        #expect(try store.digestResumable(id, upTo: 1_000_000)?.bytes == 300_000)
        #expect(store.resumableHead(id) == Array(bytes.prefix(MediaSniffer.headLength)))

        try store.commitResumable(id, as: sha)
        #expect(!store.hasResumable(id))
        #expect(store.openResumable(id) == nil)
        #expect(try store.digestResumable(id) == nil)
        #expect(store.resumableHead(id).isEmpty)
        #expect(Self.contents(store.path(of: sha)) == bytes)
        // Committing again (a retry after a crash) is harmless.
        try store.commitResumable(id, as: sha)
        #expect(Self.contents(store.path(of: sha)) == bytes)

        // Another upload of the same bytes: its file is dropped, the blob stays single.
        let again = Identifiers.uuidV7()
        try store.createResumable(again)
        try bytes.withUnsafeBytes { try #require(store.openResumable(again)).write($0, at: 0) }
        try store.commitResumable(again, as: sha)
        #expect(!store.hasResumable(again))
        #expect(root.blobFileNames().count == 1)

        // Discarded: the bytes go, nothing is placed.
        let dropped = Identifiers.uuidV7()
        try store.createResumable(dropped)
        try SampleFiles.pdf.withUnsafeBytes { try #require(store.openResumable(dropped)).write($0, at: 0) }
        store.discardResumable(dropped)
        #expect(!store.hasResumable(dropped))
        #expect(root.temporaryFileNames(prefix: "tus-").isEmpty)
        #expect(root.blobFileNames().count == 1)
    }

    // MARK: trash and purge

    @Test func aTrashedBlobComesBackWhenASaveNeedsIt() async throws {
        let (scratch, root, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        let blob = try await Self.upload(store, SampleFiles.pdf)
        try store.prepareTrash()
        try store.moveToTrash(blob.sha256)
        store.syncTrash()
        #expect(store.localPath(of: blob.sha256) == nil)
        #expect(root.trashFileNames() == [blob.sha256])
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
        defer { buffer.deallocate() }
        #expect(store.rehash(blob.sha256, buffer: buffer) == .missing, "fixity sees a trashed blob as missing")

        #expect(store.ensurePresent(blob.sha256))
        #expect(store.localPath(of: blob.sha256) != nil)
        #expect(root.trashFileNames().isEmpty)
        #expect(Self.contents(store.path(of: blob.sha256)) == SampleFiles.pdf)
        // Present already: still true, nothing moves.
        #expect(store.ensurePresent(blob.sha256))

        // Bytes gone for good cannot come back; trashing what is gone is not an error.
        let unknown = Identifiers.sha256Hex(Array("never stored".utf8))
        #expect(!store.ensurePresent(unknown))
        try store.moveToTrash(unknown)
        #expect(root.trashFileNames().isEmpty)
    }

    @Test func purgeRemovesOldTrashAndTemporaryFilesButKeepsLiveResumableUploads() async throws {
        let (scratch, root, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        try store.prepareTrash()
        let old = Date().addingTimeInterval(-2 * 86_400)
        let cutoff = Date().addingTimeInterval(-86_400)
        // Trash: one old, one fresh.
        let oldBlob = try await Self.upload(store, SampleFiles.pdf("old"))
        let freshBlob = try await Self.upload(store, SampleFiles.pdf("fresh"))
        try store.moveToTrash(oldBlob.sha256)
        try store.moveToTrash(freshBlob.sha256)
        try Self.setModified(store.trashedPath(of: oldBlob.sha256), old)
        // tmp/: an old writer's file, an old abandoned tus file, an old live tus file, a fresh
        // writer's file, and an old file of another kind (never purge's business).
        let live = Identifiers.uuidV7()
        let dead = Identifiers.uuidV7()
        let files = [
            "upload-1-\(Identifiers.uuidV7())", "tus-\(dead)", "tus-\(live)", "upload-2-fresh", "import-1-\(Identifiers.uuidV7())",
        ]
        for name in files { #expect(FileManager.default.createFile(atPath: root.tmpPath + "/" + name, contents: Data([0]))) }
        for name in files where name != "upload-2-fresh" { try Self.setModified(root.tmpPath + "/" + name, old) }
        var asked: Set<String> = []

        // A dry run counts without deleting.
        let counted = try store.purge(olderThan: cutoff, dryRun: true) { id in
            asked.insert(id)
            return id == live
        }
        #expect(counted.trash == 1 && counted.tmp == 2)
        #expect(root.trashFileNames().count == 2)
        #expect(asked == [live, dead])

        let purged = try store.purge(olderThan: cutoff, dryRun: false) { $0 == live }
        #expect(purged.trash == 1 && purged.tmp == 2)
        #expect(root.trashFileNames() == [freshBlob.sha256])
        let left = Set((try FileManager.default.contentsOfDirectory(atPath: root.tmpPath)))
        #expect(left == ["tus-\(live)", "upload-2-fresh", files[4]])
        // What purge removed from the trash cannot come back; the fresh one still can.
        #expect(!store.ensurePresent(oldBlob.sha256))
        #expect(store.ensurePresent(freshBlob.sha256))
    }

    // MARK: adoption (backup and restore)

    @Test func adoptLinksOrCopiesAndRefusesLinksWhenAskedForRegularFiles() async throws {
        let (sourceScratch, _, source) = try Self.store()
        let (targetScratch, targetRoot, target) = try Self.store()
        defer { withExtendedLifetime((sourceScratch, targetScratch)) {} }
        let blob = try await Self.upload(source, SampleFiles.video(5000, seed: 3))

        // A hard link where the filesystem allows (it does here: both roots are in one folder).
        #expect(try target.adopt(blob.sha256, size: blob.size, from: source, orItsTrash: false, regularFilesOnly: true) == .linked)
        #expect(Self.contents(target.path(of: blob.sha256)) == Self.contents(source.path(of: blob.sha256)))
        #expect(try target.adopt(blob.sha256, size: blob.size, from: source, orItsTrash: false, regularFilesOnly: true) == .alreadyThere)

        // Only in the source's trash: taken from there only when allowed.
        let trashed = try await Self.upload(source, SampleFiles.pdf("trashed"))
        try source.prepareTrash()
        try source.moveToTrash(trashed.sha256)
        #expect(try target.adopt(trashed.sha256, size: trashed.size, from: source, orItsTrash: false, regularFilesOnly: true) == .missing)
        #expect(target.localPath(of: trashed.sha256) == nil)
        #expect(try target.adopt(trashed.sha256, size: trashed.size, from: source, orItsTrash: true, regularFilesOnly: true) == .linked)
        #expect(Self.contents(target.path(of: trashed.sha256)) == SampleFiles.pdf("trashed"))

        // A symbolic link where the blob should be (to a file outside, with the right bytes).
        let outsideScratch = ScratchDirectory(prefix: "zyk-outside")
        defer { withExtendedLifetime(outsideScratch) {} }
        try FileManager.default.createDirectory(at: outsideScratch.url, withIntermediateDirectories: true)
        let secret = SampleFiles.pdf("outside")
        let sha = Identifiers.sha256Hex(secret)
        let outside = outsideScratch.path + "/secret.pdf"
        #expect(FileManager.default.createFile(atPath: outside, contents: Data(secret)))
        let linkPath = source.path(of: sha)
        try FileManager.default.createDirectory(atPath: (linkPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: linkPath, withDestinationPath: outside)
        #expect(try target.adopt(sha, size: Int64(secret.count), from: source, orItsTrash: true, regularFilesOnly: true) == .missing)
        #expect(target.localPath(of: sha) == nil)
        #expect(!targetRoot.blobFileNames().contains { $0.hasSuffix(sha) })
        // Without the restriction the link is taken (backups of one's own store).
        #expect(try target.adopt(sha, size: Int64(secret.count), from: source, orItsTrash: false, regularFilesOnly: false) != .missing)
        #expect(target.localPath(of: sha) != nil)
    }

    // MARK: fixity reads and listing

    @Test func rehashDetectsAFlippedByte() async throws {
        let (scratch, _, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        let bytes = SampleFiles.video(70_000, seed: 5)
        let blob = try await Self.upload(store, bytes)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 64)
        defer { buffer.deallocate() }
        #expect(store.rehash(blob.sha256, buffer: buffer) == .read(sha256: blob.sha256, bytes: Int64(bytes.count)))

        let path = store.path(of: blob.sha256)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 40_000)
        try handle.write(contentsOf: Data([bytes[40_000] ^ 0x01]))
        try handle.close()
        let after = store.rehash(blob.sha256, buffer: buffer)
        #expect(after != .read(sha256: blob.sha256, bytes: Int64(bytes.count)))
        var flipped = bytes
        flipped[40_000] ^= 0x01
        #expect(after == .read(sha256: Identifiers.sha256Hex(flipped), bytes: Int64(bytes.count)))

        try FileManager.default.removeItem(atPath: path)
        #expect(store.rehash(blob.sha256, buffer: buffer) == .missing)
        #expect(store.storedSize(of: blob.sha256) == nil)
    }

    @Test func forEachBlobFolderListsWhatWasPlaced() async throws {
        let (scratch, _, store) = try Self.store()
        defer { withExtendedLifetime(scratch) {} }
        var placed: [String: Int64] = [:]
        for i in 0..<6 {
            let b = try await Self.upload(store, SampleFiles.video(1000 + i * 100, seed: UInt8(i)))
            placed[b.sha256] = b.size
        }
        // Something in a blob folder that is not named like a digest is not a blob.
        let any = try #require(placed.keys.first)
        let folder = (store.path(of: any) as NSString).deletingLastPathComponent
        #expect(FileManager.default.createFile(atPath: folder + "/notes.txt", contents: Data([1])))

        var listed: [String: Int64] = [:]
        var folders = 0
        let now = Date()
        store.forEachBlobFolder { batch in
            folders += 1
            for entry in batch {
                #expect(listed[entry.sha256] == nil, "listed twice: \(entry.sha256)")
                listed[entry.sha256] = entry.size
                #expect(abs(entry.modified.timeIntervalSince(now)) < 600)
            }
        }
        #expect(listed == placed)
        #expect(folders >= 1 && folders <= placed.count)
    }
}
