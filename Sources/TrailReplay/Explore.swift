import Foundation
public import TrailCore
public import TrailStore
import TrailAPI

/// Finds coordination bugs that hide in arrival order.
///
/// A relay's log is one linear extension of happens-before (the parent
/// relation); another relay, or the same agents on another day, may see the
/// concurrent events in another order. The explorer feeds a fold (a
/// function of the event sequence, or a command reading JSON lines) other
/// legal orders of the same events and compares its outcome with the
/// outcome of the recorded order:
///
/// 1. systematically, for each pair of concurrent events, closest first,
///    the order that moves the later one (and its ancestors between them)
///    just before the earlier one;
/// 2. then random linear extensions drawn from `seed`.
///
/// When a random order changes the outcome, the explorer bisects the path of
/// single swaps of adjacent concurrent events from the recorded order to it,
/// and reports the pair whose swap flips the outcome: the smallest change
/// that matters. Everything follows from `seed`, so the same seed repeats
/// the same search.
///
/// ```swift
/// let events = try await Explorer.window(of: source, namespace: namespace)
/// let report = try await Explorer(events: events, seed: 42).run { order in
///     winner(of: order)   // the fold under test
/// }
/// if let finding = report.finding { print(finding.first.id, finding.second.id) }
/// ```
public struct Explorer: Sendable {
    public let events: [StoredEvent]
    public var seed: UInt64
    /// At most this many orders are tried (the recorded one not counted).
    public var orderCountMax = 200
    public var timeLimit: Duration = .seconds(300)

    /// Parents within the window, by index.
    let parents: [[Int]]
    /// ancestors[i] holds bit j when event j happens before event i.
    let ancestors: [[UInt64]]

    public struct Finding: Sendable {
        /// The pair: `first` comes before `second` in the recorded order;
        /// `order` puts `second` before `first` and changes the outcome.
        public let first: StoredEvent
        public let second: StoredEvent
        public let recordedOutcome: String
        public let changedOutcome: String
        /// The order (as positions) that produced `changedOutcome`.
        public let order: [UInt64]
    }

    public struct Report: Sendable {
        public let seed: UInt64
        public let eventCount: Int
        public let concurrentPairCount: Int
        public let ordersTried: Int
        public let distinctOutcomes: Int
        public let recordedOutcome: String
        /// nil: every order tried gave the recorded outcome.
        public let finding: Finding?
        /// True when the time limit stopped the search early.
        public let timedOut: Bool
    }

    public init(events: [StoredEvent], seed: UInt64) {
        self.events = events
        self.seed = seed
        var index = [EventID: Int]()
        for (offset, stored) in events.enumerated() { index[stored.id] = offset }
        let parents = events.map { $0.event.parents.compactMap { index[$0] } }
        let words = (events.count + 63) / 64
        var ancestors = [[UInt64]](repeating: [UInt64](repeating: 0, count: words), count: events.count)
        for i in events.indices {
            for p in parents[i] where p < i {
                ancestors[i][p / 64] |= 1 << UInt64(p % 64)
                for w in 0..<words { ancestors[i][w] |= ancestors[p][w] }
            }
        }
        self.parents = parents
        self.ancestors = ancestors
    }

    /// Reads the window of a log that `selection` names, at most `limit` events.
    public static func window(
        of source: any LogSource, namespace: Namespace, selection: EventSelection = EventSelection(), limit: Int = 2000
    ) async throws -> [StoredEvent] {
        var events = [StoredEvent]()
        var replay = Replay(source: source, namespace: namespace)
        replay.selection = selection
        do {
            try await replay.run { stored in
                guard events.count < limit else { throw WindowFull() }
                events.append(stored)
            }
        } catch is WindowFull {}
        return events
    }

    struct WindowFull: Error {}

    func happensBefore(_ a: Int, _ b: Int) -> Bool { ancestors[b][a / 64] & (1 << UInt64(a % 64)) != 0 }
    public func concurrent(_ a: Int, _ b: Int) -> Bool { a != b && !happensBefore(a, b) && !happensBefore(b, a) }

