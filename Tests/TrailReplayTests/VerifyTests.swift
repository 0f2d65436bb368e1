import Foundation
import Testing
import TrailCore
import TrailReplay
@testable import TrailStore

/// Each kind of damage, planted in a real log: `verify` must name the rule
/// and the place, and must pass the clean log it came from.
@Suite struct PlantedFaultTests {
    func rules(_ report: VerificationReport) -> Set<Violation.Rule> {
        Set(report.namespaces.flatMap(\.violations).map(\.rule))
    }

    func export(_ log: AuctionLog, perFile: Int = 1000) async throws -> TemporaryDirectory {
        let exports = TemporaryDirectory("exports")
        var exporter = Exporter(source: DirectorySource(store: log.store))
        exporter.segmentEventCountMax = perFile
        _ = try await exporter.run(prefix: "", format: .segments, to: exports.path + "/segments")
        _ = try await exporter.run(prefix: "", format: .jsonl, to: exports.path + "/log.jsonl")
        return exports
    }

    @Test func cleanLogsAreSoundFromEverySource() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let exports = try await export(log)
        for source in [DirectorySource(store: log.store), try SegmentSource(paths: [exports.path + "/segments"]),
                       try JSONLinesSource(path: exports.path + "/log.jsonl")] as [any LogSource] {
            let report = try await Verifier(source: source).run()
            #expect(report.isSound, "\(source.name): \(report.namespaces.flatMap(\.violations))")
            #expect(report.namespaces.map(\.eventCount) == [5])
        }
    }

    @Test func aFlippedPayloadByteOnDiskBreaksIDIsHash() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let state = try #require(log.store.state(of: AuctionLog.namespace))
        let key = Keys.log(shard: state.shard, namespace: state.number, position: 4)
        var value = try #require(try log.store.database.get(.log, key))
        value[value.count - 3] ^= 0x20  // a byte of carol's payload
        try log.store.database.put(.log, key, value, sync: true)
        let violations = try await Verifier(source: DirectorySource(store: log.store)).run().namespaces[0].violations
        #expect(violations.contains { $0.rule == .idIsHash && $0.position == 4 })
    }

    @Test func anEditedPayloadInJSONLinesIsNamedByLine() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let exports = try await export(log)
        let path = exports.path + "/log.jsonl"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: #"\"stake\":50"#, with: #"\"stake\":500"#)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ReplayError.self) { try JSONLinesSource(path: path) }
        let report = try await Verifier(source: try JSONLinesSource(path: path, tolerant: true)).run()
        #expect(report.damaged.map(\.file) == [path + ":3"])
        #expect(report.damaged.first?.reason.contains("hash") == true)
        // The missing event also shows as a gap and a parent not held.
        #expect(rules(report).isSuperset(of: [.densePositions, .causalParents]))
    }

    @Test func aMissingSegmentIsAGap() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let exports = try await export(log, perFile: 2)
        let folder = exports.path + "/segments/auction%2Ft1"
        try FileManager.default.removeItem(atPath: folder + "/0000000000000003.tseg")
        let report = try await Verifier(source: try SegmentSource(paths: [exports.path + "/segments"])).run()
        let gap = report.namespaces[0].violations.first { $0.rule == .densePositions }
        #expect(gap?.position == 5)
        #expect(gap?.detail.contains("3...4") == true)
        #expect(rules(report).contains(.causalParents))  // the close's parents bob and carol are gone
    }

    @Test func aChildBeforeItsParentBreaksTheCausalInvariant() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let files = TemporaryDirectory("segments")
        let origin = log.store.relayID
        // Carol's bid (another origin) before the task it follows.
        try writeSegment(files.path + "/a.tseg", firstPosition: 1, [
            Segment.Record(origin: AuctionLog.otherRelay, originSeq: 1, event: log.carolBid),
            Segment.Record(origin: origin, originSeq: 1, event: log.task),
        ])
        let report = try await Verifier(source: try SegmentSource(paths: [files.path])).run()
        let violation = report.namespaces[0].violations.first { $0.rule == .causalParents }
        #expect(violation?.position == 1)
        #expect(violation?.detail.contains(log.task.id.short) == true)
    }

    @Test func aWrongVectorDoesNotMatchTheHeldSet() async throws {
        let log = try await AuctionLog()
        let directory = log.directory.path
        var state = try #require(log.store.state(of: AuctionLog.namespace))
        log.store.close()
        // Written below the store, after it closed (closing writes the true state).
        state.vector[0, default: 0] += 7
        let database = try Database(path: directory + "/" + Store.databaseDirectoryName)
        try database.put(.state, Keys.state(shard: state.shard, namespace: state.number), state.encoded, sync: true)
        database.close()
        let source = try DirectorySource(directory: directory)
        let violations = try await Verifier(source: source).run().namespaces[0].violations
        await source.close()
        #expect(violations.contains { $0.rule == .vectorMatchesLog })
    }

    @Test func aBadSignatureIsNamed() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let files = TemporaryDirectory("segments")
        let origin = log.store.relayID
        // Bob's bid carrying Alice's signature.
        let forged = log.bobBid.attaching(signature: log.aliceBid.signature!)
        try writeSegment(files.path + "/a.tseg", firstPosition: 1, [
            Segment.Record(origin: origin, originSeq: 1, event: log.task),
            Segment.Record(origin: origin, originSeq: 2, event: log.aliceBid),
            Segment.Record(origin: origin, originSeq: 3, event: forged),
        ])
        let violations = try await Verifier(source: try SegmentSource(paths: [files.path])).run().namespaces[0].violations
        #expect(violations.map(\.rule) == [.signature])
        #expect(violations.first?.position == 3)
    }

    @Test func aBadSegmentChecksumIsReportedAndTheRestStillChecked() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let exports = try await export(log, perFile: 2)
        let damaged = exports.path + "/segments/auction%2Ft1/0000000000000005.tseg"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: damaged)))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: ReplayError.self) { try SegmentSource(paths: [exports.path + "/segments"]) }
        let report = try await Verifier(source: try SegmentSource(paths: [exports.path + "/segments"], tolerant: true)).run()
        #expect(report.damaged.map(\.file) == [damaged])
        #expect(report.damaged.first?.reason.contains("checksum") == true)
        #expect(report.namespaces[0].eventCount == 4)
    }

    /// The id index is checked by digest; a missing entry sends verify back
    /// through the log with a lookup per event, which names the event.
    @Test func aMissingIDIndexEntryIsNamed() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let batch = WriteBatch()
        batch.delete(.ids, Keys.id(log.bobBid.id), in: log.store.database)
        try log.store.database.write(batch, sync: true)
        let violations = try await Verifier(source: DirectorySource(store: log.store)).run().namespaces[0].violations
        #expect(violations.contains { $0.rule == .idIndex && $0.position == 3 && $0.detail.contains("missing from the id index") })
    }

    @Test func anEventLeftBelowTheTrimPointIsReported() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let state = try #require(log.store.state(of: AuctionLog.namespace))
        let key = Keys.log(shard: state.shard, namespace: state.number, position: 1)
        let record = try #require(try log.store.database.get(.log, key))
        _ = try await log.store.trim(AuctionLog.namespace, through: 2)
        #expect(try await Verifier(source: DirectorySource(store: log.store)).run().isSound)
        try log.store.database.put(.log, key, record, sync: true)
        let violations = try await Verifier(source: DirectorySource(store: log.store)).run().namespaces[0].violations
        #expect(violations.map(\.rule) == [.trimPoint])
    }
}
