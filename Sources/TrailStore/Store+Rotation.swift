import Foundation
public import TrailCore

/// Key rotation: a relay replaces its identity key and keeps, in
/// `relay.rotations`, the chain of statements by which each old key handed
/// over to the next (`KeyRotation`). Peers whose allowlists name an old key
/// accept the new one through the chain (Docs/SECURITY.md); fast cursors
/// made under an old key still read. Events keep their origins: an origin
/// names an incarnation, not the key of the moment.
extension Store {
    public static let rotationsFileName = "relay.rotations"
    static let nextIdentityFileName = "relay.key.next"

    /// Replaces the relay's identity key with a new one. Takes the data
    /// directory as its owner (it fails if a relay runs on it), records the
    /// rotation signed by the old key, then installs the new key; a crash at
    /// any point leaves either the old key or the new one with its rotation.
    @discardableResult
    public static func rotateIdentity(directory: String, configuration: StoreConfiguration = StoreConfiguration()) throws -> KeyRotation {
        let store = try Store(directory: directory, configuration: configuration)
        defer { store.close() }
        // The first incarnation's origin is the key it started with: recorded now,
        // so that it outlives the key (events keep their origin).
        try store.recordIncarnation()
        var generator = SystemRandomNumberGenerator()
        let next = SigningKey.generate(using: &generator)
        let rotation = KeyRotation(from: store.identity, to: next.publicKey)
        let nextPath = directory + "/" + nextIdentityFileName
        try writeDurably(nextPath, Hex.encode(next.seed) + "\n", permissions: 0o600)
        let lines = (store.rotations + [rotation]).map { Hex.encode($0.bytes) + "\n" }.joined()
        try writeDurably(directory + "/" + rotationsFileName, lines, permissions: 0o644)
        try finishRotation(directory: directory)
        store.configuration.logger.warning("relay key rotated", metadata: [
            "previous": "\(rotation.previous.hex.prefix(16))", "next": "\(rotation.next.hex.prefix(16))"])
        return rotation
    }

    /// Completes a rotation a crash interrupted: the new key is installed if
    /// its rotation was recorded, and dropped if not.
    static func finishRotation(directory: String) throws {
        let nextPath = directory + "/" + nextIdentityFileName
        guard FileManager.default.fileExists(atPath: nextPath) else { return }
        let next = try readSeed(nextPath)
        let recorded = try rotationsOnDisk(directory: directory).last?.next == next.publicKey
        if recorded {
            guard rename(nextPath, directory + "/" + identityFileName) == 0 else {
                throw StoreError.incompatibleDirectory("cannot rename \(nextPath) to \(identityFileName): \(String(cString: strerror(errno)))")
            }
        } else {
            try FileManager.default.removeItem(atPath: nextPath)
        }
        syncDirectory(directory)
    }

    static func loadRotations(directory: String, current: PublicKey) throws -> [KeyRotation] {
        let chain = try rotationsOnDisk(directory: directory)
        if let problem = KeyRotation.problem(in: chain, endingAt: current) {
            throw StoreError.incompatibleDirectory("\(directory)/\(rotationsFileName): \(problem)")
        }
        return chain
    }

    static func rotationsOnDisk(directory: String) throws -> [KeyRotation] {
        let path = directory + "/" + rotationsFileName
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").enumerated().map { index, line in
            guard let bytes = Hex.decode(String(line)), let rotation = try? KeyRotation(bytes: bytes) else {
                throw StoreError.incompatibleDirectory("\(path) line \(index + 1) is not a 256-digit hex key rotation")
            }
            return rotation
        }
    }

    static func readSeed(_ path: String) throws -> SigningKey {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let seed = Hex.decode(text), seed.count == SigningKey.seedByteCount else {
            throw StoreError.incompatibleDirectory("\(path) does not hold a 64-digit hex Ed25519 seed")
        }
        return try SigningKey(seed: seed)
    }

    /// Writes a file through a temporary one, fsynced, then renamed into place.
    static func writeDurably(_ path: String, _ text: String, permissions: Int) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: permissions]) else {
            throw StoreError.incompatibleDirectory("cannot write \(temporary)")
        }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: temporary))
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else { throw StoreError.incompatibleDirectory("cannot rename \(temporary) to \(path)") }
        syncDirectory((path as NSString).deletingLastPathComponent)
    }

    static func syncDirectory(_ directory: String) {
        let descriptor = Glibc.open(directory, O_RDONLY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        Glibc.close(descriptor)
    }

    /// Fingerprints of the keys a fast cursor of this relay may carry: the current key's and every earlier one's.
    var cursorFingerprints: [UInt64] { [relayID.fingerprint] + rotations.map(\.previous.fingerprint) }
}

#if canImport(Glibc)
import Glibc
#endif
