import Foundation
import TrailAPI
import TrailCore
import TrailReplication

/// Who is subscribed to each namespace under an announced identity, in
/// memory only. A participant is listed while at least one of its
/// connections is open; its last connection closing is its leave notice.
/// The relay's own participants go to the federation's `PresenceBoard`,
/// and those of other relays come back from it with their own notices.
final class Presence: Sendable {
    struct Member {
        var participant: ParticipantOutput
        var connections: Int
    }

    struct Namespaces {
        var members: [Namespace: [String: Member]] = [:]
        var watchers: [Namespace: [Int: AsyncStream<StreamMessage>.Continuation]] = [:]
        var nextWatcher = 0
    }

    let relay: String
    let board: PresenceBoard
    let state = Locked(Namespaces())

    init(board: PresenceBoard) {
        relay = board.me.hex
        self.board = board
        board.setOnChange { [weak self] change in
            for (origin, entry) in change.joined {
                self?.broadcast(entry.namespace, StreamMessage(kind: "joined", participant: Self.output(origin, entry)))
            }
            for (origin, entry) in change.left {
                self?.broadcast(entry.namespace, StreamMessage(kind: "left", participant: Self.output(origin, entry)))
            }
        }
    }

    static func output(_ origin: RelayID, _ entry: PresenceBoard.Entry) -> ParticipantOutput {
        ParticipantOutput(id: entry.participant, relay: origin.hex, joinedMs: entry.joinedMilliseconds)
    }

    /// Everyone subscribed to `namespace` under an identity, on this relay and its federation.
    func participants(_ namespace: Namespace) -> [ParticipantOutput] {
        let local = state.withLock { ($0.members[namespace] ?? [:]).values.map(\.participant) }
        let remote = board.remoteEntries.filter { $0.1.namespace == namespace }.map { Self.output($0.0, $0.1) }
        return (local + remote).sorted { ($0.joinedMs, $0.id, $0.relay) < ($1.joinedMs, $1.id, $1.relay) }
    }

    /// Participants connected to this relay, over all namespaces.
    var participantCount: Int { state.withLock { $0.members.values.reduce(0) { $0 + $1.count } } }

    /// Hands this relay's participants to the board, which announces them to peers.
    func publish() {
        let entries = state.withLock { state in
            state.members.flatMap { namespace, members in
                members.values.map {
                    PresenceBoard.Entry(namespace: namespace, participant: $0.participant.id, joinedMilliseconds: $0.participant.joinedMs)
                }
            }
        }
        board.setLocal(entries)
    }

    /// Notices for `namespace` until `unwatch`. The stream buffers the newest
    /// 1024 notices: a subscriber that cannot keep up loses old ones, never memory.
    func watch(_ namespace: Namespace) -> (Int, AsyncStream<StreamMessage>) {
        let (stream, continuation) = AsyncStream.makeStream(of: StreamMessage.self, bufferingPolicy: .bufferingNewest(1024))
        let token = state.withLock {
            let token = $0.nextWatcher
            $0.nextWatcher += 1
            $0.watchers[namespace, default: [:]][token] = continuation
            return token
        }
        return (token, stream)
    }

    func unwatch(_ namespace: Namespace, _ token: Int) {
        let continuation = state.withLock { $0.watchers[namespace]?.removeValue(forKey: token) }
        continuation?.finish()
    }

    func join(_ namespace: Namespace, id: String) {
        let notice: ParticipantOutput? = state.withLock {
            if var member = $0.members[namespace]?[id] {
                member.connections += 1
                $0.members[namespace]?[id] = member
                return nil
            }
            let participant = ParticipantOutput(
                id: id, relay: relay, joinedMs: UInt64(Date().timeIntervalSince1970 * 1000))
            $0.members[namespace, default: [:]][id] = Member(participant: participant, connections: 1)
            return participant
        }
        if let notice {
            broadcast(namespace, StreamMessage(kind: "joined", participant: notice))
            publish()
        }
    }

    func leave(_ namespace: Namespace, id: String) {
        let notice: ParticipantOutput? = state.withLock {
            guard var member = $0.members[namespace]?[id] else { return nil }
            member.connections -= 1
            if member.connections > 0 {
                $0.members[namespace]?[id] = member
                return nil
            }
            $0.members[namespace]?.removeValue(forKey: id)
            if $0.members[namespace]?.isEmpty == true { $0.members.removeValue(forKey: namespace) }
            return member.participant
        }
        if let notice {
            broadcast(namespace, StreamMessage(kind: "left", participant: notice))
            publish()
        }
    }

    func broadcast(_ namespace: Namespace, _ message: StreamMessage) {
        let continuations = state.withLock { Array(($0.watchers[namespace] ?? [:]).values) }
        for continuation in continuations { continuation.yield(message) }
    }
}
