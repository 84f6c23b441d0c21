// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ziyuanku",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "zyk", targets: ["zyk"]),
        // For tools beside the server (the search benchmark under bench/search).
        .library(name: "ZiyuankuStore", targets: ["ZiyuankuStore"]),
        .library(name: "ZiyuankuCore", targets: ["ZiyuankuCore"]),
        // The fuzz harnesses (built with libFuzzer by bench/fuzz; replayed by the tests).
        .library(name: "ZiyuankuFuzzTargets", targets: ["ZiyuankuFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", exact: "0.9.20"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-structured-headers.git", from: "1.7.0"),
    ],
    targets: [
        // The contracts: SQL migrations and the OpenAPI document, bundled as resources.
        .target(
            name: "ZiyuankuSchema",
            path: "schema",
            exclude: ["README.md", "platform-v1.md"],
            resources: [.copy("migrations"), .copy("openapi.yaml")]
        ),
        // Linux system calls Swift's Glibc module does not expose (sync_file_range).
        .target(name: "CSystemShim"),
        // libcurl, through typed wrappers for its variadic calls (Swift cannot call those).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Domain types, validation, vocabularies, text helpers; no I/O.
        .target(
            name: "ZiyuankuCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                // Content-Digest / Repr-Digest are RFC 9651 dictionaries (DigestHeader).
                .product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers"),
            ]
        ),
        // One harness per parser of user input in ZiyuankuCore (bench/fuzz, Tests/fuzz).
        .target(name: "ZiyuankuFuzzTargets", dependencies: ["ZiyuankuCore"]),
        // Catalog (GRDB on the system SQLite) and the content-addressed blob store.
        .target(
            name: "ZiyuankuStore",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuSchema", "CSystemShim",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Sync to the national platform: the outbox runner, contract v1 over libcurl.
        .target(
            name: "ZiyuankuSync",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuStore", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The use cases every surface shares (HTTP, the CLI, later web pages and OAI-PMH): the
        // rules for resources and files, imports, upload recovery, the configuration.
        .target(
            name: "ZiyuankuLibrary",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuStore", "ZiyuankuSync",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        // HTTP API.
        .target(
            name: "ZiyuankuServer",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuStore", "ZiyuankuSchema", "ZiyuankuSync", "ZiyuankuLibrary",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        .executableTarget(
            name: "zyk",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuStore", "ZiyuankuLibrary", "ZiyuankuServer", "ZiyuankuSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Fixtures more than one test target needs: throw-away data roots with their catalog and
        // blob store, the seeded schools and personas, sample files and metadata.
        .target(
            name: "ZiyuankuTestSupport",
            dependencies: ["ZiyuankuCore", "ZiyuankuStore"],
            path: "Tests/ZiyuankuTestSupport"
        ),
        .testTarget(
            name: "ZiyuankuCoreTests",
            dependencies: ["ZiyuankuCore", "ZiyuankuFuzzTargets"]
        ),
        .testTarget(
            name: "ZiyuankuServerTests",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuStore", "ZiyuankuLibrary", "ZiyuankuServer", "ZiyuankuSync", "ZiyuankuTestSupport",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            exclude: ["Fixtures"]
        ),
        // The store's public API on real files: blob writers, resumable uploads, the trash
        // protocol, adoption and fixity reads, and catalog writes below the library.
        .testTarget(
            name: "ZiyuankuStoreTests",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuStore", "ZiyuankuTestSupport",
                // To write what an older or newer zyk might have left in the catalog.
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The library's use cases without HTTP: resource rules, the workflow service, opening
        // and recovering a data root.
        .testTarget(
            name: "ZiyuankuLibraryTests",
            dependencies: [
                "ZiyuankuCore", "ZiyuankuStore", "ZiyuankuLibrary", "ZiyuankuTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
