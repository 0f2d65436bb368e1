/// A relay's identity: its Ed25519 public key. Events carry it as their origin.
public typealias RelayID = PublicKey

/// Per namespace, origin → highest originSeq held. Because each origin's
/// events enter a log densely and in order, the vector names exactly the set
/// of events held: equal vectors, equal event sets.
public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    /// Origins with a zero entry are never stored, so equal sets compare equal.
    public private(set) var entries: [RelayID: UInt64]

    public init(_ entries: [RelayID: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    public subscript(origin: RelayID) -> UInt64 { entries[origin] ?? 0 }

    public var isEmpty: Bool { entries.isEmpty }
    /// How many events the vector names.
    public var total: UInt64 { entries.values.reduce(0, +) }
    public var origins: [RelayID] { entries.keys.sorted() }

    public func contains(origin: RelayID, originSeq: UInt64) -> Bool {
        originSeq >= 1 && originSeq <= self[origin]
    }

    /// Records that `originSeq` of `origin` is held. Entries only grow.
    public mutating func advance(origin: RelayID, to originSeq: UInt64) {
        if originSeq > self[origin] { entries[origin] = originSeq }
    }

    /// The least upper bound: everything either vector names.
    public mutating func merge(_ other: VersionVector) {
        for (origin, seq) in other.entries { advance(origin: origin, to: seq) }
    }

    public func merging(_ other: VersionVector) -> VersionVector {
        var copy = self
        copy.merge(other)
        return copy
    }

    public enum Order: Equatable, Sendable {
        case equal
        /// Self names a strict subset of what the other names.
        case before
        /// Self names a strict superset.
        case after
        /// Each names events the other lacks.
        case concurrent
    }

    public func compare(_ other: VersionVector) -> Order {
        var less = false
        var greater = false
        for origin in Set(entries.keys).union(other.entries.keys) {
            let mine = self[origin]
            let theirs = other[origin]
            if mine < theirs { less = true }
            if mine > theirs { greater = true }
        }
        switch (less, greater) {
        case (false, false): return .equal
        case (true, false): return .before
        case (false, true): return .after
        case (true, true): return .concurrent
        }
    }

    /// What self holds that `other` lacks: per origin, the originSeq range missing there.
    public func difference(_ other: VersionVector) -> [RelayID: ClosedRange<UInt64>] {
        var missing = [RelayID: ClosedRange<UInt64>]()
        for (origin, seq) in entries where seq > other[origin] {
            missing[origin] = (other[origin] + 1)...seq
        }
        return missing
    }

    public var description: String {
        "{" + origins.map { "\($0.hex.prefix(8)):\(self[$0])" }.joined(separator: ", ") + "}"
    }

    /// Binary form (inside portable cursors): count, then per origin in
    /// ascending key order its 32 bytes and its seq, as varints.
    public func encode(into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(entries.count))
        for origin in origins {
            origin.write(into: &writer)
            writer.writeVarint(self[origin])
        }
    }

    /// Origins beyond this in one vector are refused: a federation of 4096
    /// relays writing one namespace is far past Trail's design point.
    public static let originCountMax = 4096

    public static func decode<Bytes>(from reader: inout ByteReader<Bytes>) throws(DecodeError) -> VersionVector {
        let countOffset = reader.offset
        let count = try reader.readVarint("origin count")
        guard count <= UInt64(originCountMax) else {
            throw reader.error("origin count", .tooLarge(value: Int(clamping: count), limit: originCountMax), at: countOffset)
        }
        var entries = [RelayID: UInt64]()
        var previous: RelayID?
        for index in 0..<Int(count) {
            let start = reader.offset
            let origin = try reader.readPublicKey("origin \(index)")
            if let previous, !(previous < origin) {
                throw reader.error("origin \(index)", .invalid("is not above the previous origin: origins must be ascending"), at: start)
            }
            let seqOffset = reader.offset
            let seq = try reader.readVarint("originSeq \(index)")
            guard seq > 0 else { throw reader.error("originSeq \(index)", .invalid("is 0; zero entries are omitted"), at: seqOffset) }
            entries[origin] = seq
            previous = origin
        }
        return VersionVector(entries)
    }
}
