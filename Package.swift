// swift-tools-version: 6.1
import PackageDescription

/// Settings every target shares: Swift 6 language mode is the package default;
/// these make existential and import use explicit.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "runbook",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "runbook", targets: ["runbook"]),
        .library(name: "RunbookCore", targets: ["RunbookCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
    ],
    targets: [
        // Pure engine: model, YAML loading, validation, graph, expressions,
        // the run state machine and its Dispatch driver. No I/O beyond reading files.
        .target(
            name: "RunbookCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // Tiny C shim for what Glibc does not export (pidfd_open, posix_spawn process groups).
        .target(name: "CRunbookSys"),
        // The I/O: processes, flag files, live step execution.
        .target(
            name: "RunbookActions",
            dependencies: [
                "RunbookCore", "CRunbookSys", "RunbookStoreContract",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The run session every front end drives a run through (prepare, admit, record, stream, drive,
        // release), the event stream and its watchers.
        .target(
            name: "RunbookRuntime",
            dependencies: ["RunbookCore", "RunbookStoreContract"],
            swiftSettings: swiftSettings
        ),
        // Drills: scenarios, the rehearsal executor, expectations, replay. Touches nothing outside.
        .target(
            name: "RunbookDrills",
            dependencies: ["RunbookCore", "RunbookRuntime"],
            swiftSettings: swiftSettings
        ),
        // The store contract both stores conform to: the protocol, records, admission and approval
        // rules, store-neutral sinks, and the bounded thread pool blocking store calls run on.
        .target(
            name: "RunbookStoreContract",
            dependencies: ["RunbookCore", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Run history in SQLite (`SQLiteRunStore`).
        .target(
            name: "RunbookStore",
            dependencies: ["RunbookCore", "RunbookStoreContract", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        // Run history, timelines, gates and leases in PostgreSQL, for replicas (SPEC §6.8).
        .target(
            name: "RunbookPostgres",
            dependencies: [
                "RunbookCore", "RunbookStoreContract",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The alert server: Alertmanager webhooks, the run API, durable runs.
        .target(
            name: "RunbookServer",
            dependencies: [
                "RunbookCore", "RunbookActions", "RunbookStoreContract", "RunbookRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers for tests: spawning programs without Foundation's Process.
        .target(
            name: "RunbookTestSupport",
            dependencies: ["CRunbookSys"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "runbook",
            dependencies: [
                "RunbookCore", "RunbookActions", "RunbookStoreContract", "RunbookStore", "RunbookRuntime", "RunbookDrills", "RunbookServer", "RunbookPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The demo service of the reference incident (examples/leaky-shop).
        .executableTarget(
            name: "leaky-shop",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "examples/leaky-shop/Sources",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RunbookCoreTests",
            dependencies: ["RunbookCore", "RunbookTestSupport"],
            resources: [],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RunbookRuntimeTests",
            dependencies: ["RunbookCore", "RunbookRuntime", "RunbookStoreContract", "RunbookStore", "RunbookDrills"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RunbookServerTests",
            dependencies: [
                "RunbookServer",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RunbookActionsTests",
            dependencies: ["RunbookCore", "RunbookActions", "RunbookStore", "RunbookDrills", "CRunbookSys", "RunbookTestSupport"],
            swiftSettings: swiftSettings
        ),
        // One conformance suite run against both stores (SQLite always; PostgreSQL with RUNBOOK_TEST_DATABASE_URL).
        .testTarget(
            name: "RunbookStoreTests",
            dependencies: ["RunbookCore", "RunbookStoreContract", "RunbookStore", "RunbookPostgres", "RunbookTestSupport",
                           .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: swiftSettings
        ),
    ]
)
