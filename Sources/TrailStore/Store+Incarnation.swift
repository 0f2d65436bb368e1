import Foundation
public import TrailCore

/// A relay's incarnation: the origin its new events carry. A relay that lost
/// events it had accepted (restored from a backup, or its WAL lost) must not
/// number new events from where its shorter log ends: peers already hold other
/// events at those originSeqs. It starts a new incarnation instead, a fresh
/// origin whose events number from 1, and its old origin's events come back
/// from peers like any other relay's.
public struct Incarnation: Sendable, Hashable, CustomStringConvertible {
    /// 1 for a new data directory; each new incarnation adds one.
    public let number: UInt32
    /// The first incarnation's origin is the relay's identity key; each later
    /// one is SHA-256("trail.incarnation.v1" ‖ relay key ‖ number ‖ 16 random bytes),
    /// so two copies restored from one backup still get distinct origins.
    public let origin: RelayID

    public var description: String { "incarnation \(number) (origin \(origin.hex.prefix(16)))" }

    static func encode(_ incarnation: Incarnation) -> [UInt8] {
        var writer = ByteWriter(capacity: 36)
        writer.write(incarnation.number)
        incarnation.origin.write(into: &writer)
        return writer.bytes
    }
}

extension Store {
    /// The incarnation whose origin new local events carry.
    public var incarnation: Incarnation { currentIncarnation.withLock { $0 } }
    /// The origin of events accepted here from now on.
    public var originID: RelayID { incarnation.origin }

    static func loadIncarnation(_ database: Database, relay: RelayID) throws(StoreError) -> Incarnation {
        let stored: [UInt8]?
        do { stored = try database.get(.meta, Keys.incarnation) } catch { throw .rocksDB(error) }
        guard let stored else { return Incarnation(number: 1, origin: relay) }
        var reader = ByteReader(stored, context: "incarnation record")
        do {
            let number = try reader.readUInt32("number")
            let origin = try reader.readPublicKey("origin")
            try reader.expectEnd()
            return Incarnation(number: number, origin: origin)
        } catch {
            throw .corrupt(what: "incarnation record", detail: error.description)
        }
    }

    /// Writes the current incarnation's record (a first incarnation has none
    /// until something must outlive the key its origin is named after).
    func recordIncarnation() throws {
        let batch = WriteBatch()
        batch.put(.meta, Keys.incarnation, Incarnation.encode(incarnation), in: database)
        do { try database.write(batch, sync: true) } catch { throw StoreError.rocksDB(error) }
    }

    /// Starts a new incarnation: records it durably, then every writer gives
    /// local events the new origin. Events already accepted keep theirs.
    @discardableResult
    public func startNewIncarnation(reason: String) async throws -> Incarnation {
        guard mode == .primary else { throw StoreError.readOnly }
        let previous = incarnation
        var random = SystemRandomNumberGenerator()
        var seed = Array("trail.incarnation.v1".utf8) + relayID.bytes
        var writer = ByteWriter()
        writer.write(previous.number + 1)
        seed += writer.bytes + (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        let next = Incarnation(number: previous.number + 1, origin: try PublicKey(bytes: SHA256.hash(seed)))
        let index = try originRegistry.intern(next.origin)
        let batch = WriteBatch()
        batch.put(.meta, Keys.incarnation, Incarnation.encode(next), in: database)
        do { try database.write(batch, sync: true) } catch { throw StoreError.rocksDB(error) }
        for writer in writers {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                writer.enqueue(.setOrigin(index, next.origin, continuation))
            }
        }
        currentIncarnation.withLock { $0 = next }
        configuration.logger.warning("started a new incarnation", metadata: [
            "incarnation": "\(next.number)", "origin": "\(next.origin.hex.prefix(16))",
            "previous": "\(previous.origin.hex.prefix(16))", "reason": "\(reason)"])
        return next
    }
}
