import ArgumentParser
import Foundation
import TrailCore
import TrailStore

struct Retain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set how much of a namespace's log to keep, and trim to it now.",
        discussion: """
            Limits apply together: events beyond any of them are trimmed, oldest first. \
            Readers of trimmed positions get a clear "trimmed" error. With no limit, keeps everything.
            """)

    @OptionGroup var store: StoreOptions

    @Argument(help: "Namespace.")
    var namespace: String

    @Option(help: "Keep events younger than this many seconds (by their own timestamps).")
    var maxAgeSeconds: UInt64?

    @Option(help: "Keep at most this many events.")
    var maxCount: UInt64?

    @Option(help: "Keep at most this many bytes of events.")
    var maxBytes: UInt64?

    func validate() throws {
        for (flag, value) in [("--max-age-seconds", maxAgeSeconds), ("--max-count", maxCount), ("--max-bytes", maxBytes)] {
            if let value, value == 0 { throw ValidationError("\(flag) is 0; give a positive limit or leave the flag out") }
        }
    }

    func run() async throws {
        let namespace = try parseNamespace(self.namespace)
        let retention = Retention(
            ageMillisecondsMax: maxAgeSeconds.map { $0 * 1000 }, eventCountMax: maxCount, byteCountMax: maxBytes)
        let store = try self.store.open()
        defer { store.close() }
        do {
            try await store.setRetention(retention, for: namespace)
            if store.vector(of: namespace).total > 0 { try await store.trim(namespace) }
        } catch let error as StoreError {
            throw CLIError("\(error)")
        }
        let info = try store.info(namespace)
        print("\(namespace): retention \(retention); trimmed through \(info?.trimmedThrough ?? 0), \(info?.eventCount ?? 0) events kept")
    }
}
