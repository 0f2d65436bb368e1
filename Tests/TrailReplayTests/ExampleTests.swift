import Foundation
import Testing
import TrailCore

/// The example that Docs/REPLAY.md walks through, run as the page runs it:
/// if these pass, the page's commands still say what it shows.
@Suite struct ExampleAuctionTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    var relayA: String { root + "/Examples/auction/relay-a" }
    var relayB: String { root + "/Examples/auction/relay-b" }

    @Test func bothRelaysAreSoundAndHoldTheSameEventsInDifferentOrders() async throws {
        for relay in [relayA, relayB] {
            let verified = try await runTrail(["verify", "--from", relay])
            #expect(verified.0 == 0 && verified.1.contains("auction/task-7: 6 events, every invariant holds"), "\(verified)")
        }
        let diff = try await runTrail(["diff", relayA, relayB])
        #expect(diff.0 == 0, "\(diff)")
        #expect(diff.1.contains("vectors equal; 6 events in common"))
        #expect(diff.1.contains("they order 3 pairs of concurrent events differently"), "\(diff.1)")
    }

    @Test func exploreFindsTheWinnerRuleDependsOnArrivalOrder() async throws {
        let winner = root + "/Examples/auction/winner.sh"
        let found = try await runTrail(["explore", "auction/task-7", "--from", relayA, "--type", "task", "--type", "bid",
                                        "--exec", winner, "--seed", "7"])
        #expect(found.0 == 2, "\(found)")
        #expect(found.1.contains("recorded order gives: winner alice stake 45"), "\(found.1)")
        #expect(found.1.contains("\"{\\\"bidder\\\":\\\"alice\\\",\\\"stake\\\":45}\"") && found.1.contains("with second before first: winner bob stake 60"), "\(found.1)")
        let fixed = try await runTrail(["explore", "auction/task-7", "--from", relayA, "--type", "task", "--type", "bid",
                                        "--exec", root + "/Examples/auction/winner-fixed.sh", "--seed", "7"])
        #expect(fixed.0 == 0 && fixed.1.contains("no order tried changed the outcome"), "\(fixed)")
    }
}
