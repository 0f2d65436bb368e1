public import TrailCore

/// The binary bulk body (Docs/FORMAT.md §5): each event's canonical encoding,
/// signature included, after its length as a big-endian u32. Bulk appends
/// send it; binary reads (`Accept: application/x-trail-events`) answer it.
public enum BulkBody {
    public static let mediaType = "application/x-trail-events"

    /// A body that does not decode: which event, at which byte, and why.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        /// The index of the event at fault (`body[index]`).
        public let index: Int
        public let offset: Int
        /// True when the length prefixes are wrong; false when an event does not decode.
        public let isFraming: Bool
        public let reason: String
        public var description: String { "body[\(index)] at offset \(offset): \(reason)" }
    }

    public static func encode(_ events: [Event]) -> [UInt8] {
        var writer = ByteWriter(capacity: events.reduce(0) { $0 + 4 + $1.encodedByteCount })
        for event in events {
            writer.write(UInt32(event.encodedByteCount))
            event.encode(into: &writer)
        }
        return writer.bytes
    }

    /// Decodes every event (each id is the hash of its bytes) before returning any.
    public static func decode(_ bytes: UnsafeRawBufferPointer, limits: EventLimits) throws(Invalid) -> [Event] {
        var events = [Event]()
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else {
                throw Invalid(index: events.count, offset: offset, isFraming: true, reason: "\(bytes.count - offset) bytes are too few for a length prefix")
            }
            let length = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            guard length <= bytes.count - offset - 4 else {
                throw Invalid(index: events.count, offset: offset, isFraming: true, reason: "length \(length) runs past the body's end")
            }
            do {
                events.append(try Event(
                    decoding: UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 4 + length)]), limits: limits, after: events.last))
            } catch {
                throw Invalid(index: events.count, offset: offset + 4, isFraming: false, reason: "\(error)")
            }
            offset += 4 + length
        }
        return events
    }
}
