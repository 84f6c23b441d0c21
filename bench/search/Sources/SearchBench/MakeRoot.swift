import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// `SearchBench make-root --rows N --root DIR [--batch 5000]`: a data root holding N generated,
/// published resources (the same records, owners and single shared PDF as `run`), imported in
/// batches through `Catalog.createResources`, then exits. For benchmarks that need a large
/// catalog without measuring the import (bench/upkeep: `zyk report` and `zyk verify` at 100,000).
/// Prints one JSON line: rows, seconds, catalog bytes.
func makeRoot(rows: Int, rootPath: String, batchSize: Int, seed: UInt64) async throws {
    let t0 = nowNs()
    if let existing = try? FileManager.default.contentsOfDirectory(atPath: rootPath), !existing.isEmpty {
        throw BenchError("\(rootPath) is not empty; make-root only fills a new folder")
    }
    let root = DataRoot(path: rootPath)
    let catalog = try Catalog.open(root: root)
    SearchText.prepare()
    let gen = Generator(seed: seed)

    let (owners, file) = try await seedOwners(catalog: catalog, root: root)
    let majorInfo = try catalog.majorInfo(codes: Vocabulary.domains.map(\.majorCode))

    var done = 0
    while done < rows {
        let hi = min(rows, done + batchSize)
        var items: [(owner: Principal, metadata: ResourceMetadata, files: [NewFile])] = []
        items.reserveCapacity(hi - done)
        for i in done..<hi {
            switch MetadataValidator.validate(gen.record(i).json, lookupMajor: { majorInfo[$0] }) {
            case .success(let m): items.append((owners[i % owners.count], m, [file]))
            case .failure(let e): throw BenchError("record \(i) is invalid: \(e.errors)")
            }
        }
        _ = try catalog.createResources(items, changeNote: "bulk import", publish: true)
        done = hi
        if done % 20_000 == 0 || done == rows { log("make-root: \(done) of \(rows) resources") }
    }
    let seconds = Double(nowNs() - t0) / 1e9
    let bytes = fileSize(root.catalogPath) + fileSize(root.catalogPath + "-wal")
    print("{\"rows\": \(rows), \"seconds\": \(String(format: "%.1f", seconds)), \"catalogBytes\": \(bytes)}")
}

/// The benchmark's owners (8 organizations with a teacher each, so the organization facet has
/// buckets) and the one small PDF every record carries, shared by `run` and `make-root`.
func seedOwners(catalog: Catalog, root: DataRoot) async throws -> ([Principal], NewFile) {
    var owners: [Principal] = []
    for k in 0..<8 {
        let org = try catalog.createOrganization(name: Vocabulary.cities[k] + Vocabulary.schoolKinds[k % Vocabulary.schoolKinds.count], kind: .higherVocational)
        let (user, token) = try catalog.createUser(organizationId: org.id, name: "教师\(k + 1)", role: .teacher)
        owners.append(Principal(userId: user.id, name: user.name, role: user.role, organizationId: org.id, tokenId: token.info.id))
    }
    let writer = try FileBlobStore(root: root).makeWriter(maxSize: 1 << 20)
    try await writer.write(Array("%PDF-1.7\n% search benchmark\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".utf8))
    let blob = try await writer.finish()
    for o in owners { try catalog.recordBlobUpload(blob, userId: o.userId) }
    return (owners, NewFile(name: "a.pdf", sha256: blob.sha256, size: blob.size, mediaType: "application/pdf", role: .primary))
}
