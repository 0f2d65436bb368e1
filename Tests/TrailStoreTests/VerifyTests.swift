import Testing
import TrailCore
@testable import TrailStore

/// Damage written straight into RocksDB, below the store's API, as a failing
/// disk or a bug would: `check` must name the record and the rule.
@Suite struct VerifyTests {
    @Test func aRecordWhosePayloadChangedOnDiskIsReportedAsIDNotHash() async throws {
        let directory = TemporaryDirectory("verify")
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let namespace = try Namespace("audit/trail")
        _ = try await store.append(contentsOf: (0..<3).map { try makeEvent("audit/trail", $0) })
        let state = try #require(store.state(of: namespace))
        let key = Keys.log(shard: state.shard, namespace: state.number, position: 2)
        var value = try #require(try store.database.get(.log, key))
        value[value.count - 2] ^= 0x01  // a payload byte, just before the signature kind
        try store.database.put(.log, key, value, sync: true)
        let violations = try store.check(namespace)
        #expect(violations.map(\.rule) == [.idIsHash])
        #expect(violations.first?.position == 2)
    }

    @Test func aMissingPositionIsReportedAsAGap() async throws {
        let directory = TemporaryDirectory("verify-gap")
        let namespace = try Namespace("audit/gap")
        do {
            let store = try Store(directory: directory.path)
            defer { store.close() }
            _ = try await store.append(contentsOf: (0..<4).map { try makeEvent("audit/gap", $0) })
            let state = try #require(store.state(of: namespace))
            let batch = WriteBatch()
            batch.delete(.log, Keys.log(shard: state.shard, namespace: state.number, position: 3), in: store.database)
            try store.database.write(batch, sync: true)
            let violations = try store.check(namespace)
            #expect(violations.contains { $0.rule == .densePositions && $0.position == 4 })
        }
        // Reopened (the writer no longer holds the last events in memory), a
        // reader of the log on disk is told, not handed a silent gap.
        let store = try Store(directory: directory.path)
        defer { store.close() }
        #expect(throws: StoreError.self) { try store.read(namespace, limit: 10) }
    }
}
