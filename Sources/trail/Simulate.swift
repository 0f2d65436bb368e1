import ArgumentParser
import Foundation
import TrailCore
import TrailSimulation

/// `trail simulate`: the deterministic federation simulator over many seeds
/// (Docs/TESTING.md). A failing seed is printed with the end of its trace;
/// `--seed S --trace` replays it step by step.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic federation simulator over many seeds.",
        discussion: """
            Each seed runs relays over real RocksDB directories (under $TMPDIR), a simulated
            network (drops, duplicates, reorders, partitions) and crash/restart, then checks
            that they converged with every invariant held. Exit status 1 if any seed failed.
            """)

    @Option(help: "Number of seeds to run.") var seeds = 100
    @Option(help: "The first seed; seeds run from here upwards.") var first: UInt64 = 0
    @Option(help: "Run only this seed (with --trace to print its every step).") var seed: UInt64?
    @Flag(help: "Print every step of the run (use with --seed).") var trace = false
    @Option(help: "Relays per run.") var relays = 3
    @Option(help: "Namespaces per run.") var namespaces = 2
    @Option(help: "Client appends per run.") var appends = 40
    @Option(help: "Steps of the fault phase per run.") var steps = 400
    @Option(help: "Seeds run at once (default: the number of cores).") var jobs = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard seeds >= 1, relays >= 2, relays <= 16, namespaces >= 1, appends >= 0, steps >= 1, jobs >= 1 else {
            throw ValidationError("--seeds, --steps and --jobs must be at least 1, --relays within 2...16, --namespaces at least 1")
        }
    }

    func run() async throws {
        var options = Simulation.Options()
        options.relayCount = relays
        options.namespaceCount = namespaces
        options.appendCount = appends
        options.faultSteps = steps
        options.printTrace = trace
        let settings = options
        let list = seed.map { [$0] } ?? (0..<UInt64(seeds)).map { first &+ $0 }
        let started = ContinuousClock.now
        var failed = [UInt64]()
        var totals = (steps: 0, appends: 0, frames: 0, crashes: 0, partitions: 0, drops: 0, aliases: 0)
        var done = 0
        try await withThrowingTaskGroup(of: Simulation.Result.self) { group in
            var next = list.makeIterator()
            func add() {
                guard let seed = next.next() else { return }
                group.addTask {
                    let root = NSTemporaryDirectory() + "trail-simulate-\(seed)-\(UUID().uuidString.prefix(8))"
                    let result = await Simulation(seed: seed, options: settings, root: root).run()
                    if result.failure == nil { try? FileManager.default.removeItem(atPath: root) }
                    return result
                }
            }
            for _ in 0..<jobs { add() }
            while let result = try await group.next() {
                done += 1
                totals.steps += result.steps
                totals.appends += result.appends
                totals.frames += result.framesDelivered
                totals.crashes += result.crashes
                totals.partitions += result.partitions
                totals.drops += result.drops
                totals.aliases += result.aliases
                if result.failure != nil {
                    failed.append(result.seed)
                    print(result)
                    print("replay: trail simulate --seed \(result.seed) --trace (its directories are kept under \(NSTemporaryDirectory()))")
                } else if list.count == 1 || done % 100 == 0 {
                    print(list.count == 1 ? "\(result)" : "\(done)/\(list.count) seeds, \(failed.count) failed")
                }
                fflush(nil)  // progress shows at once when the output is a file
                add()
            }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        print("""
            \(list.count) seeds in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", Double(list.count) / seconds)) seeds/s): \
            \(failed.count) failed\(failed.isEmpty ? "" : " (\(failed.sorted().map(String.init).joined(separator: " ")))"); \
            \(totals.steps) steps, \(totals.appends) appends, \(totals.frames) frames, \(totals.crashes) crashes, \
            \(totals.partitions) partitions, \(totals.drops) drops, \(totals.aliases) aliases
            """)
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
