extension String {
    /// The bytes as a string if they are valid UTF-8, nil if not.
    ///
    /// ASCII, the common case for namespaces, types, ids and JSON keys, is
    /// checked by a plain loop and decoded directly: the standard library's
    /// `String(validating:as:)` is not specialized for the caller's buffer type,
    /// and its generic metadata lookups were 7% of a bulk-append client's CPU
    /// (measured with `perf` on `trail-bench compare`).
    @inlinable
    public init?<Bytes: Collection>(validUTF8 bytes: Bytes) where Bytes.Element == UInt8 {
        if bytes.allSatisfy({ $0 < 0x80 }) {
            self.init(decoding: bytes, as: UTF8.self)
            return
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        self = text
    }
}
