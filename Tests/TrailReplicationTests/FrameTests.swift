import Testing
import TrailCore
@testable import TrailReplication

@Suite struct FrameTests {
    static func key(_ byte: UInt8) -> PublicKey { try! PublicKey(bytes: [UInt8](repeating: byte, count: 32)) }

    static let frames: [Frame] = [
        .hello(Frame.Hello(relay: key(1), origin: key(2), incarnation: 3, nonce: [UInt8](repeating: 9, count: 32),
                           frameBytesMax: 1 << 22, prefixes: ["doc/", "auction/"])),
        .want(try! Namespace("doc/a"), VersionVector([key(1): 7, key(2): 9])),
        .ready,
        .credit(8),
        .ack(try! Namespace("doc/a"), VersionVector([key(1): 8])),
        .fetch([EventID(bytes: [UInt8](repeating: 4, count: 32))]),
        .prune(try! Namespace("doc/a"), [key(1), key(2)]),
        .graft(try! Namespace("doc/a"), [key(2)], VersionVector([key(1): 8, key(3): 2])),
        .direct([key(2), key(3)]),
        .direct([]),
        .error(ProtocolError(.notAllowed, "relay is not on the allowlist")),
        .presence(PresenceBoard.Snapshot(
            origin: key(5), version: 1_700_000_000_000_001, leaseMilliseconds: 3000,
            entries: [
                PresenceBoard.Entry(namespace: try! Namespace("task/team"), participant: "alice", joinedMilliseconds: 1_700_000_000_000),
                PresenceBoard.Entry(namespace: try! Namespace("doc/a"), participant: "agent ✓", joinedMilliseconds: 5),
            ])),
    ]

    /// Every frame decodes to itself; every truncation of it is a typed error, never a trap.
    @Test(arguments: frames) func roundTripsAndTruncationsAreRefused(_ frame: Frame) throws {
        let bytes = frame.encoded()
        #expect(try Frame(decoding: bytes) == frame)
        for length in 0..<bytes.count where length > 0 || bytes.count > 1 {
            if frame == .ready, length == 0 { continue }
            #expect(throws: DecodeError.self) { try Frame(decoding: Array(bytes.prefix(length))) }
        }
    }

    /// PRUNE and GRAFT name at least one origin, in ascending order.
    @Test func routingFramesWithoutOriginsOrOutOfOrderAreRefused() {
        let name = Array("doc/a".utf8)
        let empty: [UInt8] = [12, UInt8(name.count)] + name + [0, 0]
        #expect { try Frame(decoding: empty) } throws: { "\($0)".contains("origin count") && "\($0)".contains("at least one origin") }
        let descending: [UInt8] = [12, UInt8(name.count)] + name + [0, 2] + Self.key(2).bytes + Self.key(1).bytes
        #expect { try Frame(decoding: descending) } throws: { "\($0)".contains("origin 1") && "\($0)".contains("ascending") }
    }

    /// DIRECT may name no origin (the sender is linked to no other relay), but its origins ascend.
    @Test func directOriginsAscend() throws {
        #expect(try Frame(decoding: [14, 0, 0]) == .direct([]))
        let descending: [UInt8] = [14, 0, 2] + Self.key(2).bytes + Self.key(1).bytes
        #expect { try Frame(decoding: descending) } throws: { "\($0)".contains("DIRECT frame") && "\($0)".contains("ascending") }
    }

    /// A peer's forwarded snapshot expires with the origin's lease, and a stale version is ignored.
    @Test func presenceLeasesCountDownAcrossHopsAndOldVersionsAreIgnored() {
        let board = PresenceBoard(me: Self.key(1), heartbeat: .milliseconds(100), lease: .milliseconds(300))
        let entry = PresenceBoard.Entry(namespace: try! Namespace("t/a"), participant: "p", joinedMilliseconds: 1)
        board.receive(PresenceBoard.Snapshot(origin: Self.key(2), version: 10, leaseMilliseconds: 300, entries: [entry]))
        board.receive(PresenceBoard.Snapshot(origin: Self.key(2), version: 9, leaseMilliseconds: 300, entries: []))
        #expect(board.remoteEntries.map(\.1) == [entry])
        let forwarded = board.snapshots(for: Self.key(3), now: .now + .milliseconds(100))
        #expect(forwarded.count == 2)
        #expect(forwarded[1].leaseMilliseconds <= 200)
        #expect(board.snapshots(for: Self.key(2)).count == 1, "a peer is not sent its own snapshot")
        board.expire(now: .now + .milliseconds(301))
        #expect(board.remoteEntries.isEmpty)
    }
}
