import Foundation
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore
import ZiyuankuTestSupport

/// A library over a fixture data root (catalog, blobs and personas already there).
struct LibraryFixture {
    let data: DataRootFixture
    let library: Library

    init(configure: (inout ServerConfig) -> Void = { _ in }) throws {
        data = try DataRootFixture(prefix: "zyk-library-test")
        var config = ServerConfig()
        config.dataRoot = data.root.path
        configure(&config)
        library = Library(config: config, catalog: data.catalog)
    }

    var catalog: Catalog { data.catalog }
    var people: SeededPeople { data.people }

    /// A draft of `persona`'s: a video resource with its primary file.
    func video(as persona: String = "owner", title: String = "康复训练示范") async throws -> ResourceView {
        let blob = try await data.store(SampleFiles.video(4096))
        let m = try data.metadata(title: title, resourceType: .video)
        let file = NewFile(name: "示范.mp4", sha256: blob.sha256, size: blob.size, mediaType: "video/mp4", role: .primary)
        return try catalog.createResource(owner: people[persona], metadata: m, files: [file], changeNote: "")
    }
}
