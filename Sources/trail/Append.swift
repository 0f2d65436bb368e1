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

    @Argument(help: "Namespace, e.g. auction/task-7 (not with --encoded: events name their own).")
    var namespace: String?

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

    @Flag(help: """
        Read already-encoded events instead of a payload: each is its canonical bytes         (Docs/FORMAT.md) preceded by a 4-byte big-endian length, from --file or --stdin,         until end of input. One result line is printed per event as soon as its batch is durable.
        """)
    var encoded = false

    func validate() throws {
        if encoded {
            guard namespace == nil, payload == nil, (file != nil) != stdin else {
                throw ValidationError("--encoded reads events from exactly one of --file PATH or --stdin, and takes no payload argument")
            }
            guard parents.isEmpty, key == nil else {
                throw ValidationError("--encoded events carry their own parents and signatures; drop --parent and --key")
            }
            return
        }
        guard namespace != nil else { throw ValidationError("missing the namespace argument, e.g. `trail append chat/room-1 \"hello\"`") }
        let sources = [payload != nil, file != nil, stdin].filter { $0 }.count
        guard sources == 1 else {
            throw ValidationError("give the payload exactly one way: as an argument, --file PATH, or --stdin (got \(sources))")
        }
    }

    func run() async throws {
        if encoded { return try await appendEncoded() }
        let namespace = try parseNamespace(self.namespace ?? "")
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

extension Append {
    /// Frames of at most this many bytes are accepted: the format's payload
    /// ceiling plus room for every other field.
    static let frameByteCountMax = EventLimits.payloadBytesCeiling + 64 * 1024
    /// Events per append call: one group commit's worth for a steady stream.
    static let batchEventCountMax = 1000

    func appendEncoded() async throws {
        let input = try file.map { path in
            guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read --file \(path)") }
            return handle
        } ?? FileHandle.standardInput
        let store = try self.store.open()
        defer { store.close() }
        var buffer = [UInt8]()
        var consumed = 0
        var frame = 0
        var atEnd = false
        while !atEnd {
            let chunk = input.availableData
            if chunk.isEmpty { atEnd = true } else { buffer.append(contentsOf: chunk) }
            var batch = [Event]()
            while buffer.count - consumed >= 4, batch.count < Self.batchEventCountMax {
                let length = buffer[consumed..<consumed + 4].reduce(0) { $0 << 8 | Int($1) }
                guard length <= Self.frameByteCountMax else {
                    throw CLIError("event \(frame) (input byte \(consumed)) declares \(length) bytes; limit is \(Self.frameByteCountMax); nothing after it was read")
                }
                guard buffer.count - consumed >= 4 + length else { break }
                let bytes = Array(buffer[consumed + 4..<consumed + 4 + length])
                do {
                    batch.append(try Event(decoding: bytes, limits: store.configuration.limits))
                } catch {
                    try await flush(batch, store)
                    throw CLIError("event \(frame) (input byte \(consumed)): \(error); the events before it were appended")
                }
                consumed += 4 + length
                frame += 1
            }
            try await flush(batch, store)
            if consumed > 1 << 20 {
                buffer.removeFirst(consumed)
                consumed = 0
            }
        }
        guard consumed == buffer.count else {
            throw CLIError("input ends inside event \(frame) (input byte \(consumed)): \(buffer.count - consumed) bytes of an incomplete frame")
        }
    }

    private func flush(_ batch: [Event], _ store: Store) async throws {
        guard !batch.isEmpty else { return }
        let results: [AppendResult]
        do { results = try await store.append(contentsOf: batch) } catch let error as StoreError { throw CLIError("\(error)") }
        emit(results.map { json ? JSONLine.result($0) : TextLine.result($0) }.joined(separator: "\n"))
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
