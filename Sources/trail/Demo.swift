import ArgumentParser
import Foundation
import TrailCore
import TrailWorkloads

/// Starts a small federation, runs the coordination workloads at the three
/// scales, prints what agreed and how fast, and cleans up.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the coordination workloads on a local federation of 3 relays and print a report (about a minute).",
        discussion: """
            Scales: direct messaging (conversations of 3 agents, one namespace each, each agent on
            its own relay), relay sequencing (20 agents editing one document through one relay), and
            federation (100 bidders over 3 relays, reputation, and a shared document across a
            partition and heal). Each check compares what every relay computes from its own log.
            """)

    @Option(help: "Client API ports of the demo relays start here (peer ports at +100).")
    var basePort = 7800

    @Option(help: "Where the demo's relays keep their data (removed afterwards).")
    var dir = NSTemporaryDirectory() + "trail-demo-\(getpid())"

    func run() async throws {
        let started = ContinuousClock.now
        let up = try ClusterUp.parse(["3", "--dir", dir, "--base-port", String(basePort)])
        do { try await up.run() } catch {
            _ = try? await ClusterDown.parse(["--dir", dir, "--purge"]).run()
            throw error
        }
        let urls = (0..<3).map { "http://127.0.0.1:\(basePort + $0)" }
        var reports = [(String, WorkloadReport)]()
        var failure: (any Error)?
        do {
            print("\n1. direct messaging: conversations of 3 agents, each agent on its own relay")
            var messaging = MessagingRun(federation: Federation(urls: urls))
            messaging.conversations = 2
            let (direct, _) = try await messaging.run()
            reports.append(("2–5 agents", direct))
            print("   \(direct)")

            print("\n2. relay sequencing: 20 agents edit one document through one relay")
            var sequenced = DocumentRun(federation: Federation(urls: [urls[0]]))
            sequenced.agents = 20
            sequenced.editsPerAgent = 6
            let document = try await sequenced.run()
            reports.append(("10–50 agents", document))
            print("   \(document)")

            print("\n3. federation: 100 bidders over 3 relays, reputation, slashing")
            var auction = AuctionRun(federation: Federation(urls: urls))
            auction.bidders = 100
            let auctionReport = try await auction.run()
            reports.append(("100+ agents", auctionReport))
            print("   \(auctionReport)")

            print("\n4. leader and subagents: the leader is killed mid-task; another takes the lease and resumes")
            let task = try await TaskRun(federation: Federation(urls: urls)).run { print("   … \($0)") }
            reports.append(("federation, leader", task))
            print("   \(task)")

            print("\n5. federation: a shared document across a partition of relay 1 from relays 2 and 3, then heal")
            var shared = DocumentRun(federation: Federation(urls: urls))
            shared.agents = 12
            shared.editsPerAgent = 8
            let dir = self.dir
            let partitioned = try await shared.run(
                during: { try await ClusterPartition.parse(["1", "2,3", "--dir", dir]).run() },
                after: { try await ClusterHeal.parse(["--dir", dir]).run() })
            reports.append(("federation + partition", partitioned))
            print("   \(partitioned)")
        } catch {
            failure = error
        }
        _ = try? await ClusterDown.parse(["--dir", dir, "--purge"]).run()
        let elapsed = ContinuousClock.now - started
        print("\nReport (\(elapsed.components.seconds) s):")
        for (scale, report) in reports {
            print("  \(report.passed ? "PASS" : "FAIL")  \(scale.padding(toLength: 24, withPad: " ", startingAt: 0)) \(report.workload): \(report.agents) agents, \(report.events) events")
            for (check, passed) in report.checks { print("          \(passed ? "✓" : "✗") \(check)") }
            for note in report.notes { print("          \(note)") }
        }
        if let failure { throw CLIError("the demo stopped: \(failure)") }
        if !reports.allSatisfy(\.1.passed) { throw ExitCode(2) }
    }
}
