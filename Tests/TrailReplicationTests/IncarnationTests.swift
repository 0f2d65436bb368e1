import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

@Suite(.serialized) struct IncarnationTests {
    /// A relay restored from an old backup is told by its peer that it lost
    /// events it had accepted; it starts a new incarnation, gets the lost
    /// events back, and its new events never collide with the old ones.
    @Test func aRelayRestoredFromABackupStartsANewIncarnation() async throws {
        let peer = try await TestRelay("peer")
        let directory = TemporaryDirectory("restored")
        var relay = try await TestRelay("restored", directory: directory)
        relay.link(to: peer)
        try await relay.write("doc/a", count: 5, tag: "before backup")
        #expect(try await converge([relay, peer], namespaces: ["doc/a"]))
        let firstOrigin = relay.store.originID

        // A backup of the directory, taken while the relay is stopped.
        await relay.stop()
        let backup = TemporaryDirectory("backup")
        try FileManager.default.copyItem(atPath: directory.path, toPath: backup.path)
        relay = try await TestRelay("restored", directory: directory)
        relay.link(to: peer)
        try await relay.write("doc/a", count: 5, tag: "after backup")
        #expect(try await converge([relay, peer], namespaces: ["doc/a"]))
        #expect(peer.store.vector(of: try Namespace("doc/a"))[firstOrigin] == 10)

        // The disk is lost; the backup comes back.
        await relay.stop()
        try FileManager.default.removeItem(atPath: directory.path)
        try FileManager.default.copyItem(atPath: backup.path, toPath: directory.path)
        relay = try await TestRelay("restored", directory: directory)
        #expect(relay.store.vector(of: try Namespace("doc/a"))[firstOrigin] == 5)
        relay.link(to: peer)
        #expect(try await converge([relay, peer], namespaces: ["doc/a"]))
        #expect(relay.store.incarnation.number == 2)
        #expect(relay.store.originID != firstOrigin)
        #expect(relay.store.vector(of: try Namespace("doc/a"))[firstOrigin] == 10)

        // New events carry the new origin and reach the peer without conflict.
        try await relay.write("doc/a", count: 5, tag: "new incarnation")
        #expect(try await converge([relay, peer], namespaces: ["doc/a"]))
        #expect(peer.store.vector(of: try Namespace("doc/a"))[relay.store.originID] == 5)
        #expect(try peer.ids("doc/a") == relay.ids("doc/a"))
        #expect(try peer.ids("doc/a").count == 15)
        #expect(peer.replicator.links.allSatisfy { $0.conflicts == 0 })
        #expect(try relay.store.check(Namespace("doc/a")).isEmpty)

        // The incarnation survives a restart.
        await relay.stop()
        relay = try await TestRelay("restored", directory: directory)
        #expect(relay.store.incarnation.number == 2)
        await relay.stop()
        await peer.stop()
    }
}
