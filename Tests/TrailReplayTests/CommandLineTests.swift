import Foundation
import Testing
import TrailCore
import TrailReplay
import TrailStore

/// The replay tools as a person runs them: exit status, what they print, how they refuse.
@Suite struct ReplayCommandLineTests {
    /// An auction log in a closed data directory (the commands open it themselves).
    func auctionDirectory() async throws -> (TemporaryDirectory, AuctionLog) {
        let log = try await AuctionLog()
        log.store.close()
        return (log.directory, log)
    }

    @Test func replayVerifyExportImportAndDiffRoundTrip() async throws {
        let (directory, log) = try await auctionDirectory()
        let (status, output, _) = try await runTrail(["replay", "auction/t1", "--from", directory.path, "--type", "bid"])
        #expect(status == 0)
        #expect(output.split(separator: "\n").count == 3 && output.contains("\"bidder\\\":\\\"carol"))
        let json = try await runTrail(["replay", "auction/t1", "--from", directory.path, "--json"])
        #expect(json.1.split(separator: "\n").first?.contains("\"id\":\"\(log.task.id.hex)\"") == true)

        let verified = try await runTrail(["verify", "--from", directory.path])
        #expect(verified.0 == 0 && verified.1.contains("auction/t1: 5 events, every invariant holds"))

        let exports = TemporaryDirectory("cli-export")
        let exported = try await runTrail(["export", "--from", directory.path, "--out", exports.path])
        #expect(exported.0 == 0 && exported.1.contains("exported 5 events"), "\(exported)")
        let target = TemporaryDirectory("cli-import")
        for expectation in ["5 appended", "5 already held"] {
            let imported = try await runTrail(["import", exports.path, "--data", target.path])
            #expect(imported.0 == 0 && imported.1.contains(expectation), "\(imported)")
        }
        let diff = try await runTrail(["diff", directory.path, target.path])
        #expect(diff.0 == 0 && diff.1.contains("the same events in the same order"), "\(diff)")
        _ = try await runTrail(["append", "auction/t1", "late bid", "--data", target.path])
        let differ = try await runTrail(["diff", directory.path, target.path])
        #expect(differ.0 == 2 && differ.1.contains("only in B") && differ.1.contains("late bid"), "\(differ)")
    }

    @Test func verifyExitsTwoAndNamesTheDamagedFile() async throws {
        let (directory, _) = try await auctionDirectory()
        let exports = TemporaryDirectory("cli-verify")
        _ = try await runTrail(["export", "--from", directory.path, "--out", exports.path, "--segment-events", "2"])
        let file = exports.path + "/auction%2Ft1/0000000000000003.tseg"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        bytes[bytes.count - 1] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let (status, output, _) = try await runTrail(["verify", "--from", exports.path])
        #expect(status == 2)
        #expect(output.contains("VIOLATION segment checksum: \(file)"), "\(output)")
        #expect(output.contains("dense positions"), "\(output)")
    }

