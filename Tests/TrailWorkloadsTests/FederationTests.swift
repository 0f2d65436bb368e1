import Foundation
import Testing
import TrailCore
import TrailWorkloads

/// The workloads on a real three-relay federation (`trail cluster up 3`),
/// with a partition and heal in the middle of the shared document.
@Suite(.serialized) struct WorkloadFederationTests {
    /// Runs `body` against a fresh cluster and always takes it down.
    func withCluster(_ body: (Federation, String) async throws -> Void) async throws {
        let directory = TemporaryDirectory("workloads")
        // Below Linux's ephemeral range (32768–60999), where outgoing
        // connections of tests running alongside could hold a port; apart
        // from ClusterTests' range (20000–25799).
        let base = 26_000 + Int(getpid() % 2_000) * 3
        let up = try await runTrail(["cluster", "up", "3", "--dir", directory.path, "--base-port", String(base)])
        try #require(up.0 == 0, "\(up)")
        let federation = Federation(urls: (0..<3).map { "http://127.0.0.1:\(base + $0)" })
        do { try await body(federation, directory.path) } catch {
            // What each relay holds and how its links stand, for the failure report.
            let status = try? await runTrail(["cluster", "status", "--dir", directory.path])
            let diffs = [try? await runTrail(["diff", federation.urls[0], federation.urls[1]]), try? await runTrail(["diff", federation.urls[0], federation.urls[2]])]
            var pending = [String]()
            for url in federation.urls {
                let (_, out, _) = (try? await runCommand("/usr/bin/curl", ["-s", url + "/v1/namespaces"])) ?? (0, "", "")
                pending.append(out)
            }
            Issue.record("namespaces at failure: \(pending)")
            Issue.record("cluster at failure:\n\(status?.1 ?? "")\n\(diffs.map { $0?.1.prefix(1200) ?? "" })")
            if ProcessInfo.processInfo.environment["TRAIL_KEEP_CLUSTER"] != nil {
                Issue.record("cluster kept in \(directory.path)")
                try? FileManager.default.copyItem(atPath: directory.path, toPath: "/tmp/kept-cluster")
            } else {
                _ = try? await runTrail(["cluster", "down", "--dir", directory.path])
            }
            throw error
        }
        _ = try await runTrail(["cluster", "down", "--dir", directory.path])
    }

    @Test func auctionAndReputationAgreeOnEveryRelay() async throws {
        try await withCluster { federation, _ in
            let report = try await AuctionRun(federation: federation).run()
            #expect(report.passed, "\(report)")
        }
    }

    @Test func aKilledLeaderIsReplacedAndTheTaskFinishesOnce() async throws {
        try await withCluster { federation, _ in
            let report = try await TaskRun(federation: federation).run()
            #expect(report.passed, "\(report)")
        }
    }

    @Test func sharedDocumentConvergesAcrossAPartition() async throws {
        try await withCluster { federation, directory in
            var run = DocumentRun(federation: federation)
            run.agents = 6
            run.editsPerAgent = 8
            let report = try await run.run(
                during: { _ = try await runTrail(["cluster", "partition", "1", "2,3", "--dir", directory]) },
                after: { _ = try await runTrail(["cluster", "heal", "--dir", directory]) })
            #expect(report.passed, "\(report)")
        }
    }
}
