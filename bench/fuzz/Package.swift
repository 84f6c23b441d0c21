// swift-tools-version: 6.1
// The libFuzzer build of the fuzz targets in Sources/ZiyuankuFuzzTargets (issue 12). A separate
// package so that the server's build and tests never compile it; bench/fuzz/run.sh builds it with
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --scratch-path .build-fuzz
// One executable serves every target: ZYK_FUZZ_TARGET names the one to run.
import PackageDescription

let package = Package(
    name: "ziyuanku-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "ziyuanku", path: "../..")
    ],
    targets: [
        // The declaration of libFuzzer's LLVMFuzzerRunDriver.
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "ZiyuankuFuzz",
            dependencies: [
                "CFuzzDriver",
                .product(name: "ZiyuankuFuzzTargets", package: "ziyuanku"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
