public import ArgumentParser
import Foundation
import TrailCore
import TrailReplay
import TrailStore

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a namespace's events in causal order, as fast as possible or at the recorded pace.",
        discussion: """
            Examples:
              trail replay auction/task-7 --from http://127.0.0.1:7400
              trail replay auction/task-7 --from exports/ --type bid --speed 10
              trail replay auction/task-7 --exec 'python3 fold.py'
            """)

    @Argument(help: "Namespace to replay.")
    var namespace: String

    @OptionGroup var source: SourceOptions
    @OptionGroup var selection: SelectionOptions

    @Option(help: "Replay at this multiple of the recorded pace (1: as recorded; 10: ten times faster). Default: as fast as possible.")
    var speed: Double?

    @Option(help: "Pipe each event to this command's standard input as one JSON line (run with /bin/sh -c); its exit status becomes trail's.")
    var exec: String?

    @Flag(help: "Print JSON lines (the client API's event objects) instead of text.")
    var json = false

    func validate() throws {
        if let speed, !(speed > 0 && speed.isFinite) { throw ValidationError("--speed is \(speed); it must be a positive number") }
    }

    func run() async throws {
        let namespace = try parseNamespace(namespace)
        let log = try await source.open()
        var replay = Replay(source: log, namespace: namespace)
        replay.selection = try selection.selection()
        replay.speed = speed
        guard let exec else {
            do {
                try await replay.run { stored in emit(json ? eventJSONLine(stored) : TextLine.event(stored)) }
            } catch let error as ReplayError { await log.close(); throw CLIError("\(error)") }
            await log.close()
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", exec]
        let input = Pipe()
        process.standardInput = input
        do { try process.run() } catch { throw CLIError("cannot run --exec \(exec): \(error)") }
        // A command that exits early closes its end: stop writing, keep its status.
        signal(SIGPIPE, SIG_IGN)
        do {
            try await replay.run { stored in
                try input.fileHandleForWriting.write(contentsOf: jsonLines([stored]))
            }
        } catch let error as ReplayError {
            await log.close()
            throw CLIError("\(error)")
        } catch {}
        try? input.fileHandleForWriting.close()
        await log.close()
        process.waitUntilExit()
        if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every invariant of a log and name each violation with its position and the rule broken.",
        discussion: """
            Rules: dense positions, id = hash, signatures, parents before children, origin
            predecessor before successor, vector = held set, counts, trim point honoured,
            segment checksums; for a data directory also its indexes and pending events.
            Exit status: 0 sound, 2 violations found, 1 the source could not be read.
            """)

    @OptionGroup var source: SourceOptions

    @Option(help: "Only namespaces under this prefix.")
    var prefix = ""

    @Option(help: "Report at most this many violations per namespace.")
    var violationsMax = 100

    @Flag(help: "Print JSON lines instead of text.")
    var json = false

    func run() async throws {
        let log = try await source.open(tolerant: true)
        let total = try await log.namespaces(prefix: prefix).reduce(UInt64(0)) { $0 + $1.eventCount }
        let progress = ProgressLine("verify", total: total)
        var verifier = Verifier(source: log)
        verifier.violationCountMax = violationsMax
        let report: VerificationReport
        do {
            report = try await verifier.run(prefix: prefix) { progress.update($0) }
        } catch {
            progress.finish()
            await log.close()
            throw CLIError("\(error)")
        }
        progress.finish()
        await log.close()
        for damage in report.damaged {
            print(json ? JSONLine.encode(["rule": Violation.Rule.segment.rawValue, "file": damage.file, "detail": damage.reason])
                       : "VIOLATION \(Violation.Rule.segment.rawValue): \(damage)")
        }
        for result in report.namespaces {
            if json {
                print(JSONLine.encode(["namespace": result.namespace.name, "events": result.eventCount, "sound": result.isSound]))
                for violation in result.violations {
                    var object: [String: Any] = ["namespace": violation.namespace.name, "rule": violation.rule.rawValue, "detail": violation.detail]
                    if let position = violation.position { object["position"] = position }
                    print(JSONLine.encode(object))
                }
            } else if result.isSound {
                print("\(result.namespace): \(result.eventCount) events, every invariant holds")
            } else {
                print("\(result.namespace): \(result.eventCount) events, \(result.violations.count) violations")
                for violation in result.violations { print("  VIOLATION \(violation)") }
            }
        }
        if !json {
            print(report.isSound ? "verified \(log.name): sound" : "verified \(log.name): \(report.violationCount) violations")
        }
        if !report.isSound { throw ExitCode(2) }
    }
}

struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two logs: vectors, then exactly the events one holds and the other lacks, and pairs ordered differently.",
        discussion: """
            A and B are each a relay URL, a data directory, segment files or a .jsonl export.
            Concurrent events may sit in different orders on different relays: that is listed,
            and is not a difference. Exit status: 0 the same events (converged), 2 events
            missing on one side, conflicting, or ordered against causality; 1 a log could not be read.
            """)

    @Argument(help: "The first log.")
    var a: String

    @Argument(help: "The second log.")
    var b: String

    @OptionGroup var source: SourceOptions

    @Option(help: "Only namespaces under this prefix.")
    var prefix = ""

    @Flag(help: "Print JSON lines instead of text.")
    var json = false

    func run() async throws {
        let logA = try await source.openLog(a)
        let logB: any LogSource
        do { logB = try await source.openLog(b) } catch { await logA.close(); throw error }
        let differences: [NamespaceDifference]
        do { differences = try await Diff(logA, logB).run(prefix: prefix) } catch {
            await logA.close()
            await logB.close()
            throw CLIError("\(error)")
        }
        await logA.close()
        await logB.close()
        for difference in differences { json ? printJSON(difference) : printText(difference) }
        let converged = differences.allSatisfy(\.isConverged)
        let reordered = differences.reduce(0) { $0 + $1.disagreements.count }
        if !json {
            if !converged {
                print("A and B differ")
            } else if reordered > 0 {
                print("A and B hold the same events; they order \(reordered) pairs of concurrent events differently")
            } else {
                print("A and B hold the same events in the same order")
            }
        }
        if !converged { throw ExitCode(2) }
    }

    func order(_ order: VersionVector.Order) -> String {
        switch order {
        case .equal: "equal"
        case .before: "A is behind B"
        case .after: "A is ahead of B"
        case .concurrent: "A and B each hold events the other lacks"
        }
    }

    func printText(_ difference: NamespaceDifference) {
        print("\(difference.namespace): vectors \(order(difference.vectorOrder)); \(difference.commonCount) events in common")
        for (label, events) in [("only in A", difference.onlyInA), ("only in B", difference.onlyInB)] where !events.isEmpty {
            let byOrigin = Dictionary(grouping: events, by: \.origin)
            for origin in byOrigin.keys.sorted() {
                let seqs = byOrigin[origin]!.map(\.originSeq).sorted()
                print("  \(label): origin \(origin.hex.prefix(16)) seq \(ranges(seqs)) (\(seqs.count) events)")
                for stored in byOrigin[origin]! { print("    \(TextLine.event(stored))") }
            }
        }
        for conflict in difference.conflicts {
            print("  CONFLICT origin \(conflict.origin.hex.prefix(16)) seq \(conflict.originSeq): A holds \(conflict.inA.short), B holds \(conflict.inB.short)")
        }
        for pair in difference.disagreements {
            print("  order: A has \(pair.first.id.short) (@\(pair.first.position)) before \(pair.second.id.short) (@\(pair.second.position)); "
                + "B has them at @\(pair.firstInB) and @\(pair.secondInB)" + (pair.concurrent ? " (concurrent)" : " (CAUSALLY ORDERED: a log breaks causality)"))
        }
    }

    func printJSON(_ difference: NamespaceDifference) {
        func vector(_ v: VersionVector) -> [String: UInt64] { Dictionary(uniqueKeysWithValues: v.origins.map { ($0.hex, v[$0]) }) }
        print(JSONLine.encode([
            "namespace": difference.namespace.name, "vectorA": vector(difference.vectorA), "vectorB": vector(difference.vectorB),
            "common": difference.commonCount, "onlyInA": difference.onlyInA.count, "onlyInB": difference.onlyInB.count,
            "conflicts": difference.conflicts.count, "orderDisagreements": difference.disagreements.count,
        ]))
        for (side, events) in [("A", difference.onlyInA), ("B", difference.onlyInB)] {
            for stored in events {
                print(JSONLine.encode(["namespace": difference.namespace.name, "onlyIn": side, "id": stored.id.hex,
                                       "origin": stored.origin.hex, "originSeq": stored.originSeq, "position": stored.position]))
            }
        }
        for conflict in difference.conflicts {
            print(JSONLine.encode(["namespace": difference.namespace.name, "conflict": true, "origin": conflict.origin.hex,
                                   "originSeq": conflict.originSeq, "idA": conflict.inA.hex, "idB": conflict.inB.hex]))
        }
        for pair in difference.disagreements {
            print(JSONLine.encode(["namespace": difference.namespace.name, "orderDisagreement": [pair.first.id.hex, pair.second.id.hex],
                                   "positionsA": [pair.first.position, pair.second.position], "positionsB": [pair.firstInB, pair.secondInB],
                                   "concurrent": pair.concurrent]))
        }
    }

    func ranges(_ sorted: [UInt64]) -> String {
        var parts = [String]()
        var start = sorted.first ?? 0, end = start
        for seq in sorted.dropFirst() {
            if seq == end + 1 { end = seq; continue }
            parts.append(start == end ? "\(start)" : "\(start)...\(end)")
            start = seq; end = seq
        }
        if !sorted.isEmpty { parts.append(start == end ? "\(start)" : "\(start)...\(end)") }
        return parts.joined(separator: ",")
    }
}