    /// The recorded order with `later` (and its ancestors between the two)
    /// moved just before `earlier`.
    func swapped(_ earlier: Int, _ later: Int, in order: [Int]) -> [Int] {
        let from = order.firstIndex(of: earlier)!, to = order.firstIndex(of: later)!
        let between = order[(from + 1)..<to]
        let moved = between.filter { happensBefore($0, later) }
        let stay = between.filter { !happensBefore($0, later) }
        return Array(order[..<from]) + moved + [later, earlier] + stay + Array(order[(to + 1)...])
    }

    /// A random linear extension: repeatedly take a random event whose parents are all placed.
    func randomOrder(_ generator: inout SplitMix64) -> [Int] {
        var waiting = parents.map { Set($0) }
        var children = [[Int]](repeating: [], count: events.count)
        for (child, list) in parents.enumerated() { for parent in list { children[parent].append(child) } }
        var ready = events.indices.filter { waiting[$0].isEmpty }
        var order = [Int]()
        order.reserveCapacity(events.count)
        while !ready.isEmpty {
            let pick = Int(generator.next() % UInt64(ready.count))
            ready.swapAt(pick, ready.count - 1)
            let next = ready.removeLast()
            order.append(next)
            for child in children[next] {
                waiting[child].remove(next)
                if waiting[child].isEmpty { ready.append(child) }
            }
        }
        return order
    }

    /// Runs the search; `fold` maps an order of the events to its outcome.
    public func run(_ fold: ([StoredEvent]) async throws -> String) async throws -> Report {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeLimit)
        let recorded = Array(events.indices)
        let recordedOutcome = try await fold(events)
        var outcomes: Set<String> = [recordedOutcome]
        var tried = Set<[Int]>([recorded])
        var triedCount = 0
        var pairs = 0
        for distance in 1..<max(events.count, 1) {
            for a in 0..<(events.count - distance) where concurrent(a, a + distance) { pairs += 1 }
        }
        func attempt(_ order: [Int]) async throws -> String? {
            guard triedCount < orderCountMax, clock.now < deadline, tried.insert(order).inserted else { return nil }
            triedCount += 1
            let outcome = try await fold(order.map { events[$0] })
            outcomes.insert(outcome)
            return outcome
        }
        func report(_ finding: Finding?) -> Report {
            Report(seed: seed, eventCount: events.count, concurrentPairCount: pairs, ordersTried: triedCount,
                   distinctOutcomes: outcomes.count, recordedOutcome: recordedOutcome, finding: finding,
                   timedOut: clock.now >= deadline)
        }
        func finding(_ a: Int, _ b: Int, _ outcome: String, _ order: [Int]) -> Finding {
            Finding(first: events[a], second: events[b], recordedOutcome: recordedOutcome, changedOutcome: outcome,
                    order: order.map { events[$0].position })
        }
        // 1. Swaps of concurrent pairs, closest first, with half the budget.
        let systematicMax = orderCountMax / 2
        search: for distance in 1..<max(events.count, 1) {
            for a in 0..<(events.count - distance) where concurrent(a, a + distance) {
                guard triedCount < systematicMax else { break search }
                let order = swapped(a, a + distance, in: recorded)
                if let outcome = try await attempt(order), outcome != recordedOutcome {
                    return report(finding(a, a + distance, outcome, order))
                }
            }
        }
        // 2. Random linear extensions from the seed.
        var generator = SplitMix64(seed: seed)
        var repeats = 0
        while triedCount < orderCountMax, clock.now < deadline {
            let order = randomOrder(&generator)
            guard let outcome = try await attempt(order) else {
                // Drawn before: after many in a row, few orders exist and all were tried.
                repeats += 1
                if repeats < 1000 { continue } else { break }
            }
            repeats = 0
            guard outcome != recordedOutcome else { continue }
            // Shrink: walk from the recorded order to this one by swaps of
            // adjacent concurrent events; bisect for the swap that flips the outcome.
            let (pair, after) = try await bisect(
                from: recorded, to: order, recordedOutcome: recordedOutcome, toOutcome: outcome, fold
            ) { triedCount += 1; outcomes.insert($0) }
            let alone = swapped(pair.0, pair.1, in: recorded)
            if tried.insert(alone).inserted {
                triedCount += 1
                let single = try await fold(alone.map { events[$0] })
                outcomes.insert(single)
                if single != recordedOutcome { return report(finding(pair.0, pair.1, single, alone)) }
            }
            return report(finding(pair.0, pair.1, after.outcome, after.order))
        }
        return report(nil)
    }
}

