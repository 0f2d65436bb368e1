import Foundation
import TrailCore
import TrailStore
@_exported import TrailTestSupport

/// Tests draw from a seeded generator so a failing seed replays exactly.
typealias SeededGenerator = SplitMix64

func makeEvent(
    _ namespace: String, _ index: Int, parents: [EventID] = [], type: String = "note", timestamp: UInt64? = nil
) throws -> Event {
    try Event(
        namespace: Namespace(namespace),
        timestamp: HybridTimestamp(physicalMilliseconds: timestamp ?? 1_700_000_000_000 + UInt64(index), logical: 0),
        parents: parents, type: type, payload: Array("event \(index) of \(namespace)".utf8))
}

func relayKey(_ byte: UInt8) -> RelayID {
    try! SigningKey(seed: [UInt8](repeating: byte, count: 32)).publicKey
}

extension Store {
    /// Every event of the namespace in log order, read page by page.
    func readAll(_ namespace: String) throws -> [StoredEvent] {
        var events = [StoredEvent]()
        var cursor: Cursor?
        while true {
            let page = try read(Namespace(namespace), after: cursor, limit: 500)
            events += page.events
            cursor = page.cursor
            if page.isAtEnd { return events }
        }
    }
}