    @Test func exploreFindsTheOrderDependentWinnerAndRepeatsItsSeed() async throws {
        let (directory, log) = try await auctionDirectory()
        // The bug in shell: the first bid's bidder wins. The fix: count bids (order-free).
        let firstBid = #"grep '"type":"bid"' | head -n 1 | grep -o 'bidder[^,]*'"#
        let run = try await runTrail(["explore", "auction/t1", "--from", directory.path, "--exec", firstBid, "--seed", "5"])
        #expect(run.0 == 2, "\(run)")
        #expect(run.1.contains("ORDER-DEPENDENT"))
        #expect(run.1.contains("first:  2\t\(log.aliceBid.id.short)") && run.1.contains("second: 3\t\(log.bobBid.id.short)"), "\(run.1)")
        #expect(run.1.contains("--seed 5"))
        let again = try await runTrail(["explore", "auction/t1", "--from", directory.path, "--exec", firstBid, "--seed", "5"])
        #expect(again.1 == run.1)
        let counter = try await runTrail(["explore", "auction/t1", "--from", directory.path, "--exec", #"grep -c '"type":"bid"'"#, "--seed", "5"])
        #expect(counter.0 == 0 && counter.1.contains("no order tried changed the outcome"), "\(counter)")
    }

    @Test func badInputIsRefusedWithWhatIsWrong() async throws {
        let (directory, _) = try await auctionDirectory()
        let cases: [([String], Int32, String)] = [
            (["replay", "auction/t1", "--from", directory.path + "/nowhere"], 1, "no such file, directory or relay URL"),
            (["replay", "auction/none", "--from", directory.path], 1, "holds no namespace auction/none"),
            (["replay", "auction/t1", "--from", directory.path, "--since", "yesterday"], 64, "bad --since yesterday"),
            (["replay", "auction/t1", "--from", directory.path, "--speed", "0"], 64, "--speed is 0.0"),
            (["replay", "auction/t1", "--from", directory.path, "--after", "garbage"], 64, "bad --after cursor"),
            (["graph", "auction/t1", "--from", directory.path, "--out", "x.pdf"], 64, "name a .dot, .svg or .png file"),
            (["verify", "--from", "http://127.0.0.1:1"], 1, "not reachable as a Trail relay"),
        ]
        for (arguments, expected, message) in cases {
            let (status, _, error) = try await runTrail(arguments)
            #expect(status == expected, "\(arguments): \(status) \(error)")
            #expect(error.contains(message), "\(arguments): \(error)")
        }
    }

    @Test func graphDrawsConcurrentBidsOnOneRow() async throws {
        let (directory, log) = try await auctionDirectory()
        let (status, dot, _) = try await runTrail(["graph", "auction/t1", "--from", directory.path])
        #expect(status == 0)
        #expect(dot.hasPrefix("digraph \"auction/t1\" {"))
        #expect(dot.contains("{ rank=same; e1; e2; e3; }"), "\(dot)")
        #expect(dot.contains("e0 -> e1;") && dot.contains("e3 -> e4;"))
        #expect(dot.contains(String(log.close.id.hex.prefix(8))))
    }
}

/// The tools against a running `trail serve`: the relay's log over its API is
/// the log in its directory.
@Suite struct LiveRelaySourceTests {
    @Test func aRelayReadsLikeItsDirectory() async throws {
        let log = try await AuctionLog()
        log.store.close()
        let process = try await TrailProcess(["serve", "--data", log.directory.path, "--listen", "127.0.0.1:0"], waitForListening: true)
        let url = try #require(process.url)
        let relay = try await RelaySource(url: url)
        let replayed = try await readAll(relay)
        #expect(replayed.map(\.id) == log.events.map(\.id))
        #expect(replayed.map(\.position) == [1, 2, 3, 4, 5])
        let report = try await Verifier(source: relay).run()
        #expect(report.isSound, "\(report.namespaces.flatMap(\.violations))")
        // The same relay's fast cursor resumes; a cursor of another relay is refused.
        var replay = Replay(source: relay, namespace: AuctionLog.namespace)
        let fingerprint = try #require(relay.relayFingerprint)
        replay.selection.cursor = .position(relay: fingerprint, position: 3)
        var after = [UInt64]()
        try await replay.run { after.append($0.position) }
        #expect(after == [4, 5])
        replay.selection.cursor = .position(relay: fingerprint ^ 1, position: 3)
        await #expect(throws: ReplayError.self) { try await replay.run { _ in } }
        await relay.close()
        // The command line against the URL: replay piped to a command, and diff against an export.
        let piped = try await runTrail(["replay", "auction/t1", "--from", url, "--exec", "grep -c '\"type\":\"bid\"' > /dev/null"])
        #expect(piped.0 == 0, "\(piped)")
        let failing = try await runTrail(["replay", "auction/t1", "--from", url, "--exec", "exit 3"])
        #expect(failing.0 == 3)
        let exports = TemporaryDirectory("live-export")
        try FileManager.default.createDirectory(atPath: exports.path, withIntermediateDirectories: true)
        let exported = try await runTrail(["export", "--from", url, "--out", exports.path + "/log.jsonl"])
        #expect(exported.0 == 0, "\(exported)")
        let diff = try await runTrail(["diff", url, exports.path + "/log.jsonl"])
        #expect(diff.0 == 0, "\(diff)")
        #expect(diff.1.contains("the same events in the same order"), "\(diff)")
        _ = await process.signal(.terminate)
    }
}
