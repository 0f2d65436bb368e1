public import ArgumentParser
import Foundation
import Logging
import TrailCore
import TrailStore

@main
struct Trail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trail",
        abstract: "Trail: the causal event log behind agent relays.",
        discussion: """
            Commands work on a data directory (--data, or $TRAIL_DATA, default ./trail-data).
            One process owns a data directory at a time; read, tail and inspect can
            run beside it (they open RocksDB as a secondary).
            """,
        subcommands: [
            Append.self, Read.self, Tail.self, Inspect.self, Retain.self, Keygen.self, Identity.self, Peer.self, Serve.self,
            ReplayCommand.self, VerifyCommand.self, DiffCommand.self, GraphCommand.self, ExportCommand.self, ImportCommand.self,
            ExploreCommand.self, Cluster.self, Demo.self, CrashWriter.self, Simulate.self,
        ])
}

/// Options shared by every command that opens a data directory.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Data directory (default: $TRAIL_DATA or ./trail-data).")
    var directory: String?

    @Option(help: "When an append is acknowledged: buffered (survives a process crash) or synced (survives power loss).")
    var durability: Durability = .buffered

    @Flag(name: .shortAndLong, help: "Log what the store does to stderr.")
    var verbose = false

    var path: String {
        directory ?? ProcessInfo.processInfo.environment["TRAIL_DATA"] ?? "trail-data"
    }

    func configuration() -> StoreConfiguration {
        var logger = Logger(label: "trail")
        logger.logLevel = verbose ? .debug : .warning
        return StoreConfiguration(durability: durability, logger: logger)
    }

    func open() throws -> Store {
        do {
            return try Store(directory: path, configuration: configuration())
        } catch let error as StoreError {
            throw CLIError("cannot open data directory \(path): \(error)")
        }
    }

    func openForReading() throws -> Store {
        do {
            return try Store(directory: path, configuration: configuration(), mode: .secondary)
        } catch let error as StoreError {
            throw CLIError("cannot read data directory \(path): \(error)")
        }
    }
}

extension Durability: ExpressibleByArgument {}

/// Writes a line to standard output at once (unbuffered), for followers and tests reading a pipe.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Parses a namespace argument, naming the argument when it is bad.
func parseNamespace(_ text: String) throws -> Namespace {
    do { return try Namespace(text) } catch { throw ValidationError("bad namespace argument: \(error)") }
}

func parseCursor(_ text: String?) throws -> Cursor? {
    guard let text else { return nil }
    do { return try Cursor(text: text) } catch { throw ValidationError("bad --after cursor: \(error)") }
}

/// A failure while running a command (as opposed to a bad argument): printed
/// as `Error: …` without the usage text, exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
