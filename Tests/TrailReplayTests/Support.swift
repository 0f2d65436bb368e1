import Foundation
import TrailCore
import TrailReplay
import TrailStore
@_exported import TrailTestSupport

/// A task auction with a known shape, in a real data directory:
///
///     @1 task                          (origin: this relay, seq 1)
///     @2 bid alice 40  parent task     (this relay, seq 2, signed)
///     @3 bid bob 50    parent task     (this relay, seq 3, signed)
///     @4 bid carol 30  parent task     (another relay, seq 1)
///     @5 close         parents the three bids (this relay, seq 4)
///
/// The three bids are concurrent; everything else is ordered.
struct AuctionLog {
    static let namespace = try! Namespace("auction/t1")
    static let otherRelay = try! SigningKey(seed: [UInt8](repeating: 2, count: 32)).publicKey
    static let alice = try! SigningKey(seed: [UInt8](repeating: 11, count: 32))
    static let bob = try! SigningKey(seed: [UInt8](repeating: 12, count: 32))
    static let start: UInt64 = 1_790_000_000_000

    let directory: TemporaryDirectory
    let store: Store
    let task: Event, aliceBid: Event, bobBid: Event, carolBid: Event, close: Event

    var events: [Event] { [task, aliceBid, bobBid, carolBid, close] }

    init(label: String = "auction") async throws {
        directory = TemporaryDirectory(label)
        store = try Store(directory: directory.path)
        task = try Self.event("task", #"{"task":"paint the fence"}"#, at: 0)
        aliceBid = try Self.event("bid", #"{"bidder":"alice","stake":40}"#, at: 100, parents: [task.id], key: Self.alice)
        bobBid = try Self.event("bid", #"{"bidder":"bob","stake":50}"#, at: 200, parents: [task.id], key: Self.bob)
        carolBid = try Self.event("bid", #"{"bidder":"carol","stake":30}"#, at: 300, parents: [task.id])
        close = try Self.event("close", #"{}"#, at: 400, parents: [aliceBid.id, bobBid.id, carolBid.id])
        _ = try await store.append(contentsOf: [task, aliceBid, bobBid])
        _ = try await store.apply(carolBid, origin: Self.otherRelay, originSeq: 1)
        _ = try await store.append(close)
    }

    static func event(_ type: String, _ payload: String, at offset: UInt64, parents: [EventID] = [], key: SigningKey? = nil) throws -> Event {
        let event = try Event(
            namespace: namespace, author: key?.publicKey,
            timestamp: HybridTimestamp(physicalMilliseconds: start + offset, logical: 0),
            parents: parents, type: type, payload: Array(payload.utf8))
        return key.map { event.signed(by: $0) } ?? event
    }
}

/// Writes `records` as one segment file.
func writeSegment(_ path: String, namespace: Namespace = AuctionLog.namespace, firstPosition: UInt64, _ records: [Segment.Record]) throws {
    let segment = try Segment(namespace: namespace, firstPosition: firstPosition, records: records)
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(segment.encoded()).write(to: URL(fileURLWithPath: path))
}

/// Every event of a source's namespace, in its order.
func readAll(_ source: any LogSource, _ namespace: Namespace = AuctionLog.namespace) async throws -> [StoredEvent] {
    var events = [StoredEvent]()
    try await Replay(source: source, namespace: namespace).run { events.append($0) }
    return events
}
