import ArgumentParser
import Foundation
import TrailCore
import TrailStore

struct ReadOptions: ParsableArguments {
    @Argument(help: "Namespace to read.")
    var namespace: String

    @Option(help: "Cursor to resume from (printed by an earlier read); default: the start.")
    var after: String?

    @Option(name: .customLong("type"), help: "Only events of this type; repeat for several.")
    var types: [String] = []

    @Option(name: .customLong("author"), help: "Only events by this author (hex public key); repeat for several.")
    var authors: [String] = []

    @Flag(help: "Print JSON lines instead of text.")
    var json = false

    func filter() throws -> ReadFilter {
        let keys = try authors.map { text in
            do { return try PublicKey(hex: text) } catch { throw ValidationError("bad --author \(text): \(error)") }
        }
        return ReadFilter(types: types.isEmpty ? nil : Set(types), authors: keys.isEmpty ? nil : Set(keys))
    }

    /// The namespace, cursor and filter, each refused with the flag it came from.
    func parsed() throws -> (Namespace, Cursor?, ReadFilter) {
        (try parseNamespace(namespace), try parseCursor(after), try filter())
    }

    func line(_ stored: StoredEvent) -> String { json ? JSONLine.event(stored) : TextLine.event(stored) }
}

struct Read: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a page of a namespace's log in causal order, then the cursor to resume from.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var options: ReadOptions

    @Option(help: "Events per page.")
    var limit = 100

    func validate() throws {
        guard limit >= 1 && limit <= 10_000 else { throw ValidationError("--limit is \(limit); it must be within 1...10000") }
    }

    func run() async throws {
        let (namespace, cursor, filter) = try options.parsed()
        let store = try self.store.openForReading()
        defer { store.close() }
        let page: Page
        do { page = try store.read(namespace, after: cursor, limit: limit, filter: filter) } catch let error as StoreError {
            throw CLIError("\(error)")
        }
        for stored in page.events { print(options.line(stored)) }
        if options.json {
            print(JSONLine.encode(["cursor": page.cursor.text, "portableCursor": page.portableCursor.text, "lastPosition": page.lastPosition]))
        } else {
            FileHandle.standardError.write(Data("cursor \(page.cursor.text)\nportable \(page.portableCursor.text)\n".utf8))
        }
    }
}

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a namespace's events, then follow new ones as they commit (Ctrl-C stops).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var options: ReadOptions

    @Option(help: "Stop after this many events (default: follow until interrupted).")
    var count: Int?

    @Option(help: "How often to catch up with the process that owns the data directory, in milliseconds.")
    var refreshMilliseconds = 100

    func run() async throws {
        let (namespace, cursor, filter) = try options.parsed()
        let store = try self.store.openForReading()
        defer { store.close() }
        let refresher = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(refreshMilliseconds))
                try store.refresh()
            }
        }
        defer { refresher.cancel() }
        var printed = 0
        for try await stored in store.subscribe(namespace, after: cursor, filter: filter) {
            emit(options.line(stored))
            printed += 1
            if let count, printed >= count { break }
        }
    }
}