extension Explorer {
    /// Between `from` (whose outcome is `recordedOutcome`) and `to` (whose
    /// outcome differs) lies a path of orders, each one swap of two adjacent
    /// concurrent events away from the last (insertion sort toward `to`;
    /// every step is a linear extension because both ends are). Binary search
    /// finds a step where the outcome leaves `recordedOutcome`: that swap's pair.
    func bisect(
        from: [Int], to: [Int], recordedOutcome: String, toOutcome: String, _ fold: ([StoredEvent]) async throws -> String,
        tried: (String) -> Void
    ) async throws -> (pair: (Int, Int), after: (order: [Int], outcome: String)) {
        var rank = [Int](repeating: 0, count: events.count)
        for (offset, event) in to.enumerated() { rank[event] = offset }
        /// The order after `steps` swaps, and the pair the last swap exchanged.
        func walk(_ steps: Int) -> (order: [Int], swap: (Int, Int)?) {
            var order = from
            var done = 0
            var last: (Int, Int)?
            for i in order.indices {
                var j = i
                while j > 0, rank[order[j - 1]] > rank[order[j]] {
                    guard done < steps else { return (order, last) }
                    last = (order[j - 1], order[j])
                    order.swapAt(j - 1, j)
                    done += 1
                    j -= 1
                }
            }
            return (order, last)
        }
        var total = 0
        for i in from.indices { for j in (i + 1)..<from.count where rank[from[i]] > rank[from[j]] { total += 1 } }
        var low = 0, high = total  // outcome(low) == recorded, outcome(high) != recorded
        var highOutcome = toOutcome
        while high - low > 1 {
            let middle = (low + high) / 2
            let outcome = try await fold(walk(middle).order.map { events[$0] })
            tried(outcome)
            if outcome == recordedOutcome { low = middle } else { high = middle; highOutcome = outcome }
        }
        let (after, swap) = walk(high)
        let (first, second) = swap!
        return ((first, second), (after, highOutcome))
    }

    /// A fold that runs `command` with `/bin/sh -c`, the events on its
    /// standard input as JSON lines (the client API's event objects), and
    /// takes its standard output, and its exit status when not 0, as the outcome.
    public static func commandFold(_ command: String) -> @Sendable ([StoredEvent]) async throws -> String {
        { events in try runCommand(command, input: jsonLines(events)) }
    }
}

/// Events as JSON lines: the client API's event objects (`Docs/API.md`), one
/// per line, as `--json`, `--exec` and `trail export --format jsonl` write them.
public func jsonLines(_ events: [StoredEvent]) -> [UInt8] {
    var writer = JSONWriter(capacity: events.count * 256)
    for stored in events {
        writer.write(EventOutput(event: stored.event, position: stored.position, origin: stored.origin, originSeq: stored.originSeq))
        writer.newline()
    }
    return writer.bytes
}

/// Runs `/bin/sh -c command` with `input` on its standard input; returns its
/// standard output, prefixed by `exit status N` when it fails.
func runCommand(_ command: String, input: [UInt8]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    do { try process.run() } catch { throw ReplayError.invalid("cannot run \(command): \(error)") }
    // Written from another thread: a command that prints before reading all
    // of its input would otherwise deadlock against a full pipe.
    let writer = Thread {
        try? stdin.fileHandleForWriting.write(contentsOf: Data(input))
        try? stdin.fileHandleForWriting.close()
    }
    writer.start()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: output, as: UTF8.self)
    return process.terminationStatus == 0 ? text : "exit status \(process.terminationStatus)\n" + text
}
