/// A namespace: a UTF-8 name of 1–255 bytes, hierarchical with `/`
/// (`doc/design-42`, `auction/task-7`).
///
/// Segments are non-empty (no leading, trailing or doubled `/`) and hold no
/// control characters, so that prefix filters and shell use are unambiguous.
public struct Namespace: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCountMax = 255
    public let name: String

    public init(_ name: String) throws(ModelError) {
        let utf8 = Array(name.utf8)
        guard !utf8.isEmpty else { throw ModelError.invalidNamespace(name, "is empty") }
        guard utf8.count <= Self.byteCountMax else {
            throw ModelError.invalidNamespace(name, "is \(utf8.count) bytes; limit is \(Self.byteCountMax)")
        }
        guard utf8.first != UInt8(ascii: "/"), utf8.last != UInt8(ascii: "/") else {
            throw ModelError.invalidNamespace(name, "starts or ends with '/'")
        }
        for (index, byte) in utf8.enumerated() {
            if byte < 0x20 || byte == 0x7F {
                throw ModelError.invalidNamespace(name, "has a control character at byte \(index)")
            }
            if byte == UInt8(ascii: "/"), index > 0, utf8[index - 1] == UInt8(ascii: "/") {
                throw ModelError.invalidNamespace(name, "has an empty segment at byte \(index)")
            }
        }
        self.name = name
    }

    public var description: String { name }
    public var segments: [Substring] { name.split(separator: "/") }

    /// True when `prefix` names this namespace or one of its ancestors, segment by segment.
    public func hasPrefix(_ prefix: String) -> Bool {
        if prefix.isEmpty || prefix == name { return true }
        let stem = prefix.hasSuffix("/") ? prefix : prefix + "/"
        return name.hasPrefix(stem)
    }

    public static func < (lhs: Namespace, rhs: Namespace) -> Bool { lhs.name < rhs.name }
}

public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidNamespace(String, String)
    case invalidType(String, String)
    case tooManyParents(count: Int, limit: Int)
    case payloadTooLarge(bytes: Int, limit: Int)
    case invalidID(String)

    public var description: String {
        switch self {
        case .invalidNamespace(let name, let why): "namespace \"\(name)\" \(why)"
        case .invalidType(let type, let why): "event type \"\(type)\" \(why)"
        case .tooManyParents(let count, let limit): "event has \(count) parents; limit is \(limit)"
        case .payloadTooLarge(let bytes, let limit): "payload is \(bytes) bytes; limit is \(limit)"
        case .invalidID(let text): "event id \"\(text)\" is not 64 hexadecimal digits"
        }
    }
}
