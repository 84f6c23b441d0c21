import Foundation

/// The embedded default's layout on disk: `catalog.sqlite`, `blobs/`, `tmp/`, `backups/`, `trash/`.
public struct DataRoot: Sendable {
    public let url: URL

    public init(path: String) {
        self.url = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    public var path: String { url.path }
    public var catalogPath: String { url.appendingPathComponent("catalog.sqlite").path }
    public var blobsPath: String { url.appendingPathComponent("blobs").path }
    public var tmpPath: String { url.appendingPathComponent("tmp").path }
    public var backupsPath: String { url.appendingPathComponent("backups").path }
    /// Blobs gc took out of use; deleted for good after another grace period.
    public var trashPath: String { url.appendingPathComponent("trash").path }
    public var adminTokenPath: String { url.appendingPathComponent("admin-token").path }

    /// Creates the folders (0700: the catalog and the admin token live here).
    public func prepare() throws {
        let fm = FileManager.default
        for p in [path, blobsPath, tmpPath, backupsPath, trashPath] where !fm.fileExists(atPath: p) {
            try fm.createDirectory(atPath: p, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }
}