struct GraphCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Draw the happens-before graph of a window of events as Graphviz DOT (SVG or PNG when `dot` is installed).",
        discussion: """
            Events at the same causal depth share a row: no edge orders them, they are concurrent.
            Runs of same-author, same-type events collapse into one box unless --no-collapse.
            Examples:
              trail graph doc/design-42 --from-position 100 --limit 50 > window.dot
              trail graph doc/design-42 --out window.svg
            """)

    @Argument(help: "Namespace to draw.")
    var namespace: String

    @OptionGroup var source: SourceOptions
    @OptionGroup var selection: SelectionOptions

    @Option(help: "At most this many events.")
    var limit = 200

    @Flag(help: "Draw every event, even in long runs.")
    var noCollapse = false

    @Option(help: "Write here: .dot, or .svg/.png rendered with Graphviz `dot`. Default: DOT on standard output.")
    var out: String?

    @Flag(help: "Print the graph as JSON lines instead of DOT: each event with its parents in the window and its causal depth.")
    var json = false

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit is \(limit); it must be within 1...100000") }
        if let out, !([".dot", ".gv", ".svg", ".png"].contains { out.hasSuffix($0) }) {
            throw ValidationError("--out \(out): name a .dot, .svg or .png file")
        }
    }

    func run() async throws {
        let namespace = try parseNamespace(namespace)
        let log = try await source.open()
        let events: [StoredEvent]
        do { events = try await Explorer.window(of: log, namespace: namespace, selection: try selection.selection(), limit: limit) } catch {
            await log.close()
            throw CLIError("\(error)")
        }
        await log.close()
        if json {
            for node in Graph(events: events).nodes {
                var object: [String: Any] = ["id": node.event.id.hex, "position": node.event.position, "type": node.event.event.type,
                                             "parents": node.parents.map(\.hex), "depth": node.depth]
                if let author = node.event.event.author { object["author"] = author.hex }
                print(JSONLine.encode(object))
            }
            return
        }
        var graph = Graph(events: events)
        graph.collapse = !noCollapse
        let dot = graph.dot(title: namespace.name)
        guard let out else {
            print(dot, terminator: "")
            return
        }
        if out.hasSuffix(".dot") || out.hasSuffix(".gv") {
            try Data(dot.utf8).write(to: URL(fileURLWithPath: out))
        } else {
            let format = out.hasSuffix(".svg") ? "svg" : "png"
            guard let dotPath = ["/usr/bin/dot", "/usr/local/bin/dot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                let fallback = out + ".dot"
                try Data(dot.utf8).write(to: URL(fileURLWithPath: fallback))
                throw CLIError("Graphviz `dot` is not installed (apt-get install graphviz); wrote the DOT text to \(fallback)")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: dotPath)
            process.arguments = ["-T\(format)", "-o", out]
            let input = Pipe()
            process.standardInput = input
            try process.run()
            try input.fileHandleForWriting.write(contentsOf: Data(dot.utf8))
            try input.fileHandleForWriting.close()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw CLIError("dot -T\(format) failed with status \(process.terminationStatus)") }
        }
        FileHandle.standardError.write(Data("wrote \(events.count) events to \(out)\n".utf8))
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write logs as segment files (the replication format) or JSON lines.",
        discussion: """
            Examples:
              trail export --from trail-data --out backup/            # segments, one folder per namespace
              trail export --from http://127.0.0.1:7400 --prefix auction/ --out auction.jsonl
            """)

    @OptionGroup var source: SourceOptions
    @OptionGroup var selection: SelectionOptions

    @Option(help: "Only namespaces under this prefix.")
    var prefix = ""

    @Option(help: "A directory for segments, or a .jsonl file.")
    var out: String

    @Option(help: "segments or jsonl (default: jsonl when --out ends in .jsonl).")
    var format: Exporter.Format?

    @Option(help: "Events per segment file.")
    var segmentEvents = 10_000

    @Flag(help: "Print the summary as one JSON line.")
    var json = false

    func validate() throws {
        guard (1...1_000_000).contains(segmentEvents) else { throw ValidationError("--segment-events is \(segmentEvents); it must be within 1...1000000") }
    }

    func run() async throws {
        let log = try await source.open()
        var exporter = Exporter(source: log)
        exporter.selection = try selection.selection()
        exporter.segmentEventCountMax = segmentEvents
        let format = self.format ?? (out.hasSuffix(".jsonl") ? .jsonl : .segments)
        let total = try await log.namespaces(prefix: prefix).reduce(UInt64(0)) { $0 + $1.eventCount }
        let progress = ProgressLine("export", total: total)
        let started = Date()
        let summary: Exporter.Summary
        do { summary = try await exporter.run(prefix: prefix, format: format, to: out) { progress.update($0) } } catch {
            progress.finish()
            await log.close()
            throw CLIError("\(error)")
        }
        progress.finish()
        await log.close()
        let seconds = max(Date().timeIntervalSince(started), 0.001)
        if json {
            print(JSONLine.encode(["out": out, "events": summary.events, "namespaces": summary.namespaces, "files": summary.files,
                                   "aliases": summary.aliases, "bytes": summary.bytes, "eventsPerSecond": Int(Double(summary.events) / seconds)]))
        } else {
            let aliases = summary.aliases == 0 ? "" : " and \(summary.aliases) aliases"
            print("exported \(summary.events) events\(aliases) of \(summary.namespaces) namespaces to \(out): \(summary.files) files, \(summary.bytes) bytes, \(Int(Double(summary.events) / seconds)) events/s")
        }
    }
}

