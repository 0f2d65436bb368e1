// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Trail",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TrailCore", targets: ["TrailCore"]),
        .library(name: "TrailStore", targets: ["TrailStore"]),
        .library(name: "TrailReplication", targets: ["TrailReplication"]),
        .executable(name: "trail", targets: ["trail"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System libraries, found by pkg-config (Debian: librocksdb-dev, libzstd-dev, libssl-dev).
        .systemLibrary(
            name: "CRocksDB", pkgConfig: "rocksdb",
            providers: [.apt(["librocksdb-dev"])]),
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),

        .target(
            name: "TrailCore",
            dependencies: ["COpenSSL", "CZstd"],
            swiftSettings: strict),
        .target(
            name: "TrailStore",
            dependencies: [
                "TrailCore", "CRocksDB", "CZstd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict),
        .target(
            name: "TrailReplication",
            dependencies: [
                "TrailCore", "TrailStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "trail",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplication",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "trail-bench",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplication", "CRocksDB", "COpenSSL",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/TrailBench",
            swiftSettings: strict),

        .testTarget(
            name: "TrailCoreTests",
            dependencies: ["TrailCore"]),
        .testTarget(
            name: "TrailReplicationTests",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplication", "trail",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(
            name: "TrailStoreTests",
            dependencies: [
                "TrailCore", "TrailStore", "trail",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
    ]
)
