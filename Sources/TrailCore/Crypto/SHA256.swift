internal import COpenSSL

/// SHA-256 through OpenSSL's libcrypto.
///
/// The digest is fetched once: OpenSSL 3 otherwise looks the algorithm up on
/// every call, which costs more than hashing a small event.
public enum SHA256 {
    public static let byteCount = 32

    private final class Algorithm: @unchecked Sendable {
        // Immutable after init and thread-safe per OpenSSL's documentation of fetched EVP_MD objects.
        let md: OpaquePointer
        init() {
            guard let md = EVP_MD_fetch(nil, "SHA256", nil) else {
                fatalError("OpenSSL has no SHA256 digest: libcrypto is unusable")
            }
            self.md = md
        }
    }

    private static let algorithm = Algorithm()

    public static func hash<C: ContiguousBytes>(_ data: C) -> [UInt8] {
        data.withUnsafeBytes { hash(buffer: $0) }
    }

    public static func hash(buffer: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: byteCount)
        let context = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(context) }
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { out in
            EVP_DigestInit_ex(context, algorithm.md, nil) == 1
                && EVP_DigestUpdate(context, buffer.baseAddress, buffer.count) == 1
                && EVP_DigestFinal_ex(context, out.baseAddress, &length) == 1
        }
        precondition(ok && length == UInt32(byteCount), "OpenSSL SHA-256 failed")
        return digest
    }
}

/// Bytes that can be viewed contiguously; lets hashing take arrays and slices without copies.
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
