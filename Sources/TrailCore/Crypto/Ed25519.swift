internal import COpenSSL

/// An Ed25519 public key: an event's author, or a relay's identity.
///
/// Held as `Bytes32` (four words), not an array: every version vector is a
/// dictionary keyed by relays' keys, and decoding one allocated an array per
/// entry and hashed it byte by byte.
public struct PublicKey: Bytes32Value, Sendable {
    public static let byteCount = Bytes32.byteCount
    public let storage: Bytes32

    public init(bytes: some Collection<UInt8>) throws(KeyError) {
        guard bytes.count == Self.byteCount else {
            throw KeyError.wrongLength(what: "public key", bytes: bytes.count, expected: Self.byteCount)
        }
        storage = Bytes32(bytes)
    }

    /// Hex text, the form the CLI prints and accepts.
    public init(hex: String) throws(KeyError) {
        guard let bytes = Hex.decode(hex) else { throw KeyError.notHex(what: "public key") }
        try self.init(bytes: bytes)
    }

    /// The first 8 bytes, big-endian: a short handle used where 64 bits of identity are enough.
    public var fingerprint: UInt64 { storage.prefix64 }

    /// Verifies an Ed25519 signature over `message` with OpenSSL.
    public func verify(_ signature: Signature, message: some ContiguousBytes) -> Bool {
        let key = withBytes {
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count)
        }
        guard let key else { return false }
        defer { EVP_PKEY_free(key) }
        let context = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { return false }
        return signature.bytes.withUnsafeBufferPointer { sig in
            message.withUnsafeBytes { msg in
                EVP_DigestVerify(
                    context, sig.baseAddress, sig.count,
                    msg.baseAddress?.assumingMemoryBound(to: UInt8.self), msg.count) == 1
            }
        }
    }
}

/// An Ed25519 signature, 64 bytes.
public struct Signature: Hashable, Sendable {
    public static let byteCount = 64
    public let bytes: [UInt8]

    public init(bytes: some Collection<UInt8>) throws(KeyError) {
        let array = Array(bytes)
        guard array.count == Self.byteCount else {
            throw KeyError.wrongLength(what: "signature", bytes: array.count, expected: Self.byteCount)
        }
        self.bytes = array
    }
}

public enum KeyError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongLength(what: String, bytes: Int, expected: Int)
    case notHex(what: String)
    case rejectedByOpenSSL(what: String)

    public var description: String {
        switch self {
        case .wrongLength(let what, let bytes, let expected):
            "\(what) is \(bytes) bytes; Ed25519 needs \(expected)"
        case .notHex(let what):
            "\(what) is not hexadecimal text"
        case .rejectedByOpenSSL(let what):
            "OpenSSL refused the \(what)"
        }
    }
}

/// An Ed25519 private key held by OpenSSL. This type owns the `EVP_PKEY` and frees it.
public final class SigningKey: Sendable {
    public static let seedByteCount = 32
    // An EVP_PKEY is safe to use for signing from several threads at once
    // once it is built; nothing here mutates it after init.
    private nonisolated(unsafe) let key: OpaquePointer
    public let seed: [UInt8]
    public let publicKey: PublicKey

    public init(seed: some Collection<UInt8>) throws(KeyError) {
        let seed = Array(seed)
        guard seed.count == Self.seedByteCount else {
            throw KeyError.wrongLength(what: "private key seed", bytes: seed.count, expected: Self.seedByteCount)
        }
        let key = seed.withUnsafeBufferPointer {
            EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, $0.count)
        }
        guard let key else { throw KeyError.rejectedByOpenSSL(what: "private key seed") }
        var publicBytes = [UInt8](repeating: 0, count: PublicKey.byteCount)
        var length = publicBytes.count
        let ok = publicBytes.withUnsafeMutableBufferPointer {
            EVP_PKEY_get_raw_public_key(key, $0.baseAddress, &length) == 1
        }
        guard ok, length == PublicKey.byteCount else {
            EVP_PKEY_free(key)
            throw KeyError.rejectedByOpenSSL(what: "private key seed")
        }
        self.key = key
        self.seed = seed
        self.publicKey = try PublicKey(bytes: publicBytes)
    }

    /// A new key from `generator`, which must be cryptographically secure
    /// (`SystemRandomNumberGenerator` is, on Linux: it reads getrandom).
    public static func generate(using generator: inout some RandomNumberGenerator) -> SigningKey {
        let seed = (0..<seedByteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return try! SigningKey(seed: seed)
    }

    deinit { EVP_PKEY_free(key) }

    public func sign(_ message: some ContiguousBytes) -> Signature {
        let context = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: Signature.byteCount)
        var length = out.count
        let ok = out.withUnsafeMutableBufferPointer { sig in
            message.withUnsafeBytes { msg in
                EVP_DigestSignInit(context, nil, nil, nil, key) == 1
                    && EVP_DigestSign(
                        context, sig.baseAddress, &length,
                        msg.baseAddress?.assumingMemoryBound(to: UInt8.self), msg.count) == 1
            }
        }
        precondition(ok && length == Signature.byteCount, "OpenSSL Ed25519 signing failed")
        return try! Signature(bytes: out)
    }
}

extension ByteReader {
    /// A 32-byte public key; truncation is a `DecodeError` naming `field`.
    public mutating func readPublicKey(_ field: @autoclosure () -> String) throws(DecodeError) -> PublicKey {
        let bytes = try readBytes(PublicKey.byteCount, field())
        return try! PublicKey(bytes: bytes)  // exactly byteCount bytes: cannot fail
    }

    /// A 64-byte signature; truncation is a `DecodeError` naming `field`.
    public mutating func readSignature(_ field: @autoclosure () -> String) throws(DecodeError) -> Signature {
        let bytes = try readBytes(Signature.byteCount, field())
        return try! Signature(bytes: bytes)  // exactly byteCount bytes: cannot fail
    }
}
