import Foundation
public import Subprocess
import SystemPackage

// What several test targets share: temporary data directories and `trail`
// child processes started and stopped by the test that owns them.

/// A data directory under the system's temporary folder, removed when the test ends.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "store") {
        path = NSTemporaryDirectory() + "trail-test-\(label)-\(UUID().uuidString.prefix(8))"
        LiveDirectories.shared.insert(path)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
        LiveDirectories.shared.remove(path)
    }
}

/// Temporary directories not yet removed: the test process removes them as it
/// exits, for a test whose directory outlives it (one still held by a
/// `defer { Task { … } }` that never ran, or a test that failed first).
private final class LiveDirectories: @unchecked Sendable {
    private let lock = NSLock()
    private var paths = Set<String>()

    static let shared: LiveDirectories = {
        atexit { LiveDirectories.shared.removeAll() }
        return LiveDirectories()
    }()

    func insert(_ path: String) { lock.withLock { _ = paths.insert(path) } }
    func remove(_ path: String) { lock.withLock { _ = paths.remove(path) } }
    func removeAll() {
        for path in lock.withLock({ paths }) { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// The `trail` executable built beside this test bundle (`Tools/test` builds it first).
public func trailBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["TRAIL_BINARY"] { return path }
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("trail").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    let build = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/trail").path
    guard FileManager.default.isExecutableFile(atPath: build) else {
        throw MissingBinary()
    }
    return build
}

public struct MissingBinary: Error, CustomStringConvertible {
    public var description: String { "cannot find the trail executable; run `swift build` first or set TRAIL_BINARY" }
}

/// The `trail` children still running, by PID: killed when the test process
/// exits, so that a test that failed before its child was stopped (its
/// `defer { Task { … stop } }` had no time to run) leaves no relay behind.
/// A PID is here only while its child is unreaped, so it cannot be reused.
private final class RunningChildren: @unchecked Sendable {
    private let lock = NSLock()
    private var pids = Set<pid_t>()

    static let shared: RunningChildren = {
        atexit { RunningChildren.shared.killAll() }
        return RunningChildren()
    }()

    func insert(_ pid: pid_t) { lock.withLock { _ = pids.insert(pid) } }
    func remove(_ pid: pid_t) { lock.withLock { _ = pids.remove(pid) } }
    func killAll() { for pid in lock.withLock({ pids }) { kill(pid, SIGKILL) } }
}

/// A long-running `trail` command (`peer`, `serve`) as a child process,
/// stopped by a signal this test sends to it alone.
public final class TrailProcess: Sendable {
    private let stop: AsyncStream<Signal>.Continuation
    private let task: Task<TerminationStatus?, any Error>
    /// The line announcing where it listens ("… listening on …"), when it printed one.
    public let announcement: String?

    /// Starts `trail ARGUMENTS…`; with `waitForListening`, returns once the
    /// process printed its "listening on" line (nil if it exited first).
    public init(_ arguments: [String], waitForListening: Bool, environment: [String: String] = [:]) async throws {
        let binary = try trailBinary()
        let (stopStream, stop) = AsyncStream<Signal>.makeStream()
        let (lines, lineSink) = AsyncStream<String>.makeStream()
        self.stop = stop
        var overrides = [Environment.Key: String?]()
        for (key, value) in environment { overrides[Environment.Key(stringLiteral: key)] = value }
        task = Task {
            let result = try await Subprocess.run(
                .path(FilePath(binary)), arguments: Arguments(arguments), environment: .inherit.updating(overrides),
                input: .none, output: .sequence, error: .discarded
            ) { execution in
                let pid = execution.processIdentifier.value
                RunningChildren.shared.insert(pid)
                defer { RunningChildren.shared.remove(pid) }
                let reader = Task {
                    for try await line in execution.standardOutput.strings() where line.contains("listening on ") {
                        lineSink.yield(line.trimmingCharacters(in: .whitespacesAndNewlines))
                    }
                    lineSink.finish()
                }
                for await signal in stopStream {
                    try? execution.send(signal: signal)
                    break
                }
                _ = try? await reader.value
            }
            lineSink.finish()
            return result.terminationStatus
        }
        if waitForListening {
            var found: String?
            for await line in lines {
                found = line
                break
            }
            announcement = found
        } else {
            announcement = nil
        }
    }

    /// The port after the last colon of the announcement (`trail peer`'s listener).
    public var port: Int? {
        guard let announcement, let colon = announcement.lastIndex(of: ":") else { return nil }
        return Int(announcement[announcement.index(after: colon)...].prefix { $0.isNumber })
    }

    /// The client API's base URL (`trail serve`), http or https.
    public var url: String? {
        guard let announcement, let start = announcement.range(of: "https://") ?? announcement.range(of: "http://") else { return nil }
        return String(announcement[start.lowerBound...].prefix { !$0.isWhitespace })
    }

    /// The peer listener's port (`trail serve … peers on HOST:PORT`).
    public var peerPort: Int? {
        guard let announcement, let range = announcement.range(of: "peers on ") else { return nil }
        let address = announcement[range.upperBound...]
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...].prefix { $0.isNumber })
    }

    /// Sends `signal` and waits for the process to exit; returns how it ended.
    @discardableResult
    public func signal(_ signal: Signal) async -> TerminationStatus? {
        stop.yield(signal)
        return (try? await task.value) ?? nil
    }
}

/// Runs the `trail` executable as a user would and returns (exit code, stdout, stderr).
public func runTrail(_ arguments: [String], input: String? = nil, environment: [String: String] = [:]) async throws -> (Int32, String, String) {
    let result = try await Subprocess.run(
        .path(FilePath(try trailBinary())), arguments: Arguments(arguments),
        environment: .inherit.updating(environment.reduce(into: [Environment.Key: String?]()) { $0[Environment.Key(stringLiteral: $1.key)] = $1.value }),
        input: .string(input ?? ""), output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
    let code: Int32
    switch result.terminationStatus {
    case .exited(let status): code = status
    case .signaled(let signal): code = 128 + signal
    }
    return (code, result.standardOutput, result.standardError)
}

/// Runs any program and returns (exit code, stdout, stderr).
public func runCommand(_ path: String, _ arguments: [String]) async throws -> (Int32, String, String) {
    let result = try await Subprocess.run(
        .path(FilePath(path)), arguments: Arguments(arguments),
        input: .none, output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
    let code: Int32
    switch result.terminationStatus {
    case .exited(let status): code = status
    case .signaled(let signal): code = 128 + signal
    }
    return (code, result.standardOutput ?? "", result.standardError ?? "")
}
