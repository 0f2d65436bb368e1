/// A hybrid logical clock reading: 48 bits of physical milliseconds since
/// the Unix epoch, then 16 bits of logical counter, as one big-endian `UInt64`.
/// Readings compare as integers; a later reading is greater.
public struct HybridTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let logicalBits: UInt64 = 16
    public static let logicalMax: UInt64 = (1 << logicalBits) - 1
    public static let zero = HybridTimestamp(rawValue: 0)

    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(physicalMilliseconds: UInt64, logical: UInt16) {
        precondition(physicalMilliseconds < 1 << 48, "physical time beyond year 10889")
        rawValue = physicalMilliseconds << Self.logicalBits | UInt64(logical)
    }

    public var physicalMilliseconds: UInt64 { rawValue >> Self.logicalBits }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue & Self.logicalMax) }
    public var description: String { "\(physicalMilliseconds).\(logical)" }

    public static func < (lhs: HybridTimestamp, rhs: HybridTimestamp) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A hybrid logical clock (Kulkarni et al., 2014). It is handed physical time
/// rather than reading it, so that tests and simulations control it.
///
/// Every reading is greater than every reading this clock produced or observed
/// before, and stays within `driftMillisecondsMax` of physical time: a remote
/// reading further ahead than that is refused rather than dragging the clock.
public struct HybridClock: Sendable {
    public private(set) var last: HybridTimestamp
    /// A peer clock this far ahead of ours is refused: one minute covers NTP
    /// misconfiguration seen in practice while stopping a clock set to next year.
    public var driftMillisecondsMax: UInt64

    public init(last: HybridTimestamp = .zero, driftMillisecondsMax: UInt64 = 60_000) {
        self.last = last
        self.driftMillisecondsMax = driftMillisecondsMax
    }

    /// A reading for a local event.
    public mutating func now(physicalMilliseconds: UInt64) -> HybridTimestamp {
        if physicalMilliseconds > last.physicalMilliseconds {
            last = HybridTimestamp(physicalMilliseconds: physicalMilliseconds, logical: 0)
        } else {
            last = Self.successor(of: last)
        }
        return last
    }

    /// Merges a remote reading (on receipt of an event) and returns a reading after both.
    public mutating func observe(_ remote: HybridTimestamp, physicalMilliseconds: UInt64) throws(ClockError) -> HybridTimestamp {
        guard remote.physicalMilliseconds <= physicalMilliseconds + driftMillisecondsMax else {
            throw ClockError.remoteTooFarAhead(
                remote: remote, aheadMilliseconds: remote.physicalMilliseconds - physicalMilliseconds,
                limitMilliseconds: driftMillisecondsMax)
        }
        let latest = max(last, remote)
        if physicalMilliseconds > latest.physicalMilliseconds {
            last = HybridTimestamp(physicalMilliseconds: physicalMilliseconds, logical: 0)
        } else {
            last = Self.successor(of: latest)
        }
        return last
    }

    private static func successor(of reading: HybridTimestamp) -> HybridTimestamp {
        // When the logical counter is full, borrow the next millisecond: still
        // monotonic, and at most 65536 events per millisecond run ahead.
        if reading.logical == UInt16.max {
            return HybridTimestamp(physicalMilliseconds: reading.physicalMilliseconds + 1, logical: 0)
        }
        return HybridTimestamp(rawValue: reading.rawValue + 1)
    }
}

public enum ClockError: Error, Equatable, Sendable, CustomStringConvertible {
    case remoteTooFarAhead(remote: HybridTimestamp, aheadMilliseconds: UInt64, limitMilliseconds: UInt64)

    public var description: String {
        switch self {
        case .remoteTooFarAhead(let remote, let ahead, let limit):
            "timestamp \(remote) is \(ahead) ms ahead of this clock; limit is \(limit) ms"
        }
    }
}