extension Exporter.Format: ExpressibleByArgument {}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Apply logs (segment files, JSON lines, another data directory or a relay) to a data directory, through the replication path.",
        discussion: """
            Every event's id is its hash, signatures are verified, and each event waits in pending
            until its parents and origin predecessor are held. Importing twice changes nothing.
            The data directory must not be in use by `trail serve`.
            """)

    @Argument(help: "What to import: segment files or directories, .jsonl files, data directories or relay URLs.")
    var sources: [String]

    @OptionGroup var store: StoreOptions
    @OptionGroup var source: SourceOptions

    @Option(help: "Only namespaces under this prefix.")
    var prefix = ""

    @Flag(help: "Print the summary as one JSON line.")
    var json = false

    func run() async throws {
        let store = try self.store.open()
        defer { store.close() }
        let started = Date()
        var total = Importer.Summary()
        for spec in sources {
            let log = try await source.openLog(spec)
            let progress = ProgressLine("import", total: try await log.namespaces(prefix: prefix).reduce(UInt64(0)) { $0 + $1.eventCount })
            do {
                let summary = try await Importer(source: log, into: store).run(prefix: prefix) { progress.update($0) }
                total.appended += summary.appended
                total.duplicates += summary.duplicates
                total.pending += summary.pending
                total.conflicts += summary.conflicts
                total.trimmed += summary.trimmed
            } catch {
                progress.finish()
                await log.close()
                throw CLIError("\(spec): \(error)")
            }
            progress.finish()
            await log.close()
        }
        let waiting = try store.namespaces(prefix: prefix).reduce(0) { $0 + $1.pendingCount }
        let seconds = max(Date().timeIntervalSince(started), 0.001)
        if json {
            print(JSONLine.encode(["data": store.directory, "events": total.total, "appended": total.appended, "duplicates": total.duplicates,
                                   "pending": waiting, "conflicts": total.conflicts, "trimmed": total.trimmed,
                                   "eventsPerSecond": Int(Double(total.total) / seconds)]))
        } else {
            print("imported \(total.total) events into \(store.directory): \(total.appended) appended, \(total.duplicates) already held, "
            + "\(waiting) pending (waiting for parents), \(total.conflicts) conflicts, \(total.trimmed) trimmed; \(Int(Double(total.total) / seconds)) events/s")
        }
        if total.conflicts > 0 { throw ExitCode(2) }
    }
}

