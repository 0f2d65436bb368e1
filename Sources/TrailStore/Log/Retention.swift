/// How much of a namespace's log to keep. A limit of nil does not apply.
/// Trimming removes a prefix of the log and records how far it went, so that
/// a reader who asks for trimmed positions is told so.
public struct Retention: Hashable, Sendable, CustomStringConvertible {
    /// Events older than this, by their own timestamps, against the store's clock.
    public var ageMillisecondsMax: UInt64?
    public var eventCountMax: UInt64?
    /// Bytes of canonical event encodings kept.
    public var byteCountMax: UInt64?

    public init(ageMillisecondsMax: UInt64? = nil, eventCountMax: UInt64? = nil, byteCountMax: UInt64? = nil) {
        self.ageMillisecondsMax = ageMillisecondsMax
        self.eventCountMax = eventCountMax
        self.byteCountMax = byteCountMax
    }

    public static let keepAll = Retention()
    public var keepsAll: Bool { ageMillisecondsMax == nil && eventCountMax == nil && byteCountMax == nil }

    public var description: String {
        if keepsAll { return "keep all" }
        var parts = [String]()
        if let ageMillisecondsMax { parts.append("age ≤ \(ageMillisecondsMax) ms") }
        if let eventCountMax { parts.append("count ≤ \(eventCountMax)") }
        if let byteCountMax { parts.append("bytes ≤ \(byteCountMax)") }
        return parts.joined(separator: ", ")
    }
}
