import TrailCore

/// The links up right now, one per peer relay. When two relays dial each
/// other at once, both keep the link dialed by the relay with the smaller
/// key, so they agree without another round trip.
final class LinkRegistry: Sendable {
    private let links = Locked<[PublicKey: PeerLink]>([:])
    /// Peers an operator cut off (a partition): refused at the handshake.
    let blocked = Locked<Set<PublicKey>>([])
    let me: PublicKey

    init(me: PublicKey) { self.me = me }

    func register(_ link: PeerLink, peer: PublicKey) throws(ProtocolError) {
        let replaced: PeerLink? = try links.withLock { links throws(ProtocolError) in
            guard let existing = links[peer] else {
                links[peer] = link
                return nil
            }
            let existingDialer = existing.dialed ? me : peer
            let newDialer = link.dialed ? me : peer
            guard newDialer < existingDialer else {
                throw ProtocolError(.duplicateLink, "a link between relays \(me.hex.prefix(16)) and \(peer.hex.prefix(16)) is already up")
            }
            links[peer] = link
            return existing
        }
        replaced?.closeTransport()
        changed()
    }

    func unregister(_ link: PeerLink, peer: PublicKey) {
        let removed = links.withLock { links in
            guard links[peer] === link else { return false }
            links[peer] = nil
            return true
        }
        if removed { changed() }
    }

    /// The current origins of the relays linked now: their events come
    /// straight from them, so other peers need not push them (DIRECT).
    var linkedOrigins: Set<RelayID> {
        Set(links.withLock { Array($0.values) }.compactMap { $0.status.withLock { $0?.peerOrigin } })
    }

    private let watchers = Locked<(next: UInt64, all: [UInt64: AsyncStream<Void>.Continuation])>((0, [:]))

    /// A tick whenever a link comes up or goes down (the latest only, for a
    /// watcher that is busy), with a token for `unwatch`.
    func watch() -> (token: UInt64, changes: AsyncStream<Void>) {
        let (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let token = watchers.withLock { watchers in
            watchers.next += 1
            watchers.all[watchers.next] = continuation
            return watchers.next
        }
        return (token, changes)
    }

    func unwatch(_ token: UInt64) {
        watchers.withLock { $0.all.removeValue(forKey: token) }?.finish()
    }

    private func changed() {
        for continuation in watchers.withLock({ Array($0.all.values) }) { continuation.yield() }
    }

    var all: [PeerLink] { links.withLock { Array($0.values) } }

    func isBlocked(_ peer: PublicKey) -> Bool { blocked.withLock { $0.contains(peer) } }

    /// Keys that peers proved they rotated away from, each with the key that
    /// replaced it: a link that presents a retired key is refused (held in
    /// memory; the allowlist is the lasting record).
    private let retired = Locked<[PublicKey: PublicKey]>([:])

    func retire(_ keys: [PublicKey], successor: PublicKey) {
        guard !keys.isEmpty else { return }
        retired.withLock { retired in for key in keys { retired[key] = successor } }
    }

    func successor(of key: PublicKey) -> PublicKey? { retired.withLock { $0[key] } }
}
