import Foundation
public import TrailCore

/// Who is subscribed where, across a federation: each relay's own
/// participants (set by the relay's client API) and the snapshots other
/// relays announced over the peer links, in memory only.
///
/// Every relay re-announces its snapshot to each peer every `heartbeat`,
/// and when it changes (changes within `spacing` of the last announcement
/// go out together); a snapshot carries the lease left on it, so
/// one forwarded over several links expires when the origin's lease does,
/// not later. A relay that dies, or is cut off, drops out of every other
/// relay's list within `lease` (3 s by default) of its last announcement.
public final class PresenceBoard: Sendable {
    public struct Entry: Hashable, Sendable {
        public var namespace: Namespace
        public var participant: String
        public var joinedMilliseconds: UInt64

        public init(namespace: Namespace, participant: String, joinedMilliseconds: UInt64) {
            self.namespace = namespace
            self.participant = participant
            self.joinedMilliseconds = joinedMilliseconds
        }
    }

    /// One relay's participants as it announced them.
    public struct Snapshot: Sendable, Equatable {
        public var origin: RelayID
        /// Rises with every change the origin makes (milliseconds × 1000 + a counter, so a restart keeps rising).
        public var version: UInt64
        /// How long the snapshot stays valid from when it is received.
        public var leaseMilliseconds: UInt32
        public var entries: [Entry]

        public init(origin: RelayID, version: UInt64, leaseMilliseconds: UInt32, entries: [Entry]) {
            self.origin = origin
            self.version = version
            self.leaseMilliseconds = leaseMilliseconds
            self.entries = entries
        }
    }

    /// Remote participants that appeared or went, for the client API's notices.
    public struct Change: Sendable {
        public var joined: [(RelayID, Entry)]
        public var left: [(RelayID, Entry)]
    }

    struct Held {
        var snapshot: Snapshot
        var expires: ContinuousClock.Instant
    }

    struct State {
        var local: Snapshot
        var remote: [RelayID: Held] = [:]
        var generation: UInt64 = 0
        var watchers: [Int: AsyncStream<Void>.Continuation] = [:]
        var nextWatcher = 0
    }

    public let me: RelayID
    public let heartbeat: Duration
    public let lease: Duration
    /// The least time between two announcements on a link: changes within
    /// it go out together (a link sends at most 1 / spacing a second).
    public let spacing: Duration
    let state: Locked<State>
    let onChange: Locked<(@Sendable (Change) -> Void)?> = Locked(nil)

    public init(me: RelayID, heartbeat: Duration = .seconds(1), lease: Duration = .seconds(3), spacing: Duration = .milliseconds(100)) {
        self.me = me
        self.spacing = min(spacing, heartbeat)
        self.heartbeat = heartbeat
        self.lease = lease
        state = Locked(State(local: Snapshot(
            origin: me, version: Self.freshVersion(after: 0), leaseMilliseconds: Self.milliseconds(lease), entries: [])))
    }

    /// Called with each change of the remote participants (not the local ones).
    public func setOnChange(_ handler: @escaping @Sendable (Change) -> Void) {
        onChange.withLock { $0 = handler }
    }

    /// Replaces this relay's own participants and announces them.
    public func setLocal(_ entries: [Entry]) {
        let watchers = state.withLock { state -> [AsyncStream<Void>.Continuation] in
            state.local.entries = entries
            state.local.version = Self.freshVersion(after: state.local.version)
            state.generation += 1
            return Array(state.watchers.values)
        }
        watchers.forEach { $0.yield() }
    }

    /// Every remote relay's entries, unexpired.
    public var remoteEntries: [(RelayID, Entry)] {
        let now = ContinuousClock.now
        return state.withLock { state in
            state.remote.values.filter { $0.expires > now }.flatMap { held in held.snapshot.entries.map { (held.snapshot.origin, $0) } }
        }
    }

    /// Takes a snapshot a peer sent. Older versions are ignored; the same
    /// version refreshes the lease; a newer one replaces the entries.
    public func receive(_ snapshot: Snapshot) {
        guard snapshot.origin != me else { return }
        let expires = ContinuousClock.now + .milliseconds(Int(snapshot.leaseMilliseconds))
        let (change, watchers) = state.withLock { state -> (Change?, [AsyncStream<Void>.Continuation]) in
            let held = state.remote[snapshot.origin]
            if let held, held.snapshot.version > snapshot.version { return (nil, []) }
            if let held, held.snapshot.version == snapshot.version {
                state.remote[snapshot.origin]?.expires = max(held.expires, expires)
                return (nil, [])
            }
            state.remote[snapshot.origin] = Held(snapshot: snapshot, expires: expires)
            state.generation += 1
            let before = Set(held?.snapshot.entries ?? [])
            let after = Set(snapshot.entries)
            let change = Change(
                joined: after.subtracting(before).map { (snapshot.origin, $0) },
                left: before.subtracting(after).map { (snapshot.origin, $0) })
            return (change, Array(state.watchers.values))
        }
        watchers.forEach { $0.yield() }
        if let change, !(change.joined.isEmpty && change.left.isEmpty) { onChange.withLock { $0 }?(change) }
    }

    /// Drops snapshots whose lease ran out; their participants leave.
    public func expire(now: ContinuousClock.Instant = .now) {
        let gone = state.withLock { state -> [Snapshot] in
            let expired = state.remote.values.filter { $0.expires <= now }.map(\.snapshot)
            for snapshot in expired { state.remote.removeValue(forKey: snapshot.origin) }
            if !expired.isEmpty { state.generation += 1 }
            return expired
        }
        let left = gone.flatMap { snapshot in snapshot.entries.map { (snapshot.origin, $0) } }
        if !left.isEmpty { onChange.withLock { $0 }?(Change(joined: [], left: left)) }
    }

    /// What to send a peer: this relay's snapshot and every unexpired remote
    /// one except the peer's own, each with the lease it has left.
    func snapshots(for peer: RelayID, now: ContinuousClock.Instant = .now) -> [Snapshot] {
        state.withLock { state in
            var result = [state.local]
            for held in state.remote.values where held.snapshot.origin != peer && held.expires > now {
                var snapshot = held.snapshot
                snapshot.leaseMilliseconds = Self.milliseconds(held.expires - now)
                result.append(snapshot)
            }
            return result
        }
    }

    /// Yields on every change until `unwatch`.
    func watch() -> (Int, AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let token = state.withLock { state in
            defer { state.nextWatcher += 1 }
            state.watchers[state.nextWatcher] = continuation
            return state.nextWatcher
        }
        return (token, stream)
    }

    func unwatch(_ token: Int) {
        state.withLock { $0.watchers.removeValue(forKey: token) }?.finish()
    }

    static func freshVersion(after previous: UInt64) -> UInt64 {
        max(previous + 1, UInt64(Date().timeIntervalSince1970 * 1000) * 1000)
    }

    static func milliseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        return UInt32(clamping: max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
    }
}
