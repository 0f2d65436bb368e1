/// A refusal to decode untrusted bytes: what was being decoded, which field,
/// at which byte offset, and what is wrong with it.
public struct DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// The input ended `needed` bytes into a field with only `available` left.
        case truncated(needed: Int, available: Int)
        case unsupportedVersion(UInt8)
        case tooLarge(value: Int, limit: Int)
        case trailingBytes(Int)
        case checksumMismatch
        case invalid(String)
    }

    public var context: String
    public var field: String
    public var offset: Int
    public var reason: Reason

    public init(context: String, field: String, offset: Int, reason: Reason) {
        self.context = context
        self.field = field
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        let what: String
        switch reason {
        case .truncated(let needed, let available):
            what = "truncated: needs \(needed) bytes, \(available) left"
        case .unsupportedVersion(let version):
            what = "unsupported format version \(version)"
        case .tooLarge(let value, let limit):
            what = "is \(value); limit is \(limit)"
        case .trailingBytes(let count):
            what = "\(count) unexpected bytes after the last field"
        case .checksumMismatch:
            what = "checksum does not match: the text was altered or cut"
        case .invalid(let detail):
            what = detail
        }
        return "bad \(context): \(field) at byte \(offset) \(what)"
    }
}