struct ExploreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "Feed a command other legal causal orders of a namespace's events; report the smallest pair of concurrent events whose order changes its output.",
        discussion: """
            The command (run with /bin/sh -c) reads the events as JSON lines on standard input and
            prints its outcome (for an auction: the winner). Orders tried: swaps of concurrent pairs,
            closest first, then random linear extensions of happens-before from --seed. The same
            seed repeats the same search. Exit status: 0 no order changed the outcome, 2 one did.
            Example:
              trail explore auction/task-7 --from Examples/auction/relay-a --type task --type bid --exec Examples/auction/winner.sh
            """)

    @Argument(help: "Namespace to explore.")
    var namespace: String

    @Option(help: "The fold under test: reads JSON lines on stdin, prints its outcome.")
    var exec: String

    @OptionGroup var source: SourceOptions
    @OptionGroup var selection: SelectionOptions

    @Option(help: "At most this many orders.")
    var orders = 200

    @Option(help: "Seed of the random orders (default: drawn and printed).")
    var seed: UInt64?

    @Option(help: "Stop after this many seconds.")
    var timeLimit = 300

    @Option(help: "At most this many events (a window of the log).")
    var limit = 2000

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard orders >= 1 else { throw ValidationError("--orders is \(orders); it must be at least 1") }
        guard timeLimit >= 1 else { throw ValidationError("--time-limit is \(timeLimit); it must be at least 1 second") }
        guard (2...20_000).contains(limit) else { throw ValidationError("--limit is \(limit); it must be within 2...20000") }
    }

    func run() async throws {
        let namespace = try parseNamespace(namespace)
        let log = try await source.open()
        let events: [StoredEvent]
        do { events = try await Explorer.window(of: log, namespace: namespace, selection: try selection.selection(), limit: limit) } catch {
            await log.close()
            throw CLIError("\(error)")
        }
        await log.close()
        let seed = self.seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
        var explorer = Explorer(events: events, seed: seed)
        explorer.orderCountMax = orders
        explorer.timeLimit = .seconds(timeLimit)
        let report = try await explorer.run(Explorer.commandFold(exec))
        // The command as given, with the seed that was drawn: it repeats this search exactly.
        var words = Array(CommandLine.arguments.dropFirst())
        if self.seed == nil { words += ["--seed", String(seed)] }
        let again = "trail " + words.map(shellQuoted).joined(separator: " ")
        if json {
            var object: [String: Any] = [
                "namespace": namespace.name, "seed": seed, "events": report.eventCount, "concurrentPairs": report.concurrentPairCount,
                "ordersTried": report.ordersTried, "distinctOutcomes": report.distinctOutcomes, "recordedOutcome": report.recordedOutcome,
                "timedOut": report.timedOut, "orderDependent": report.finding != nil,
            ]
            if let finding = report.finding {
                object["pair"] = [finding.first.id.hex, finding.second.id.hex]
                object["pairPositions"] = [finding.first.position, finding.second.position]
                object["changedOutcome"] = finding.changedOutcome
                object["order"] = finding.order
            }
            print(JSONLine.encode(object))
        } else {
            print("explored \(namespace): \(report.eventCount) events, \(report.concurrentPairCount) concurrent pairs, "
                + "\(report.ordersTried) orders tried, \(report.distinctOutcomes) distinct outcomes (seed \(seed))"
                + (report.timedOut ? "; stopped by the time limit" : ""))
            print("recorded order gives: \(report.recordedOutcome.trimmingCharacters(in: .newlines))")
            if let finding = report.finding {
                print("ORDER-DEPENDENT: swapping two concurrent events changes the outcome")
                print("  first:  \(TextLine.event(finding.first))")
                print("  second: \(TextLine.event(finding.second))")
                print("  with second before first: \(finding.changedOutcome.trimmingCharacters(in: .newlines))")
                print("  reproduce: \(again)")
            } else {
                print("no order tried changed the outcome")
            }
        }
        if report.finding != nil { throw ExitCode(2) }
    }
}

/// `text` as one shell word.
func shellQuoted(_ text: String) -> String {
    let plain = text.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./:=@%+,".unicodeScalars.contains($0) }
    return plain && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
