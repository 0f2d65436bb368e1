/// A relay's statement that its identity key `previous` is replaced by
/// `next`, signed by `previous`. A relay keeps the chain of its rotations
/// (oldest first) and shows it in its HELLO, so that a peer whose allowlist
/// still names an older key accepts the new one: each link is signed by the
/// key before it, and the chain ends at the key that proves itself.
///
/// Bytes (128): previous (32) ‖ next (32) ‖ signature (64) over
/// "trail.rotation.v1" ‖ previous ‖ next.
public struct KeyRotation: Sendable, Hashable {
    public static let byteCount = 2 * PublicKey.byteCount + Signature.byteCount
    public static let domain = Array("trail.rotation.v1".utf8)

    public let previous: PublicKey
    public let next: PublicKey
    public let signature: Signature

    public init(previous: PublicKey, next: PublicKey, signature: Signature) {
        self.previous = previous
        self.next = next
        self.signature = signature
    }

    /// `previous` hands over to `next`.
    public init(from previous: SigningKey, to next: PublicKey) {
        self.init(previous: previous.publicKey, next: next,
                  signature: previous.sign(Self.message(previous: previous.publicKey, next: next)))
    }

    public static func message(previous: PublicKey, next: PublicKey) -> [UInt8] {
        domain + previous.bytes + next.bytes
    }

    public var isValid: Bool { previous != next && previous.verify(signature, message: Self.message(previous: previous, next: next)) }

    public var bytes: [UInt8] { previous.bytes + next.bytes + signature.bytes }

    public init(bytes: some Collection<UInt8>) throws(KeyError) {
        let array = Array(bytes)
        guard array.count == Self.byteCount else {
            throw KeyError.wrongLength(what: "key rotation", bytes: array.count, expected: Self.byteCount)
        }
        previous = try PublicKey(bytes: array[0..<32])
        next = try PublicKey(bytes: array[32..<64])
        signature = try Signature(bytes: array[64...])
    }

    /// Why the chain does not hand over from its first key to `current`, or
    /// nil when it does: every link verifies and each starts where the one
    /// before ended. An empty chain hands over nothing (nil).
    public static func problem(in chain: [KeyRotation], endingAt current: PublicKey) -> String? {
        guard let last = chain.last else { return nil }
        for (index, rotation) in chain.enumerated() {
            guard rotation.isValid else {
                return "rotation \(index) (\(rotation.previous.hex.prefix(16)) to \(rotation.next.hex.prefix(16))) is not signed by \(rotation.previous.hex.prefix(16))"
            }
            if index > 0, chain[index - 1].next != rotation.previous {
                return "rotation \(index) starts at \(rotation.previous.hex.prefix(16)), not at \(chain[index - 1].next.hex.prefix(16)) where rotation \(index - 1) ended"
            }
        }
        guard last.next == current else {
            return "the rotations end at \(last.next.hex.prefix(16)), not at the key \(current.hex.prefix(16))"
        }
        return nil
    }
}
