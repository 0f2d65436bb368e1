import Foundation
public import TrailClient
public import TrailCore

/// Workload 4: a leader with subagents, elected and fenced through the relay.
///
/// Namespaces under `task/<job>/`: `control` (leases and checkpoints, always
/// written on the *home* relay with conditional append), `reports` (what
/// subagents finished), `sub-<i>` (one per subtask: the leader's `spawn`).
///
/// - **Lease**: a candidate reads `control` on the home relay; when the last
///   lease or checkpoint has expired by its clock, it appends a `lease` on
///   condition that the log still ends where it read (`if_last_position`).
///   Of two candidates, one gets 409 and backs off.
/// - **Checkpoint**: the leader's every `checkpoint` (done subtasks, the
///   portable cursor of `reports` it has folded, a new expiry) is again
///   conditional on its own last position: a leader that lost the lease
///   learns it at its next write, and writes nothing more.
/// - **Resume**: a new leader starts from the last checkpoint's cursor on any
///   relay, and derives what was spawned from the `sub-<i>` logs, so no step
///   is lost or done twice.
/// - **Failure**: a subtask that fails is spawned once more; failing twice
///   it is escalated in `control`.
public struct TaskRun: Sendable {
    public let federation: Federation
    public var subtasks = 6
    public var leaseMilliseconds: UInt64 = 1500
    public var job = "task/job-\(UInt32.random(in: 0...UInt32.max))"
    /// Subtask that fails its first attempt (and then succeeds), to exercise the retry.
    public var flakySubtask = 2

    public init(federation: Federation) { self.federation = federation }

    var control: Namespace { try! Namespace(job + "/control") }
    var reports: Namespace { try! Namespace(job + "/reports") }
    func sub(_ index: Int) -> Namespace { try! Namespace(job + "/sub-\(index)") }
    var home: TrailClient { federation.client(0) }

    static var now: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    /// What a leader knows after reading `control`.
    struct Control {
        var lastPosition: UInt64 = 0
        var holder: String?
        var expires: UInt64 = 0
        var done: Set<Int> = []
        var escalated: Set<Int> = []
        var cursor: String?
    }

    func readControl() async throws -> Control {
        var state = Control()
        var after: String?
        while true {
            let page = try await home.read(control, after: after, limit: 1000)
            for received in page.events {
                guard let payload = Payload(received.event) else { continue }
                if received.event.type == "lease" || received.event.type == "checkpoint" {
                    state.holder = payload.string("holder")
                    state.expires = UInt64(max(0, payload.int("expires_ms") ?? 0))
                }
                if received.event.type == "checkpoint" {
                    state.done = Set((payload.string("done") ?? "").split(separator: ",").compactMap { Int($0) })
                    state.escalated = Set((payload.string("escalated") ?? "").split(separator: ",").compactMap { Int($0) })
                    state.cursor = payload.string("cursor").flatMap { $0.isEmpty ? nil : $0 }
                }
            }
            state.lastPosition = page.lastPosition
            after = page.cursor
            if page.events.isEmpty || page.events.last!.position >= page.lastPosition { return state }
        }
    }

