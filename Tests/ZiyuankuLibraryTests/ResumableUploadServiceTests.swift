import Crypto
import Foundation
import NIOCore
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuTestSupport

/// The rules of resumable uploads, without HTTP: ownership, quotas, the offset only over
/// fsynced bytes, checksums, bodies cut short, and a complete upload becoming a blob.
@Suite struct ResumableUploadServiceTests {
    /// A request body: the chunks given, then (optionally) the client going away.
    struct Body: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        var chunks: [[UInt8]]
        var failAtEnd = false
        struct ClientLeft: Error {}

        struct AsyncIterator: AsyncIteratorProtocol {
            var rest: [[UInt8]]
            var failAtEnd: Bool
            mutating func next() async throws -> ByteBuffer? {
                if rest.isEmpty {
                    if failAtEnd {
                        failAtEnd = false
                        throw ClientLeft()
                    }
                    return nil
                }
                return ByteBuffer(bytes: rest.removeFirst())
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: chunks, failAtEnd: failAtEnd) }
    }

    static func code(_ body: () async throws -> Void) async -> DomainError.Code? {
        do {
            try await body()
            return nil
        } catch let e as DomainError {
            return e.code
        } catch {
            return nil
        }
    }

    @Test func anUploadAdvancesOverFsyncedBytesAndBecomesABlobOfItsOwner() async throws {
        let f = try LibraryFixture()
        let uploads = ResumableUploadService(library: f.library)
        let owner = f.people["owner"]
        let bytes = SampleFiles.video(300_000, seed: 9)
        let metadata = "filename " + Data("示范课.mp4".utf8).base64EncodedString()
        let upload = try uploads.create(by: owner, length: Int64(bytes.count), metadata: metadata)
        #expect(upload.filename == "示范课.mp4")

        // Others do not learn it exists; readers may not start one.
        #expect(await Self.code { _ = try uploads.owned(id: upload.id, by: f.people["teacherA"]) } == .notFound)
        #expect(await Self.code { _ = try uploads.owned(id: "not-an-id", by: owner) } == .notFound)
        #expect(await Self.code { _ = try uploads.create(by: f.people["readerA"], length: 10, metadata: "") } == .forbidden)

        // A first part whose client goes away: what arrived is kept and the offset says so.
        let first = Array(bytes[0..<100_000])
        await #expect(throws: Body.ClientLeft.self) {
            _ = try await uploads.append(to: upload, at: 0, checksum: nil, body: Body(chunks: [first], failAtEnd: true))
        }
        var now = try uploads.owned(id: upload.id, by: owner)
        #expect(now.received == 100_000 && now.sha256 == nil)

        // The wrong offset, and a chunk whose checksum does not match, change nothing.
        #expect(await Self.code { _ = try await uploads.append(to: now, at: 5, checksum: nil, body: Body(chunks: [])) } == .conflict)
        let second = Array(bytes[100_000...])
        let wrong = try TusHeaders.checksum("sha256 " + Data(SHA256.hash(data: [1, 2, 3])).base64EncodedString())
        #expect(
            await Self.code { _ = try await uploads.append(to: now, at: 100_000, checksum: wrong, body: Body(chunks: [second])) }
                == .checksumMismatch)
        now = try uploads.owned(id: upload.id, by: owner)
        #expect(now.received == 100_000)
        // Bytes past the declared length are refused, and discarded.
        #expect(
            await Self.code { _ = try await uploads.append(to: now, at: 100_000, checksum: nil, body: Body(chunks: [second, [0]])) }
                == .payloadTooLarge)
        now = try uploads.owned(id: upload.id, by: owner)
        #expect(now.received == 100_000)

        // The rest, checksummed: the upload is complete and its bytes are a blob.
        let right = try TusHeaders.checksum("sha256 " + Data(SHA256.hash(data: second)).base64EncodedString())
        let done = try await uploads.append(
            to: now, at: 100_000, checksum: right,
            body: Body(chunks: stride(from: 0, to: second.count, by: 65_536).map { Array(second[$0..<min($0 + 65_536, second.count)]) }))
        #expect(done.offset == Int64(bytes.count) && done.completedBytes == Int64(bytes.count))
        #expect(done.sha256 == Identifiers.sha256Hex(bytes))
        let blobPath = f.library.blobs.path(of: try #require(done.sha256))
        #expect(FileManager.default.contents(atPath: blobPath).map(Array.init) == bytes)
        #expect(!f.library.blobs.hasResumable(upload.id))
        // Complete: no more bytes, and the digest is its owner's to attach.
        now = try uploads.owned(id: upload.id, by: owner)
        #expect(await Self.code { _ = try await uploads.append(to: now, at: now.received, checksum: nil, body: Body(chunks: [])) } == .conflict)
        #expect(try f.catalog.blobUploaded(sha256: Identifiers.sha256Hex(bytes), by: owner.userId) == Int64(bytes.count))
        #expect(try f.catalog.blobUploaded(sha256: Identifiers.sha256Hex(bytes), by: f.people["teacherA"].userId) == nil)
    }

    @Test func quotasAndTheSizeLimitAreTheLibrarys() async throws {
        let f = try LibraryFixture { c in
            c.maxUploadBytes = 1000
            c.maxOpenUploadsPerUser = 2
        }
        let uploads = ResumableUploadService(library: f.library)
        let owner = f.people["owner"]
        #expect(await Self.code { _ = try uploads.create(by: owner, length: 1001, metadata: "") } == .payloadTooLarge)
        #expect(await Self.code { _ = try uploads.create(by: owner, length: 10, metadata: "filename !!!") } == .badRequest)
        let a = try uploads.create(by: owner, length: 10, metadata: "")
        let b = try uploads.create(by: owner, length: 10, metadata: "")
        #expect(await Self.code { _ = try uploads.create(by: owner, length: 10, metadata: "") } == .quotaExceeded)
        // Discarding one frees its place, and its bytes.
        try uploads.discard(a)
        #expect(!f.library.blobs.hasResumable(a.id))
        #expect(await Self.code { _ = try uploads.owned(id: a.id, by: owner) } == .notFound)
        _ = try uploads.create(by: owner, length: 10, metadata: "")
        // An empty upload is complete at once.
        try uploads.discard(b)
        let empty = try uploads.create(by: owner, length: 0, metadata: "")
        #expect(try await uploads.finishEmpty(empty) == Identifiers.sha256Hex([UInt8]()))
    }
}
