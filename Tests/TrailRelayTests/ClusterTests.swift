import Foundation
import Testing
import TrailClient
import TrailCore
import TrailTestSupport

/// `trail cluster` as an operator uses it: three relays up, a partition that
/// splits what they hold, a heal after which they hold the same events, down.
@Suite struct ClusterTests {
    @Test func upPartitionHealDown() async throws {
        let directory = TemporaryDirectory("cluster")
        // Below Linux's ephemeral range (32768–60999), where outgoing
        // connections of tests running alongside could hold a port; apart
        // from WorkloadFederationTests' range (26000–32099); the test below
        // takes base + 300.
        let base = 20_000 + Int(getpid() % 1_800) * 3
        let up = try await runTrail(["cluster", "up", "3", "--dir", directory.path, "--base-port", String(base)])
        #expect(up.0 == 0, "\(up)")
        #expect(up.1.contains("relay-3  http://127.0.0.1:\(base + 2)"), "\(up.1)")
        let urls = (0..<3).map { "http://127.0.0.1:\(base + $0)" }
        func append(_ relay: Int, _ text: String) async throws {
            _ = try await TrailClient(relays: [urls[relay]]).append(type: "msg", payload: text, to: try Namespace("chat/cluster"))
        }
        do {
            try await exercise(directory, urls, append)
        } catch {
            _ = try? await runTrail(["cluster", "down", "--dir", directory.path, "--purge"])
            throw error
        }
    }

    func exercise(_ directory: TemporaryDirectory, _ urls: [String], _ append: (Int, String) async throws -> Void) async throws {
        try await append(0, "before")
        let partition = try await runTrail(["cluster", "partition", "1,2", "3", "--dir", directory.path])
        #expect(partition.0 == 0 && partition.1.contains("relay-1,relay-2 | relay-3"), "\(partition)")
        let status = try await runTrail(["cluster", "status", "--dir", directory.path])
        #expect(status.1.contains("relay-3  \(urls[2])  running  links: none  blocked: relay-1,relay-2"), "\(status.1)")
        try await append(0, "side a")
        try await append(2, "side b")
        try await Task.sleep(for: .milliseconds(500))
        let split = try await runTrail(["diff", urls[0], urls[2]])
        #expect(split.0 == 2 && split.1.contains("only in A") && split.1.contains("only in B"), "\(split)")
        let heal = try await runTrail(["cluster", "heal", "--dir", directory.path])
        #expect(heal.0 == 0)
        var converged = false
        for _ in 0..<100 where !converged {
            try await Task.sleep(for: .milliseconds(200))
            let diffs = [try await runTrail(["diff", urls[0], urls[2]]), try await runTrail(["diff", urls[1], urls[2]])]
            converged = diffs.allSatisfy { $0.0 == 0 }
        }
        #expect(converged, "the relays did not converge within 20 s of the heal")
        let down = try await runTrail(["cluster", "down", "--dir", directory.path])
        #expect(down.0 == 0 && down.1.contains("stopped"), "\(down)")
        let again = try await runTrail(["cluster", "status", "--dir", directory.path])
        #expect(again.0 != 0 && again.2.contains("no cluster"), "\(again)")
    }

    /// A cluster that cannot come up (a port is taken) stops the relays it
    /// started: nothing is left running for the operator to hunt down.
    @Test func aClusterThatFailsToStartLeavesNothingRunning() async throws {
        let directory = TemporaryDirectory("cluster-fail")
        let base = 20_300 + Int(getpid() % 1_800) * 3
        // Relay 2's API port, held by a listening socket of this test.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(holder >= 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(base + 1).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(holder, 1) == 0, "port \(base + 1) is taken on this machine")

        let up = try await runTrail(["cluster", "up", "3", "--dir", directory.path, "--base-port", String(base)])
        #expect(up.0 != 0)
        #expect(up.2.contains("relay-2 did not start, so the cluster was stopped"), "\(up)")
        #expect(Self.processes(mentioning: directory.path).isEmpty, "left running: \(Self.processes(mentioning: directory.path))")
    }

    /// The command lines of processes that name `text` (from /proc).
    static func processes(mentioning text: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { Int32($0) != nil }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let command = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return command.contains(text) && command.contains("serve") ? command : nil
        }
    }
}
