public import TrailCore

public enum StoreError: Error, Sendable, CustomStringConvertible {
    case rocksDB(RocksDBError)
    /// Stored bytes that fail their own checks: a damaged disk or a bug.
    case corrupt(what: String, detail: String)
    case unknownNamespace(Namespace)
    /// The reader asked for positions that retention removed.
    case trimmed(namespace: Namespace, through: UInt64, requested: UInt64)
    /// A fast cursor made by another relay.
    case cursorFromOtherRelay(cursorRelay: UInt64, thisRelay: UInt64)
    /// A fast cursor past the end of the log: made by another incarnation of this relay, or forged.
    case cursorBeyondLog(namespace: Namespace, position: UInt64, last: UInt64)
    /// A cursor of a kind this read does not take.
    case invalidCursor(String)
    case pendingFull(writer: Int, limit: Int)
    case overloaded(queuedJobs: Int)
    /// The data directory's filesystem has less free space than the store's
    /// reserve: appends are refused until space returns (nothing stored is touched).
    case diskFull(directory: String, availableBytes: UInt64, reserveBytes: UInt64)
    case invalidEvent(String)
    case incompatibleDirectory(String)
    case closed
    case readOnly

    public var description: String {
        switch self {
        case .rocksDB(let error): error.description
        case .corrupt(let what, let detail): "corrupt \(what): \(detail)"
        case .unknownNamespace(let namespace): "namespace \"\(namespace)\" holds no events here"
        case .trimmed(let namespace, let through, let requested):
            "namespace \"\(namespace)\" was trimmed through position \(through); position \(requested) is gone (resume from \(through + 1) or from a newer cursor)"
        case .cursorFromOtherRelay(let cursorRelay, let thisRelay):
            "cursor is a position on relay \(String(cursorRelay, radix: 16)), not this relay \(String(thisRelay, radix: 16)); use a portable cursor to move between relays"
        case .cursorBeyondLog(let namespace, let position, let last):
            "cursor position \(position) is past the end of \"\(namespace)\" (last is \(last))"
        case .pendingFull(let writer, let limit):
            "writer \(writer) holds \(limit) pending events, its limit; refusing more until dependencies arrive"
        case .overloaded(let queued):
            "\(queued) appends are queued for one writer, its limit; retry after a short wait"
        case .diskFull(let directory, let available, let reserve):
            "the disk of \(directory) is nearly full: \(available >> 20) MiB left once the memtables are written out, under the \(reserve >> 20) MiB reserve; appends are refused until space is freed (every acknowledged event is kept)"
        case .invalidEvent(let detail): "invalid event: \(detail)"
        case .invalidCursor(let detail): "invalid cursor: \(detail)"
        case .incompatibleDirectory(let detail): "data directory cannot be used: \(detail)"
        case .closed: "store is closed"
        case .readOnly: "store is open read-only (secondary); appends go to the process that owns the data directory"
        }
    }
}
