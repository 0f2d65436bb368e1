/// 32 bytes held as four big-endian words: the storage of event ids and
/// public keys. Ids and keys are hashed, compared and copied on every append
/// and in every version vector; words need no allocation or reference
/// counting, hash as four integers, and compare in byte order (for
/// big-endian words, byte order is word order).
public struct Bytes32: Hashable, Comparable, Sendable {
    public static let byteCount = 32
    @usableFromInline let words: (UInt64, UInt64, UInt64, UInt64)

    /// `bytes` must be exactly 32 bytes; callers check lengths first.
    /// Inlinable, so that a caller in another module (the store, reading a
    /// RocksDB value in place) gets a version for its own collection, not a generic one.
    @inlinable public init(_ bytes: some Collection<UInt8>) {
        precondition(bytes.count == Self.byteCount, "expected 32 bytes, got \(bytes.count)")
        if let words = bytes.withContiguousStorageIfAvailable({ buffer in
            let raw = UnsafeRawBufferPointer(buffer)
            return (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
        }) {
            self.words = words
            return
        }
        var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0
        var index = 0
        for byte in bytes {
            switch index >> 3 {
            case 0: w0 = w0 << 8 | UInt64(byte)
            case 1: w1 = w1 << 8 | UInt64(byte)
            case 2: w2 = w2 << 8 | UInt64(byte)
            default: w3 = w3 << 8 | UInt64(byte)
            }
            index += 1
        }
        self.words = (w0, w1, w2, w3)
    }

    /// The first 8 bytes as a big-endian integer.
    @inlinable public var prefix64: UInt64 { words.0 }

    /// A new array of the 32 bytes.
    public var array: [UInt8] {
        var writer = ByteWriter(capacity: Self.byteCount)
        write(into: &writer)
        return writer.bytes
    }

    /// The 32 bytes, without allocating, valid only inside `body`.
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let bigEndian = (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian, words.3.bigEndian)
        return try withUnsafeBytes(of: bigEndian, body)
    }

    public func write(into writer: inout ByteWriter) {
        writer.write(words.0)
        writer.write(words.1)
        writer.write(words.2)
        writer.write(words.3)
    }

    @inlinable public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    @inlinable public static func == (lhs: Bytes32, rhs: Bytes32) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2 && lhs.words.3 == rhs.words.3
    }

    @inlinable public static func < (lhs: Bytes32, rhs: Bytes32) -> Bool {
        if lhs.words.0 != rhs.words.0 { return lhs.words.0 < rhs.words.0 }
        if lhs.words.1 != rhs.words.1 { return lhs.words.1 < rhs.words.1 }
        if lhs.words.2 != rhs.words.2 { return lhs.words.2 < rhs.words.2 }
        return lhs.words.3 < rhs.words.3
    }
}

/// A value that is 32 bytes and nothing else (an event id, a public key):
/// its bytes, hex text, hashing and byte order come from its `storage`.
public protocol Bytes32Value: Hashable, Comparable, CustomStringConvertible {
    var storage: Bytes32 { get }
}

extension Bytes32Value {
    /// A new array of the 32 bytes; `write(into:)` and `withBytes` do not allocate.
    public var bytes: [UInt8] { storage.array }

    /// The 32 bytes, without allocating, valid only inside `body`.
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try storage.withBytes(body)
    }

    public func write(into writer: inout ByteWriter) { storage.write(into: &writer) }

    public var hex: String { withBytes { Hex.encode($0) } }
    public var description: String { hex }

    @inlinable public func hash(into hasher: inout Hasher) { storage.hash(into: &hasher) }
    @inlinable public static func == (lhs: Self, rhs: Self) -> Bool { lhs.storage == rhs.storage }
    /// Byte order.
    @inlinable public static func < (lhs: Self, rhs: Self) -> Bool { lhs.storage < rhs.storage }
}
