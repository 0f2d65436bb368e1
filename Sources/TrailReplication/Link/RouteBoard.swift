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

    /// How a link carries an origin: `direct` when its peer is the origin itself.
    struct Carrier {
        let session: ObjectIdentifier
        let direct: Bool
    }

    /// Who else carries an origin, as a pruning link sees it.
    enum Carried {
        /// No link: the origin's events come only if this link is grafted.
        case byNone
        /// Another link whose peer got them elsewhere.
        case byForwarder
        /// The link to the origin itself: nothing reaches this relay sooner.
        case byOrigin
    }

    private let carriers = Locked<[Route: Carrier]>([:])
    private let releaseCount = Locked<UInt64>(0)

    /// How many links ended so far: their origins may need a graft on another link.
    var releases: UInt64 { releaseCount.withLock { $0 } }

    public init() {}

    /// Records `session` as the carrier of each of `origins` in `namespace`
    /// that has none, or that is `direct` (the origin of the session's peer:
    /// that link carries it whoever did before), and returns the origins
    /// another session carries.
    func claim(_ origins: [RelayID], in namespace: Namespace, for session: ObjectIdentifier, direct: RelayID) -> [RelayID] {
        carriers.withLock { carriers in
            origins.filter { origin in
                let route = Route(namespace: namespace, origin: origin)
                if origin != direct, let carrier = carriers[route], carrier.session != session { return true }
                carriers[route] = Carrier(session: session, direct: origin == direct)
                return false
            }
        }
    }

    /// Records `session` as the carrier of `origins` in `namespace`, in place of any other.
    func take(_ origins: [RelayID], in namespace: Namespace, for session: ObjectIdentifier, direct: RelayID) {
        carriers.withLock { carriers in
            for origin in origins {
                carriers[Route(namespace: namespace, origin: origin)] = Carrier(session: session, direct: origin == direct)
            }
        }
    }

    /// How a link other than `session` carries `origin` of `namespace`.
    func carried(_ origin: RelayID, in namespace: Namespace, apartFrom session: ObjectIdentifier) -> Carried {
        carriers.withLock { carriers in
            guard let carrier = carriers[Route(namespace: namespace, origin: origin)], carrier.session != session else { return .byNone }
            return carrier.direct ? .byOrigin : .byForwarder
        }
    }

    /// Forgets what `session` carried: its link ended.
    func release(_ session: ObjectIdentifier) {
        carriers.withLock { carriers in carriers = carriers.filter { $0.value.session != session } }
        releaseCount.withLock { $0 += 1 }
    }
}
