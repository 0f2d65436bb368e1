import Foundation

/// How fast one client may append: a token bucket refilled at
/// `eventsPerSecond`, holding at most `burst` events.
public struct AppendRate: Sendable, Hashable, CustomStringConvertible {
    public var eventsPerSecond: Double
    public var burst: Double

    public init(eventsPerSecond: Double, burst: Double? = nil) {
        self.eventsPerSecond = eventsPerSecond
        self.burst = burst ?? max(eventsPerSecond, 1)
    }

    public var description: String { "\(Self.format(eventsPerSecond)) events/s (burst \(Self.format(burst)))" }

    public static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value)
    }
}
