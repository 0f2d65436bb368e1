internal import CRocksDB

/// A failure reported by RocksDB, naming the C call that failed.
public struct RocksDBError: Error, Sendable, CustomStringConvertible {
    public let call: String
    public let message: String

    public var description: String { "RocksDB \(call) failed: \(message)" }

    /// Runs `body` with an `errptr` and turns a non-nil result into a thrown error.
    static func check<R>(_ call: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) throws(RocksDBError) -> R {
        var error: UnsafeMutablePointer<CChar>?
        let result = body(&error)
        if let error {
            let message = String(cString: error)
            rocksdb_free(error)
            throw RocksDBError(call: call, message: message)
        }
        return result
    }
}
