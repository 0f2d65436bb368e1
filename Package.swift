// swift-tools-version: 6.1
import Foundation
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
        .library(name: "TrailRelay", targets: ["TrailRelay"]),
        .library(name: "TrailClient", targets: ["TrailClient"]),
        .library(name: "TrailReplay", targets: ["TrailReplay"]),
        .library(name: "TrailWorkloads", targets: ["TrailWorkloads"]),
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
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
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
        // glibc's <malloc.h>: the relay hands freed heap back to the system (MemoryTrimmer).
        .systemLibrary(name: "CMalloc"),
        // Linux's epoll(7), for the benchmark's subscriber reader.
        .systemLibrary(name: "CEpoll", path: "Benchmarks/CEpoll"),

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
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The client API's JSON and binary bodies, shared by the relay and its clients.
        .target(
            name: "TrailAPI",
            dependencies: ["TrailCore"],
            swiftSettings: strict),
        // What `trail serve` reads from a file, the environment and flags (no server code:
        // the configuration fuzz target builds on it alone).
        .target(
            name: "TrailRelayConfiguration",
            dependencies: ["TrailCore", "TrailStore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(
            name: "TrailRelay",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplication", "TrailAPI", "TrailRelayConfiguration", "CMalloc",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strict),
        .target(
            name: "TrailClient",
            dependencies: [
                "TrailCore", "TrailAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "TrailReplay",
            dependencies: ["TrailCore", "TrailStore", "TrailAPI", "TrailClient", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(
            name: "TrailWorkloads",
            dependencies: [
                "TrailCore", "TrailAPI", "TrailClient",
                .product(name: "Logging", package: "swift-log"), .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            exclude: ["Auction/README.md", "Document/README.md", "Reputation/README.md", "Task/README.md"],
            swiftSettings: strict),
        // Deterministic simulation of a federation: real stores, simulated network and clock.
        .target(
            name: "TrailSimulation",
            dependencies: ["TrailCore", "TrailStore", "TrailReplication", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .executableTarget(
            name: "trail",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplication", "TrailRelay", "TrailReplay", "TrailAPI", "TrailClient", "TrailWorkloads",
                "TrailSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "trail-bench",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplication", "TrailClient", "TrailReplay", "TrailWorkloads", "CRocksDB", "COpenSSL", "CEpoll",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/TrailBench",
            swiftSettings: strict),

        // What the test targets share: temporary directories, `trail` child processes.
        .target(
            name: "TrailTestSupport",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/TrailTestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "TrailCoreTests",
            dependencies: ["TrailCore"]),
        .testTarget(
            name: "TrailReplicationTests",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplication", "TrailTestSupport", "trail",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(
            name: "TrailRelayTests",
            dependencies: [
                "TrailCore", "TrailAPI", "TrailClient", "TrailRelay", "TrailTestSupport", "trail",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .testTarget(
            name: "TrailReplayTests",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplay", "TrailTestSupport", "trail",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .testTarget(
            name: "TrailWorkloadsTests",
            dependencies: [
                "TrailCore", "TrailStore", "TrailReplay", "TrailWorkloads", "TrailTestSupport", "trail",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .testTarget(
            name: "TrailSimulationTests",
            dependencies: ["TrailCore", "TrailSimulation", "TrailTestSupport"]),
        .testTarget(
            name: "TrailStoreTests",
            dependencies: [
                "TrailCore", "TrailStore", "TrailTestSupport", "trail",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
    ]
)

// The configuration fuzz target (Tools/fuzz config) needs the configuration
// module and its dependencies, so it is built by SwiftPM rather than by swiftc alone; it has no `main` of
// its own (libFuzzer brings it), so it exists only when Tools/fuzz asks.
if ProcessInfo.processInfo.environment["TRAIL_FUZZ_CONFIG"] != nil {
    package.targets.append(.executableTarget(
        name: "trail-fuzz-config", dependencies: ["TrailRelayConfiguration"], path: "Fuzz/ConfigTarget",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
