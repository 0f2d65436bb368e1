import Foundation
import Subprocess
import SystemPackage
import Testing
import TrailCore
import TrailStore

/// Set once the child reports that its store is open and it is appending.
final class ReadyFlag: Sendable {
    private let value = Locked(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

struct CrashTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What the child printed before it died.
struct Acknowledged {
    var appended: [(EventID, UInt64)] = []
    var pending: [EventID] = []

    mutating func parse(_ line: String) {
        let fields = line.split(separator: " ")
        guard fields.count >= 2, let id = try? EventID(hex: String(fields[1])) else { return }
        if fields[0] == "ack", fields.count == 3, let position = UInt64(fields[2]) {
            appended.append((id, position))
        } else if fields[0] == "pending" {
            pending.append(id)
        }
    }
}

@Suite(.serialized) struct CrashTests {
    /// 50 kills in the default run; TRAIL_LONG_TESTS=1 makes it 1000.
    static let rounds = ProcessInfo.processInfo.environment["TRAIL_LONG_TESTS"] == "1" ? 1000 : 50

    @Test func everyAcknowledgedEventSurvivesSIGKILLAtRandomMoments() async throws {
        let binary = try trailBinary()
        var generator = SeededGenerator(seed: UInt64(ProcessInfo.processInfo.environment["TRAIL_CRASH_SEED"] ?? "") ?? UInt64.random(in: 1...1_000_000))
        let seed = generator.state
        var directory = TemporaryDirectory("crash")
        var killedWhileWriting = 0
        var totalAcknowledged = 0
        var aliasesSeen: UInt64 = 0
        for round in 0..<Self.rounds {
            if round % 10 == 0 { directory = TemporaryDirectory("crash") }
            // Three kills in four land after the writer reports it is appending (0–300 ms
            // later), so a slow machine still tests appends; the rest at 5–150 ms after
            // launch, which may be while RocksDB opens or recovers.
            let afterReady = Int.random(in: 0..<4, using: &generator) != 0
            let delay = afterReady ? Int.random(in: 0...300, using: &generator) : Int.random(in: 5...150, using: &generator)
            let ready = ReadyFlag()
            let result = try await Subprocess.run(
                .path(FilePath(binary)),
                arguments: ["crash-writer", "--data", directory.path, "--seed", "\(round + 1)", "--events", "200000"],
                input: .none, output: .sequence, error: .discarded
            ) { execution in
                let killer = Task {
                    if afterReady {
                        // Bounded: a writer that never becomes ready is killed after 10 s.
                        for _ in 0..<2000 where !ready.isSet {
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                    try await Task.sleep(for: .milliseconds(delay))
                    try? execution.send(signal: .kill)
                }
                var acknowledged = Acknowledged()
                var lines = 0
                for try await line in execution.standardOutput.strings() {
                    if line.hasPrefix("ready") { ready.set() }
                    acknowledged.parse(line)
                    lines += 1
                }
                killer.cancel()
                return (acknowledged, lines)
            }
            let (acknowledged, _) = result.closureResult
            if !acknowledged.appended.isEmpty { killedWhileWriting += 1 }
            totalAcknowledged += acknowledged.appended.count

            // Reopen as the next process would, and hold the store to its promises.
            guard FileManager.default.fileExists(atPath: directory.path + "/relay.key") else { continue }
            let store = try Store(directory: directory.path)
            defer { store.close() }
            for (id, position) in acknowledged.appended {
                let stored = try store.event(id: id)
                #expect(stored?.position == position, "seed \(seed) round \(round): acknowledged \(id.short) at \(position) is \(stored.map { "at \($0.position)" } ?? "missing")")
            }
            var pendingNow = Set<EventID>()
            for info in try store.namespaces() {
                pendingNow.formUnion(try store.pending(in: info.namespace).map(\.id))
                let violations = try store.check(info.namespace)
                #expect(violations.isEmpty, "seed \(seed) round \(round): \(violations.prefix(3))")
                // Every position fills one origin slot; an alias fills one more.
                #expect(info.vector.total == info.lastPosition + info.aliasCount)
                aliasesSeen = max(aliasesSeen, info.aliasCount)
            }
            // Only a replicated event whose predecessor the kill cut off may stay pending:
            // at most one per writer task per round since this directory was made.
            let roundsHere = round % 10 + 1
            #expect(pendingNow.count <= 8 * roundsHere, "seed \(seed) round \(round): \(pendingNow.count) events stuck pending")
            for id in acknowledged.pending {
                #expect(try store.event(id: id) != nil || pendingNow.contains(id), "seed \(seed) round \(round): pending \(id.short) lost")
            }
        }
        // Most kills must land while events are being acknowledged, or the test proves little.
        #expect(killedWhileWriting >= Self.rounds / 2, "only \(killedWhileWriting) of \(Self.rounds) kills hit a writing process")
        #expect(aliasesSeen > 0, "the writer's events accepted by a second origin (aliases) never survived a kill")
        print("crash test: seed \(seed), \(Self.rounds) kills, \(killedWhileWriting) during appends, \(totalAcknowledged) acknowledged events checked")
    }
}
