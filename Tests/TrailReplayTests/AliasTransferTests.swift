import Foundation
import Testing
import TrailCore
@testable import TrailReplay
import TrailStore

/// A log holding a slot through an event it holds under another (the same
/// bid accepted by two relays): verify, export and import keep the slot, so
/// that a relay restored from the export does not wait forever for it.
@Suite struct AliasTransferTests {
    /// A relay's log of `auction/t1` with one alias: its own (seq 1) is the
    /// bid, which the other relay numbered (other, 2), followed by (other, 3).
    static func logWithAlias() async throws -> (TemporaryDirectory, Store) {
        let directory = TemporaryDirectory("alias")
        let store = try Store(directory: directory.path)
        let other = AuctionLog.otherRelay
        let bid = try AuctionLog.event("bid", #"{"bidder":"dana","stake":25}"#, at: 0)
        let first = try AuctionLog.event("task", #"{"task":"mow"}"#, at: 10)
        let after = try AuctionLog.event("close", #"{}"#, at: 20, parents: [bid.id])
        _ = try await store.append(bid)
        _ = try await store.apply(contentsOf: [
            Store.Replicated(event: first, origin: other, originSeq: 1),
            Store.Replicated(event: bid, origin: other, originSeq: 2),
            Store.Replicated(event: after, origin: other, originSeq: 3),
        ])
        #expect(store.vector(of: AuctionLog.namespace)[other] == 3)
        return (directory, store)
    }

    @Test(arguments: [Exporter.Format.segments, .jsonl])
    func exportAndImportKeepAliasSlots(format: Exporter.Format) async throws {
        let (directory, store) = try await Self.logWithAlias()
        defer { store.close(); _ = directory }
        let source = DirectorySource(store: store)
        #expect(try await Verifier(source: source).run().isSound)
        let exports = TemporaryDirectory("alias-export")
        let destination = exports.path + (format == .jsonl ? "/log.jsonl" : "/segments")
        let summary = try await Exporter(source: source).run(prefix: "", format: format, to: destination)
        #expect(summary.events == 3 && summary.aliases == 1)

        let exported = try await openSource(destination)
        let report = try await Verifier(source: exported).run()
        #expect(report.isSound, "\(report.namespaces.flatMap(\.violations))")
        let exportedSummary = try #require(try await exported.summary(of: AuctionLog.namespace))
        #expect(exportedSummary.vector == store.vector(of: AuctionLog.namespace))
        #expect(exportedSummary.aliases.count == 1)

        let restoredDirectory = TemporaryDirectory("alias-restored")
        let restored = try Store(directory: restoredDirectory.path)
        defer { restored.close() }
        _ = try await Importer(source: exported, into: restored).run()
        await exported.close()
        #expect(restored.vector(of: AuctionLog.namespace) == store.vector(of: AuctionLog.namespace))
        #expect(try restored.pending(in: AuctionLog.namespace).isEmpty)
        #expect(try restored.check(AuctionLog.namespace).isEmpty)
        #expect(try restored.aliases(in: AuctionLog.namespace).count == 1)
    }

    @Test func verifyReportsAnAliasThatBreaksOriginOrder() async throws {
        let (directory, store) = try await Self.logWithAlias()
        defer { store.close(); _ = directory }
        let summary = try #require(try await DirectorySource(store: store).summary(of: AuctionLog.namespace))
        let alias = try #require(summary.aliases.first)
        // The same log, claimed with the alias one seq too far.
        let wrong = LogSummary(namespace: summary.namespace, eventCount: summary.eventCount, lastPosition: summary.lastPosition,
                               trimmedThrough: 0, vector: summary.vector,
                               aliases: [AliasSlot(origin: alias.origin, originSeq: 3, id: alias.id, after: alias.after)])
        let verification = try await Verifier(source: DirectorySource(store: store)).verifyStream(wrong) { _ in }
        #expect(verification.violations.contains { $0.rule == .originOrder }, "\(verification.violations)")
    }
}
