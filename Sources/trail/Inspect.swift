import ArgumentParser
import Foundation
import TrailCore
import TrailStore

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the data directory: relay identity, shards, namespaces, vectors, pending events, trim points.")

    @OptionGroup var store: StoreOptions

    @Option(help: "Only namespaces under this prefix.")
    var prefix = ""

    @Flag(help: "Also check every invariant of each namespace (reads every event).")
    var verify = false

    @Flag(help: "Print JSON lines instead of text.")
    var json = false

    func run() async throws {
        let store = try self.store.openForReading()
        defer { store.close() }
        let namespaces = try store.namespaces(prefix: prefix)
        if json {
            print(JSONLine.encode(["relay": store.relayID.hex, "shards": store.shardCount, "directory": store.directory, "namespaces": namespaces.count]))
        } else {
            print("relay      \(store.relayID.hex)")
            print("directory  \(store.directory)")
            print("shards     \(store.shardCount)")
            print("namespaces \(namespaces.count)")
        }
        var violationCount = 0
        for info in namespaces {
            let violations = verify ? try store.check(info.namespace) : []
            violationCount += violations.count
            let vector = info.vector.origins.map { "\($0.hex.prefix(16)):\(info.vector[$0])" }
            if json {
                var object: [String: Any] = [
                    "namespace": info.namespace.name, "shard": info.shard, "events": info.eventCount, "bytes": info.byteCount,
                    "lastPosition": info.lastPosition, "trimmedThrough": info.trimmedThrough, "pending": info.pendingCount,
                    "vector": Dictionary(uniqueKeysWithValues: info.vector.origins.map { ($0.hex, info.vector[$0]) }),
                    "retention": info.retention.description,
                ]
                if verify { object["violations"] = violations.map(\.description) }
                print(JSONLine.encode(object))
            } else {
                let first = info.firstPosition.map(String.init) ?? "-"
                print("""

                    \(info.namespace)
                      shard \(info.shard), \(info.eventCount) events, \(info.byteCount) bytes, positions \(first)...\(info.lastPosition)
                      trimmed through \(info.trimmedThrough), retention \(info.retention), pending \(info.pendingCount)
                      vector \(vector.joined(separator: " "))
                    """)
                for event in try store.pending(in: info.namespace) {
                    print("  pending \(event.id.short) waits on parents \(event.parents.map(\.short).joined(separator: ","))")
                }
                if verify { print(violations.isEmpty ? "  verified: every invariant holds" : violations.map { "  VIOLATION \($0)" }.joined(separator: "\n")) }
            }
        }
        if violationCount > 0 { throw ExitCode(2) }
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an Ed25519 signing key: writes the private seed to a file (mode 0600), prints the public key.")

    @Option(help: "File to write the private key to.")
    var out: String

    @Flag(help: "Replace the file if it exists.")
    var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: out), !force {
            throw ValidationError("--out \(out) exists; pass --force to replace it")
        }
        var generator = SystemRandomNumberGenerator()
        let key = SigningKey.generate(using: &generator)
        guard FileManager.default.createFile(atPath: out, contents: Data((Hex.encode(key.seed) + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write --out \(out)")
        }
        print(key.publicKey.hex)
    }
}
