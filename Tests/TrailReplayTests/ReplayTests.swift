import Foundation
import Testing
import TrailCore
import TrailReplay
import TrailStore

@Suite struct ReplayTests {
    /// The same log read from its data directory, its segment export and its
    /// JSON-lines export: the same events in the same order, each after its parents.
    @Test func everySourceReplaysTheLogInCausalOrder() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let exports = TemporaryDirectory("exports")
        try FileManager.default.createDirectory(atPath: exports.path, withIntermediateDirectories: true)
        let directory = DirectorySource(store: log.store)
        var exporter = Exporter(source: directory)
        exporter.segmentEventCountMax = 2
        let segments = try await exporter.run(prefix: "", format: .segments, to: exports.path + "/segments")
        #expect(segments.events == 5 && segments.files == 3)
        _ = try await exporter.run(prefix: "", format: .jsonl, to: exports.path + "/log.jsonl")

        let sources: [any LogSource] = [
            directory,
            try SegmentSource(paths: [exports.path + "/segments"]),
            try JSONLinesSource(path: exports.path + "/log.jsonl"),
        ]
        for source in sources {
            let replayed = try await readAll(source)
            #expect(replayed.map(\.id) == log.events.map(\.id), "\(source.name)")
            #expect(replayed.map(\.position) == [1, 2, 3, 4, 5])
            #expect(replayed[3].origin == AuctionLog.otherRelay && replayed[3].originSeq == 1)
            var seen = Set<EventID>()
            for stored in replayed {
                #expect(stored.event.parents.allSatisfy(seen.contains), "\(stored) replayed before a parent")
                seen.insert(stored.id)
            }
        }
    }

    @Test func selectionsPickTypesAuthorsTimesPositionsAndCursors() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let source = DirectorySource(store: log.store)
        func replay(_ change: (inout EventSelection) -> Void) async throws -> [EventID] {
            var replay = Replay(source: source, namespace: AuctionLog.namespace)
            change(&replay.selection)
            var ids = [EventID]()
            try await replay.run { ids.append($0.id) }
            return ids
        }
        #expect(try await replay { $0.types = ["bid"] } == [log.aliceBid.id, log.bobBid.id, log.carolBid.id])
        #expect(try await replay { $0.authors = [AuctionLog.alice.publicKey] } == [log.aliceBid.id])
        #expect(try await replay { $0.sinceMilliseconds = AuctionLog.start + 150; $0.untilMilliseconds = AuctionLog.start + 300 }
            == [log.bobBid.id, log.carolBid.id])
        #expect(try await replay { $0.firstPosition = 2; $0.lastPosition = 3 } == [log.aliceBid.id, log.bobBid.id])
        #expect(try await replay { $0.cursor = .position(relay: log.store.relayID.fingerprint, position: 4) } == [log.close.id])
        // A portable cursor naming the task and carol's bid: everything else, in order.
        let seen = VersionVector([log.store.relayID: 1, AuctionLog.otherRelay: 1])
        #expect(try await replay { $0.cursor = .vector(seen) } == [log.aliceBid.id, log.bobBid.id, log.close.id])
    }

    /// At --speed 1 the 400 ms between the first and the last timestamp are
    /// waited out; at 10 a tenth of it. (Lower bounds only: a loaded machine
    /// may be slower, never faster.)
    @Test func recordedPaceIsKept() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        var replay = Replay(source: DirectorySource(store: log.store), namespace: AuctionLog.namespace)
        for (speed, floor) in [(1.0, 0.39), (10.0, 0.039)] {
            replay.speed = speed
            let started = ContinuousClock.now
            #expect(try await replay.run { _ in } == 5)
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .seconds(floor), "speed \(speed) took \(elapsed)")
        }
    }

    @Test func unknownNamespaceAndBadSpeedAreRefused() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let source = DirectorySource(store: log.store)
        await #expect(throws: ReplayError.noSuchNamespace(log.directory.path, try Namespace("auction/none"))) {
            try await Replay(source: source, namespace: try Namespace("auction/none")).run { _ in }
        }
        var replay = Replay(source: source, namespace: AuctionLog.namespace)
        replay.speed = 0
        await #expect(throws: ReplayError.self) { try await replay.run { _ in } }
    }
}

@Suite struct TransferTests {
    /// Export to segments, import into an empty store: the same log; import
    /// again: nothing changes. Out-of-order segment files still land causally.
    @Test func importIsCausalAndIdempotent() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let exports = TemporaryDirectory("exports")
        var exporter = Exporter(source: DirectorySource(store: log.store))
        exporter.segmentEventCountMax = 1
        _ = try await exporter.run(prefix: "", format: .segments, to: exports.path)

        let target = TemporaryDirectory("import")
        let store = try Store(directory: target.path)
        defer { store.close() }
        // The close alone first: it waits for its parents.
        let lastFile = try FileManager.default.contentsOfDirectory(atPath: exports.path + "/auction%2Ft1").sorted().last!
        let early = try await Importer(source: try SegmentSource(paths: [exports.path + "/auction%2Ft1/" + lastFile]), into: store).run()
        #expect(early.pending == 1)
        let first = try await Importer(source: try SegmentSource(paths: [exports.path]), into: store).run()
        // Four new events; the close was already held (pending) and now enters the log.
        #expect(first.appended == 4 && first.duplicates + first.pending == 1)
        #expect(try store.info(AuctionLog.namespace)?.pendingCount == 0)
        let again = try await Importer(source: try SegmentSource(paths: [exports.path]), into: store).run()
        #expect(again.duplicates == 5 && again.appended == 0)
        let differences = try await Diff(DirectorySource(store: log.store), DirectorySource(store: store)).run()
        #expect(differences.allSatisfy { $0.isSame })
        #expect(try store.check(AuctionLog.namespace).isEmpty)
    }
}
