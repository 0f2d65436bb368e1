import Foundation
import Testing
import TrailCore
import TrailSimulation
import TrailTestSupport

/// The deterministic simulator (`Simulation`): a federation of real stores
/// over a simulated network with drops, duplicates, reorders, partitions and
/// crashes must keep every invariant at every step and converge at the end.
/// `Tools/simulate --seeds N` runs as many seeds as asked.
@Suite struct SimulationTests {
    /// Seeds the default test run covers; TRAIL_SIMULATION_SEEDS overrides.
    static let seedCount = ProcessInfo.processInfo.environment["TRAIL_SIMULATION_SEEDS"].flatMap { Int($0) } ?? 300

    /// Two seeds at a time: each opens three stores, and the rest of the suite runs beside it.
    @Test func everySeedConvergesWithItsInvariantsHeld() async throws {
        var failures = [Simulation.Result]()
        var appends = 0
        try await withThrowingTaskGroup(of: Simulation.Result.self) { group in
            var seeds = (0..<UInt64(Self.seedCount)).makeIterator()
            func add() {
                guard let seed = seeds.next() else { return }
                group.addTask {
                    let directory = TemporaryDirectory("sim-\(seed)")
                    return await Simulation(seed: seed, root: directory.path).run()
                }
            }
            add()
            add()
            while let result = try await group.next() {
                if result.failure != nil { failures.append(result) }
                appends += result.appends
                add()
            }
        }
        #expect(failures.isEmpty, "\(failures.count) seeds failed; replay with `Tools/simulate --seed S --trace`:\n\(failures.map(\.description).joined(separator: "\n"))")
        #expect(appends == Self.seedCount * Simulation.Options().appendCount)
    }

    /// Regression, found by the simulator (seed 50023, 5 relays): a WANT is a
    /// snapshot, and an event its sender made after sending it reached the
    /// receiver first through a third relay; the receiver, checking the
    /// sender's origin against that snapshot, told a relay that had lost
    /// nothing that it was stale. The relay whose origin it is checks now.
    @Test func aWantRacedByAnEventThroughAThirdRelayIsNotStaleness() async throws {
        var options = Simulation.Options()
        options.relayCount = 5
        options.namespaceCount = 3
        options.appendCount = 80
        options.faultSteps = 600
        let directory = TemporaryDirectory("sim-50023")
        let result = await Simulation(seed: 50023, options: options, root: directory.path).run()
        #expect(result.failure == nil, "\(result)")
    }

    @Test func aSeedReplaysTheSameRun() async throws {
        let first = TemporaryDirectory("sim-replay-a")
        let second = TemporaryDirectory("sim-replay-b")
        let a = await Simulation(seed: 42, root: first.path).run()
        let b = await Simulation(seed: 42, root: second.path).run()
        #expect(a.failure == nil && b.failure == nil)
        #expect(a.digest == b.digest, "seed 42 ran twice with different traces")
        let other = TemporaryDirectory("sim-replay-c")
        let c = await Simulation(seed: 43, root: other.path).run()
        #expect(c.digest != a.digest)
    }

    /// The faults the simulator promises do happen over the default seeds.
    @Test func faultsHappen() async throws {
        var crashes = 0, partitions = 0, drops = 0, aliases = 0
        for seed in UInt64(1000)..<1010 {
            let directory = TemporaryDirectory("sim-faults-\(seed)")
            let result = await Simulation(seed: seed, root: directory.path).run()
            #expect(result.failure == nil, "\(result)")
            crashes += result.crashes
            partitions += result.partitions
            drops += result.drops
            aliases += result.aliases
        }
        #expect(crashes > 0 && partitions > 0 && drops > 0 && aliases > 0,
                "crashes \(crashes), partitions \(partitions), drops \(drops), aliases \(aliases)")
    }
}
