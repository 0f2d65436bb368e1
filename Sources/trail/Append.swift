import ArgumentParser
import Foundation
import TrailCore
import TrailStore

struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append one event to a namespace.",
        discussion: """
            The payload comes from the argument, --file, or standard input (--stdin).
            Prints the event's id, position, origin and originSeq once it is durable.
            """)

    @OptionGroup var store: StoreOptions

    @Argument(help: "Namespace, e.g. auction/task-7.")
    var namespace: String

    @Argument(help: "Payload text.")
    var payload: String?

    @Option(help: "Read the payload from this file.")
    var file: String?

    @Flag(help: "Read the payload from standard input.")
    var stdin = false

    @Option(name: .customLong("type"), help: "Event type.")
    var eventType = "message"

    @Option(name: .customLong("parent"), help: "Id (64 hex digits) of an event this one follows; repeat for several.")
    var parents: [String] = []

    @Option(help: "Signing key file (from `trail keygen`): sets the author and signs the event.")
    var key: String?

    @Flag(help: "Print the result as one JSON line.")
    var json = false

    func validate() throws {
        let sources = [payload != nil, file != nil, stdin].filter { $0 }.count
        guard sources == 1 else {
            throw ValidationError("give the payload exactly one way: as an argument, --file PATH, or --stdin (got \(sources))")
        }
    }

    func run() async throws {
        let namespace = try parseNamespace(self.namespace)
        let bytes: [UInt8]
        if let payload {
            bytes = Array(payload.utf8)
        } else if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read --file \(file)") }
            bytes = Array(data)
        } else {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        }
        let parentIDs = try parents.map { text in
            do { return try EventID(hex: text) } catch { throw ValidationError("bad --parent: \(error)") }
        }
        let signingKey = try key.map(loadSigningKey)
        let store = try self.store.open()
        defer { store.close() }
        var event: Event
        do {
            event = try Event(
                namespace: namespace, author: signingKey?.publicKey, timestamp: store.now(), parents: parentIDs,
                type: eventType, payload: bytes, limits: store.configuration.limits)
        } catch {
            throw ValidationError("cannot build the event: \(error)")
        }
        if let signingKey { event = event.signed(by: signingKey) }
        let result: AppendResult
        do { result = try await store.append(event) } catch let error as StoreError { throw CLIError("\(error)") }
        print(json ? JSONLine.result(result) : TextLine.result(result))
    }
}

func loadSigningKey(_ path: String) throws -> SigningKey {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ValidationError("cannot read --key \(path)")
    }
    guard let seed = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)), seed.count == 32 else {
        throw ValidationError("--key \(path) does not hold a 64-digit hex Ed25519 seed (make one with `trail keygen`)")
    }
    return try SigningKey(seed: seed)
}
