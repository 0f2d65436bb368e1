public import TrailCore

/// Which link of a relay carries each origin's events of each namespace to
/// it: the link to the origin itself when there is one (its events then
/// take one hop), else the first link whose peer held more of that origin
/// when it opened or sent it first, or a link that GRAFTed it since. Shared by a relay's link sessions, so
/// that a relay healing from a partition takes the missing events from one
/// peer, not from every peer at once (`LinkSession.receiveReady`).
public final class RouteBoard: Sendable {
    private struct Route: Hashable {
        let namespace: Namespace
        let origin: RelayID
    }

    private let carriers = Locked<[Route: ObjectIdentifier]>([:])

    public init() {}

    /// Records `session` as the carrier of each of `origins` in `namespace`
    /// that has none, or that is `direct` (the origin of the session's peer:
    /// that link carries it whoever did before), and returns the origins
    /// another session carries.
    func claim(_ origins: [RelayID], in namespace: Namespace, for session: ObjectIdentifier, direct: RelayID) -> [RelayID] {
        carriers.withLock { carriers in
            origins.filter { origin in
                let route = Route(namespace: namespace, origin: origin)
                if origin != direct, let carrier = carriers[route], carrier != session { return true }
                carriers[route] = session
                return false
            }
        }
    }

    /// Records `session` as the carrier of `origins` in `namespace`, in place of any other.
    func take(_ origins: [RelayID], in namespace: Namespace, for session: ObjectIdentifier) {
        carriers.withLock { carriers in
            for origin in origins { carriers[Route(namespace: namespace, origin: origin)] = session }
        }
    }

    /// Whether a link other than `session` carries `origin` of `namespace`.
    func isCarried(_ origin: RelayID, in namespace: Namespace, apartFrom session: ObjectIdentifier) -> Bool {
        carriers.withLock { carriers in
            carriers[Route(namespace: namespace, origin: origin)].map { $0 != session } ?? false
        }
    }

    /// Forgets what `session` carried: its link ended.
    func release(_ session: ObjectIdentifier) {
        carriers.withLock { carriers in carriers = carriers.filter { $0.value != session } }
    }
}
