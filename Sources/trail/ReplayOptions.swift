import ArgumentParser
import Foundation
import TrailCore
import TrailReplay
import TrailStore

/// Where a replay tool reads a log from.
struct SourceOptions: ParsableArguments {
    @Option(name: .customLong("from"), help: ArgumentHelp(
        "Where the log is: a relay URL (http://HOST:PORT), a data directory, segment files (a .tseg file or a directory of them), or a .jsonl export.",
        discussion: "Default: the data directory ($TRAIL_DATA or ./trail-data).", valueName: "source"))
    var from: String?

    @Option(help: "Bearer token for a relay that requires one (default: $TRAIL_TOKEN).")
    var token: String?

    @Option(help: "PEM file of the roots that verify an https:// relay.")
    var tlsTrustRoots: String?

    var spec: String { from ?? ProcessInfo.processInfo.environment["TRAIL_DATA"] ?? "trail-data" }

    func open(tolerant: Bool = false) async throws -> any LogSource {
        try await openLog(spec, tolerant: tolerant)
    }

    func openLog(_ spec: String, tolerant: Bool = false) async throws -> any LogSource {
        do {
            return try await openSource(spec, token: token ?? ProcessInfo.processInfo.environment["TRAIL_TOKEN"],
                                        tlsTrustRoots: tlsTrustRoots, tolerant: tolerant)
        } catch let error as ReplayError {
            throw CLIError("\(error)")
        }
    }
}

/// Which events: types, authors, a time window, a position range, a cursor.
struct SelectionOptions: ParsableArguments {
    @Option(name: .customLong("type"), help: "Only events of this type; repeat for several.")
    var types: [String] = []

    @Option(name: .customLong("author"), help: "Only events by this author (hex public key); repeat for several.")
    var authors: [String] = []

    @Option(help: "Only events at or after this time (ISO 8601 such as 2026-11-27T17:00:00Z, or milliseconds since the epoch).")
    var since: String?

    @Option(help: "Only events at or before this time (as --since).")
    var until: String?

    @Option(name: .customLong("from-position"), help: "First position (default 1).")
    var firstPosition: UInt64?

    @Option(name: .customLong("to-position"), help: "Last position (default: the end).")
    var lastPosition: UInt64?

    @Option(help: "Resume after this cursor (fast or portable, as read and subscribe print them).")
    var after: String?

    func selection() throws -> EventSelection {
        var selection = EventSelection()
        selection.types = Set(types)
        selection.authors = Set(try authors.map { text in
            do { return try PublicKey(hex: text) } catch { throw ValidationError("bad --author \(text): \(error)") }
        })
        selection.sinceMilliseconds = try since.map { try Self.milliseconds($0, flag: "--since") }
        selection.untilMilliseconds = try until.map { try Self.milliseconds($0, flag: "--until") }
        if let firstPosition {
            guard firstPosition >= 1 else { throw ValidationError("--from-position is 0; positions start at 1") }
            selection.firstPosition = firstPosition
        }
        if let lastPosition { selection.lastPosition = lastPosition }
        guard selection.firstPosition <= selection.lastPosition else {
            throw ValidationError("--from-position \(selection.firstPosition) is after --to-position \(selection.lastPosition)")
        }
        selection.cursor = try parseCursor(after)
        return selection
    }

    static func milliseconds(_ text: String, flag: String) throws -> UInt64 {
        if let value = UInt64(text) { return value }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return UInt64(max(0, date.timeIntervalSince1970 * 1000)) }
        }
        throw ValidationError("bad \(flag) \(text): give ISO 8601 (2026-11-27T17:00:00Z) or milliseconds since the epoch")
    }
}

/// A progress line on standard error with rate and ETA, only when standard
/// error is a terminal; redrawn at most ten times a second.
final class ProgressLine: @unchecked Sendable {
    let label: String
    let total: UInt64?
    let enabled: Bool
    let started = Date()
    let lock = NSLock()
    var lastDrawn = Date.distantPast
    var drew = false

    init(_ label: String, total: UInt64?) {
        self.label = label
        self.total = total
        enabled = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["CI"] == nil
    }

    func update(_ done: UInt64) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastDrawn) >= 0.1 else { return }
        lastDrawn = now
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(done) / elapsed
        var line = "\r\(label) \(done)"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            line += "/\(total) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
            if rate > 0, done < total { line += " ETA \(Int(Double(total - done) / rate))s" }
        }
        line += " \(Int(rate)) events/s  "
        FileHandle.standardError.write(Data(line.utf8))
        drew = true
    }

    func finish() {
        guard enabled, drew else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

func eventJSONLine(_ stored: StoredEvent) -> String {
    String(decoding: jsonLines([stored]).dropLast(), as: UTF8.self)
}
