import ArgumentParser
import Foundation
import TrailCore
import TrailStore

/// The child process of the crash tests: appends in `synced` mode as fast as
/// it can, from several tasks, and prints one line per acknowledged event
/// before doing anything else. The test kills it with SIGKILL at a random
/// moment, reopens the directory, and checks that every printed event is there.
struct CrashWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-writer",
        abstract: "Append until killed, printing each acknowledged event (used by the crash tests).",
        shouldDisplay: false)

    @Option(name: .customLong("data")) var directory: String
    @Option var seed: UInt64 = 1
    @Option var tasks = 8
    @Option var namespaces = 4
    /// Bounds the run when nobody kills it.
    @Option var events = 100_000

    func run() async throws {
        let store = try Store(directory: directory, configuration: StoreConfiguration(durability: .synced))
        let output = Output()
        emit("ready \(store.relayID.hex)")
        let perTask = events / tasks
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var generator = SplitMix64(seed: seed &* 1_000_003 &+ UInt64(task))
                    // A remote origin per task whose events arrive out of order, so that
                    // pending events are in flight when the kill comes.
                    // Unique per run and task: an origin never reuses an originSeq for another event.
                    let origin = try SigningKey(seed: SHA256.hash(Array("crash-writer \(seed) \(task)".utf8))).publicKey
                    // Another relay that accepted some of this relay's events too: each becomes an alias.
                    let twin = try SigningKey(seed: SHA256.hash(Array("crash-writer twin \(seed) \(task)".utf8))).publicKey
                    var originSeqs = [Namespace: UInt64]()
                    var twinSeqs = [Namespace: UInt64]()
                    var held: [EventID] = []
                    var index = 0
                    while index < perTask {
                        let namespace = try Namespace("crash/ns-\(Int(generator.next() % UInt64(namespaces)))")
                        let parents = held.isEmpty || generator.next() % 3 == 0 ? [] : [held[Int(generator.next() % UInt64(held.count))]]
                        let payload = (0..<64).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                        let event = try Event(namespace: namespace, timestamp: store.now(), parents: parents,
                                              type: "crash", payload: payload)
                        if generator.next() % 4 == 0 {
                            let originSeq = originSeqs[namespace, default: 0]
                            // Two remote events delivered successor first: the first waits as pending.
                            let first = try Event(namespace: namespace, timestamp: store.now(), type: "remote", payload: payload)
                            let second = try Event(namespace: namespace, timestamp: store.now(), parents: [first.id], type: "remote", payload: payload)
                            let results = try await store.apply(contentsOf: [
                                Store.Replicated(event: second, origin: origin, originSeq: originSeq + 2),
                            ])
                            output.report(results)
                            let rest = try await store.apply(contentsOf: [
                                Store.Replicated(event: first, origin: origin, originSeq: originSeq + 1),
                            ])
                            output.report(rest)
                            originSeqs[namespace] = originSeq + 2
                            index += 2
                        } else {
                            let count = Int(generator.next() % 4) + 1
                            var batch = [event]
                            for extra in 1..<count {
                                batch.append(try Event(namespace: namespace, timestamp: store.now(), parents: [event.id],
                                                       type: "crash", payload: Array(payload.prefix(extra * 8))))
                            }
                            let results = try await store.append(contentsOf: batch)
                            output.report(results)
                            if generator.next() % 8 == 0 {
                                let twinSeq = twinSeqs[namespace, default: 0] + 1
                                output.report(try await store.apply(contentsOf: [Store.Replicated(event: event, origin: twin, originSeq: twinSeq)]))
                                twinSeqs[namespace] = twinSeq
                            }
                            held += results.map(\.id).suffix(2)
                            if held.count > 64 { held.removeFirst(held.count - 64) }
                            index += count
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        store.close()
        emit("done")
    }
}

/// Writes acknowledgement lines whole, from any task.
final class Output: Sendable {
    private let lock = NSLock()

    func report(_ results: [AppendResult]) {
        var text = ""
        for result in results {
            switch result.outcome {
            case .appended(let placement), .duplicate(let placement):
                text += "ack \(result.id.hex) \(placement.position)\n"
            case .pending:
                text += "pending \(result.id.hex)\n"
            case .conflict, .trimmed, .headMoved:
                text += "refused \(result.id.hex)\n"
            }
        }
        lock.withLock {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
