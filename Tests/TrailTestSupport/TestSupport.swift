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
        liveDirectories.insert(path)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
        liveDirectories.remove(path)
    }
}

/// What a test left behind, undone as the test process exits (`atexit`):
/// each element is handed to `undo` then, unless it was removed first.
private final class LeftAtExit<Element: Hashable & Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var elements = Set<Element>()
    private let undo: (Element) -> Void

    init(_ undo: @escaping (Element) -> Void) { self.undo = undo }

    func insert(_ element: Element) { lock.withLock { _ = elements.insert(element) } }
    func remove(_ element: Element) { lock.withLock { _ = elements.remove(element) } }
    func undoAll() { for element in lock.withLock({ elements }) { undo(element) } }
}

/// Temporary directories not yet removed, for a test whose directory outlives
/// it (held by a `defer { Task { … } }` that never ran, or a test that failed first).
private let liveDirectories: LeftAtExit<String> = {
    atexit { liveDirectories.undoAll() }
    return LeftAtExit { try? FileManager.default.removeItem(atPath: $0) }
}()

/// The `trail` children still running, by PID: killed when the test process
/// exits, so that a test that failed before its child was stopped (its
/// `defer { Task { … stop } }` had no time to run) leaves no relay behind.
/// A PID is here only while its child is unreaped, so it cannot be reused.
private let runningChildren: LeftAtExit<pid_t> = {
    atexit { runningChildren.undoAll() }
    return LeftAtExit { kill($0, SIGKILL) }
}()

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
                runningChildren.insert(pid)
                defer { runningChildren.remove(pid) }
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
