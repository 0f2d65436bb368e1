import Foundation
public import TrailCore

/// Workload payloads are small JSON objects. These read them without
/// trusting them: a field that is missing or of the wrong kind makes the
/// event not count (a fold never traps on another agent's bytes).
struct Payload {
    let fields: [String: Any]

    init?(_ event: Event) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(event.payload)) as? [String: Any] else { return nil }
        fields = object
    }

    func int(_ key: String) -> Int64? {
        guard let number = fields[key] as? NSNumber, let value = Int64(exactly: number.doubleValue),
              Double(number.int64Value) == number.doubleValue else { return nil }
        return value
    }

    func string(_ key: String) -> String? { fields[key] as? String }

    func key(_ name: String) -> PublicKey? { string(name).flatMap { try? PublicKey(hex: $0) } }

    func id(_ name: String) -> EventID? { string(name).flatMap { try? EventID(hex: $0) } }
}

/// A payload as JSON text with sorted keys (the same bytes for the same fields).
func json(_ fields: [String: Any]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}

extension Event {
    /// Orders events by their own timestamp, then id: a total order every agent agrees on.
    static func precedes(_ a: Event, _ b: Event) -> Bool { (a.timestamp, a.id) < (b.timestamp, b.id) }
}
