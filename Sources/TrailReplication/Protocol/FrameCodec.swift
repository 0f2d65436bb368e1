import NIOCore
import TrailCore

/// Splits the byte stream into frames: a 4-byte big-endian length, then that
/// many bytes. A length above the limit or a frame that does not decode is a
/// `ProtocolError`, which ends the link (the link answers with an ERROR frame
/// naming it); nothing is buffered beyond one frame of the limit.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame
    let frameBytesMax: UInt32
    let limits: EventLimits

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length <= frameBytesMax else {
            throw ProtocolError(.oversizedFrame, "a frame of \(length) bytes; this relay accepts at most \(frameBytesMax)")
        }
        guard length > 0 else { throw ProtocolError(.malformedFrame, "a frame of 0 bytes has no type") }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let bytes = buffer.readBytes(length: Int(length))!
        do {
            context.fireChannelRead(wrapInboundOut(try Frame(decoding: bytes, limits: limits)))
        } catch {
            throw ProtocolError(.malformedFrame, error.description)
        }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            throw ProtocolError(.malformedFrame, "the connection closed \(buffer.readableBytes) bytes into a frame")
        }
        return .needMoreData
    }
}

struct FrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = Frame

    func encode(data: Frame, out: inout ByteBuffer) throws {
        let bytes = data.encoded()
        out.reserveCapacity(minimumWritableBytes: 4 + bytes.count)
        out.writeInteger(UInt32(bytes.count))
        out.writeBytes(bytes)
    }
}
