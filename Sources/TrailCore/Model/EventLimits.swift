/// Bounds on an event's fields. `payloadBytesMax` is a setting; the others are
/// part of the format and frozen.
public struct EventLimits: Hashable, Sendable {
    /// The format's own ceiling on a payload (the field is 32 bits; 64 MiB keeps
    /// one event well inside a RocksDB write batch and a replication frame).
    public static let payloadBytesCeiling = 64 << 20
    /// Parents beyond this are refused: a frontier of 64 concurrent heads is
    /// far more than any workload merges at once, and it bounds the id check.
    public static let parentCountMax = 64
    public static let typeByteCountMax = 255

    /// Payloads larger than this are refused. Default 1 MiB.
    public var payloadBytesMax: Int

    public init(payloadBytesMax: Int = 1 << 20) {
        precondition(payloadBytesMax >= 0 && payloadBytesMax <= Self.payloadBytesCeiling,
                     "payloadBytesMax must be within 0...\(Self.payloadBytesCeiling)")
        self.payloadBytesMax = payloadBytesMax
    }

    public static let `default` = EventLimits()
    /// Only the format's ceiling: for reading back events some relay already accepted.
    public static let unbounded = EventLimits(payloadBytesMax: payloadBytesCeiling)
}
