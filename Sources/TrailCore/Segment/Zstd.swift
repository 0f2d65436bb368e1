internal import CZstd

/// zstd compression through libzstd's one-shot API.
///
/// Decompression is told the exact size to expect and refuses anything else,
/// so a hostile frame cannot make it allocate more than its caller allowed.
public enum Zstd {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Level 1 is zstd's fastest standard level: replication is bound by the
    /// CPU, and JSON-like payloads still shrink several times at it.
    public static let defaultLevel: Int32 = 1

    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = defaultLevel) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_compress(out.baseAddress, out.count, input.baseAddress, input.count, level)
        }
        // Compressing into a buffer of compressBound bytes cannot fail but for memory.
        precondition(ZSTD_isError(written) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(written)))")
        output.removeSubrange(written...)
        return output
    }

    /// Decompresses one frame that must expand to exactly `size` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, size: Int) throws(Failure) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_decompress(out.baseAddress, out.count, input.baseAddress, input.count)
        }
        if ZSTD_isError(written) != 0 {
            throw Failure(description: String(cString: ZSTD_getErrorName(written)))
        }
        guard written == size else {
            throw Failure(description: "expands to \(written) bytes; header says \(size)")
        }
        return output
    }
}
