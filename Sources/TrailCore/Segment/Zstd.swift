internal import CZstd

/// zstd compression through libzstd, with its contexts reused.
///
/// libzstd's one-shot `ZSTD_compress` and `ZSTD_decompress` create and free
/// a context on every call; for the small segments of a live federation
/// (often one event) that setup cost more than the compression itself
/// (4% of the ten-relay scale run's CPU). Contexts are kept in a small pool
/// instead, each used by one caller at a time.
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

    /// Contexts kept for reuse, per direction; a busier moment creates more
    /// and frees what the pool cannot hold.
    static let pooledMax = 8
    private static let compressors = ContextPool(create: { ZSTD_createCCtx() }, free: { _ = ZSTD_freeCCtx($0) })
    private static let decompressors = ContextPool(create: { ZSTD_createDCtx() }, free: { _ = ZSTD_freeDCtx($0) })

    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = defaultLevel) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = compressors.with { context in
            output.withUnsafeMutableBytes { out in
                ZSTD_compressCCtx(context, out.baseAddress, out.count, input.baseAddress, input.count, level)
            }
        }
        // Compressing into a buffer of compressBound bytes cannot fail but for memory.
        precondition(ZSTD_isError(written) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(written)))")
        output.removeSubrange(written...)
        return output
    }

    /// Decompresses one frame that must expand to exactly `size` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, size: Int) throws(Failure) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        let written = decompressors.with { context in
            output.withUnsafeMutableBytes { out in
                ZSTD_decompressDCtx(context, out.baseAddress, out.count, input.baseAddress, input.count)
            }
        }
        if ZSTD_isError(written) != 0 {
            throw Failure(description: String(cString: ZSTD_getErrorName(written)))
        }
        guard written == size else {
            throw Failure(description: "expands to \(written) bytes; header says \(size)")
        }
        return output
    }

    /// A few libzstd contexts of one kind. A context is used by one thread at
    /// a time; libzstd resets it at the start of each one-shot call.
    private final class ContextPool: @unchecked Sendable {
        private let create: () -> OpaquePointer?
        private let free: (OpaquePointer) -> Void
        private let idle = Locked<[OpaquePointer]>([])

        init(create: @escaping () -> OpaquePointer?, free: @escaping (OpaquePointer) -> Void) {
            self.create = create
            self.free = free
        }

        func with<R>(_ body: (OpaquePointer) -> R) -> R {
            guard let context = idle.withLock({ $0.popLast() }) ?? create() else {
                preconditionFailure("libzstd could not allocate a context")
            }
            let result = body(context)
            let kept = idle.withLock { idle -> Bool in
                guard idle.count < Zstd.pooledMax else { return false }
                idle.append(context)
                return true
            }
            if !kept { free(context) }
            return result
        }
    }
}
