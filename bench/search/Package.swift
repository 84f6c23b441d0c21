// swift-tools-version: 6.1
// The search benchmarks P5–P7 of docs/product.md#performance-targets (see bench/README.md, "Search").
// A separate package so that the server's build and tests never compile it.
import PackageDescription

let package = Package(
    name: "search-bench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "ziyuanku", path: "../.."),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .executableTarget(
            name: "SearchBench",
            dependencies: [
                .product(name: "ZiyuankuStore", package: "ziyuanku"),
                .product(name: "ZiyuankuCore", package: "ziyuanku"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
