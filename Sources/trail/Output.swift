import Foundation
import TrailCore
import TrailStore

/// One JSON object per line, for scripts and `jq`.
enum JSONLine {
    static func encode(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func event(_ stored: StoredEvent) -> String {
        let event = stored.event
        var object: [String: Any] = [
            "position": stored.position, "id": event.id.hex, "namespace": event.namespace.name,
            "origin": stored.origin.hex, "originSeq": stored.originSeq,
            "timestamp": event.timestamp.rawValue, "timeMilliseconds": event.timestamp.physicalMilliseconds,
            "type": event.type, "parents": event.parents.map(\.hex),
        ]
        if let author = event.author { object["author"] = author.hex }
        if let signature = event.signature { object["signature"] = Hex.encode(signature.bytes) }
        if let text = String(validating: event.payload, as: UTF8.self) {
            object["payload"] = text
        } else {
            object["payloadBase64"] = Data(event.payload).base64EncodedString()
        }
        return encode(object)
    }

    static func result(_ result: AppendResult) -> String {
        var object: [String: Any] = ["id": result.id.hex]
        switch result.outcome {
        case .appended(let placement), .duplicate(let placement):
            object["outcome"] = result.outcome == .appended(placement) ? "appended" : "duplicate"
            object["position"] = placement.position
            object["origin"] = placement.origin.hex
            object["originSeq"] = placement.originSeq
        case .pending: object["outcome"] = "pending"
        case .conflict(let existing):
            object["outcome"] = "conflict"
            object["existing"] = existing.hex
        case .trimmed: object["outcome"] = "trimmed"
        case .headMoved(let last):
            object["outcome"] = "head_moved"
            object["lastPosition"] = last
        }
        return encode(object)
    }
}

/// Human-readable lines.
enum TextLine {
    static func event(_ stored: StoredEvent) -> String {
        let event = stored.event
        let payload = String(validating: event.payload, as: UTF8.self).map { $0.debugDescription } ?? "<\(event.payload.count) bytes>"
        let author = event.author.map { " by \($0.hex.prefix(8))" } ?? ""
        let parents = event.parents.isEmpty ? "" : " after " + event.parents.map(\.short).joined(separator: ",")
        return "\(stored.position)\t\(event.id.short)\t\(event.type)\(author)\(parents)\t\(payload)"
    }

    static func result(_ result: AppendResult) -> String {
        switch result.outcome {
        case .appended(let placement):
            "appended \(result.id.hex) at position \(placement.position) (origin \(placement.origin.hex.prefix(16)) seq \(placement.originSeq))"
        case .duplicate(let placement):
            "duplicate \(result.id.hex): already at position \(placement.position)"
        case .pending:
            "pending \(result.id.hex): waits for a parent; it enters the log when the parent arrives"
        case .conflict(let existing):
            "conflict \(result.id.hex): its origin sequence is held by \(existing.hex)"
        case .trimmed:
            "trimmed \(result.id.hex): its origin sequence was held and has been trimmed"
        case .headMoved(let last):
            "not appended \(result.id.hex): the log ends at \(last), not where the condition said"
        }
    }
}