    /// Runs one leader until every subtask is done or escalated (true), or it loses the lease (false).
    func lead(_ name: String, reading relay: Int, log: @Sendable (String) -> Void) async throws -> Bool {
        // Campaign.
        var mine: UInt64
        var state: Control
        while true {
            state = try await readControl()
            if let holder = state.holder, holder != name, state.expires > Self.now {
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            let lease = try Federation.event(control, type: "lease", payload: json(["holder": name, "expires_ms": Self.now + leaseMilliseconds]))
            let outcome = try await home.append(lease, options: .init(ifLastPosition: state.lastPosition))
            if outcome.outcome == "head_moved" { continue }
            mine = outcome.position ?? 0
            log("\(name) holds the lease")
            break
        }
        var done = state.done, escalated = state.escalated
        var cursor = state.cursor
        var failures = [Int: Int]()
        while !Task.isCancelled {
            // Fold the reports since the checkpoint (a portable cursor: any relay).
            let page = try await federation.client(relay).read(reports, after: cursor, limit: 1000)
            for received in page.events {
                guard let payload = Payload(received.event), let subtask = payload.int("subtask").map(Int.init) else { continue }
                if payload.string("status") == "done" { done.insert(subtask) } else { failures[subtask, default: 0] += 1 }
            }
            if !page.events.isEmpty { cursor = page.portableCursor }
            // Spawn what is neither spawned (per the sub-logs) nor finished; retry a failure once, then escalate.
            for subtask in 0..<subtasks where !done.contains(subtask) && !escalated.contains(subtask) {
                let spawned = try await federation.client(relay).read(sub(subtask), limit: 100).events.filter { $0.event.type == "spawn" }.count
                let failed = failures[subtask] ?? 0
                if failed >= 2 { escalated.insert(subtask); continue }
                if spawned <= failed, spawned < 2 {
                    let spawn = try Federation.event(sub(subtask), type: "spawn", payload: json(["subtask": subtask, "attempt": spawned + 1, "leader": name]))
                    _ = try await federation.client(relay).append(spawn)
                }
            }
            // Checkpoint and renew, fenced on this leader's own last write.
            let checkpoint = try Federation.event(control, type: "checkpoint", payload: json([
                "holder": name, "expires_ms": Self.now + leaseMilliseconds, "cursor": cursor ?? "",
                "done": done.sorted().map(String.init).joined(separator: ","), "escalated": escalated.sorted().map(String.init).joined(separator: ","),
            ]))
            let outcome = try await home.append(checkpoint, options: .init(ifLastPosition: mine))
            guard outcome.outcome != "head_moved" else {
                log("\(name) lost the lease")
                return false
            }
            mine = outcome.position ?? mine
            if done.count + escalated.count == subtasks { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// A subagent for `subtask`: works each spawn once (a report names the attempt), then stops when done.
    func work(_ subtask: Int) async throws {
        let client = federation.client(subtask)
        var handled = Set<Int>()
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, !Task.isCancelled {
            let spawns = try await client.read(sub(subtask), limit: 100).events.compactMap { Payload($0.event)?.int("attempt").map(Int.init) }
            let reported = try await client.read(reports, limit: 1000).events.compactMap { received -> (Int, Int, String)? in
                guard let payload = Payload(received.event), let s = payload.int("subtask"), let a = payload.int("attempt") else { return nil }
                return (Int(s), Int(a), payload.string("status") ?? "")
            }.filter { $0.0 == subtask }
            if reported.contains(where: { $0.2 == "done" }) { return }
            for attempt in spawns where !handled.contains(attempt) && !reported.contains(where: { $0.1 == attempt }) {
                handled.insert(attempt)
                try await Task.sleep(for: .milliseconds(30))  // the work
                let status = subtask == flakySubtask && attempt == 1 ? "failed" : "done"
                let report = try Federation.event(reports, type: "report", payload: json(["subtask": subtask, "attempt": attempt, "status": status, "agent": "sub-\(subtask)"]))
                _ = try await client.append(report)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Leader A on relay 1 is killed after some subtasks are done; leader B
    /// on relay 2 waits out A's lease, takes over and finishes.
    public func run(log: @escaping @Sendable (String) -> Void = { _ in }) async throws -> WorkloadReport {
        let workers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for subtask in 0..<subtasks { group.addTask { try await work(subtask) } }
                try await group.waitForAll()
            }
        }
        let leaderA = Task { try await lead("leader-a", reading: 0, log: log) }
        // Kill A once a third of the subtasks reported done.
        while try await federation.client(0).read(reports, limit: 1000).events.filter({ Payload($0.event)?.string("status") == "done" }).count < subtasks / 3 {
            try await Task.sleep(for: .milliseconds(50))
        }
        leaderA.cancel()
        _ = try? await leaderA.value
        log("leader-a killed")
        let killedAt = Self.now
        let finished = try await lead("leader-b", reading: 1 % federation.urls.count, log: log)
        try await workers.value
        let names = [control, reports] + (0..<subtasks).map(sub)
        try await federation.converge(names)

        // The checks, from the logs.
        let controlEvents = try await federation.events(control, on: 0)
        let leases = controlEvents.filter { $0.type == "lease" }.compactMap { Payload($0)?.string("holder") }
        let firstB = controlEvents.first { Payload($0)?.string("holder") == "leader-b" }
        let lastExpiryA = controlEvents.compactMap(Payload.init).filter { $0.string("holder") == "leader-a" }
            .compactMap { $0.int("expires_ms") }.max().map { UInt64($0) } ?? 0
        let reportEvents = try await federation.events(reports, on: 2 % federation.urls.count).compactMap(Payload.init)
        var spawnsPerAttempt = [String: Int]()
        for subtask in 0..<subtasks {
            for spawn in try await federation.events(sub(subtask), on: 1 % federation.urls.count).compactMap(Payload.init) {
                spawnsPerAttempt["\(subtask)/\(spawn.int("attempt") ?? 0)", default: 0] += 1
            }
        }
        var reportsPerAttempt = [String: Int]()
        for report in reportEvents { reportsPerAttempt["\(report.int("subtask") ?? -1)/\(report.int("attempt") ?? 0)", default: 0] += 1 }
        let doneSubtasks = Set(reportEvents.filter { $0.string("status") == "done" }.compactMap { $0.int("subtask") })
        let final = try await readControl()
        return WorkloadReport(
            workload: "leader and subagents", agents: subtasks + 2, events: controlEvents.count + reportEvents.count + spawnsPerAttempt.values.reduce(0, +),
            checks: [
                ("leases held in turn: leader-a, then leader-b", leases == ["leader-a", "leader-b"]),
                ("leader-b took over only after leader-a's lease expired",
                 firstB.map { $0.timestamp.physicalMilliseconds >= lastExpiryA && $0.timestamp.physicalMilliseconds >= killedAt } ?? false),
                ("every subtask done (no step lost)", finished && doneSubtasks.count == subtasks && final.done.count == subtasks),
                ("each step spawned and reported once (none done twice)",
                 spawnsPerAttempt.values.allSatisfy { $0 == 1 } && reportsPerAttempt.values.allSatisfy { $0 == 1 }),
                ("the flaky subtask retried once", spawnsPerAttempt["\(flakySubtask)/2"] == 1),
            ],
            notes: ["\(controlEvents.count) control events, \(spawnsPerAttempt.count) spawns"])
    }
}
