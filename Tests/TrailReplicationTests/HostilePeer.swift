import Foundation
import NIOCore
import NIOPosix
import TrailCore
import TrailReplication

/// A peer that writes raw bytes: to test what a relay does with a client
/// that is not a Trail relay, a relay with the wrong key, or one that breaks
/// the protocol after a valid handshake.
final class HostilePeer {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer: [UInt8] = []

    init(port: Int) async throws {
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        inbound = channel.inbound.makeAsyncIterator()
        outbound = channel.outbound
    }

    func write(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    func send(_ frame: Frame) async throws {
        let body = frame.encoded()
        var length = ByteBuffer()
        length.writeInteger(UInt32(body.count))
        try await write(Array(length.readableBytesView) + body)
    }

    /// The next frame from the relay, or nil once it closed the connection.
    func receive() async throws -> Frame? {
        while true {
            if buffer.count >= 4 {
                let length = Int(buffer[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                if buffer.count >= 4 + length {
                    let body = Array(buffer[4..<4 + length])
                    buffer.removeFirst(4 + length)
                    return try Frame(decoding: body)
                }
            }
            guard let chunk = try await inbound.next() else { return nil }
            buffer += Array(chunk.readableBytesView)
        }
    }

    /// Frames until the relay closes the connection; its ERROR frame is among them.
    func receiveUntilClosed() async throws -> [Frame] {
        var frames = [Frame]()
        do {
            while let frame = try await receive() { frames.append(frame) }
        } catch {}
        return frames
    }

    /// A valid handshake as `key`, signing the relay's nonce (or `signNonce` when given).
    /// Returns the relay's HELLO.
    @discardableResult
    func handshake(as key: SigningKey, signNonce: [UInt8]? = nil, rotations: [KeyRotation] = []) async throws -> Frame.Hello? {
        try await send(.hello(Frame.Hello(
            relay: key.publicKey, origin: key.publicKey, incarnation: 1,
            nonce: [UInt8](repeating: 9, count: 32), frameBytesMax: 1 << 24, prefixes: [], rotations: rotations)))
        guard case .hello(let hello) = try await receive() else { return nil }
        try await send(.proof(key.sign(Frame.proofMessage(nonce: signNonce ?? hello.nonce, signer: key.publicKey, verifier: hello.relay))))
        guard case .proof = try await receive() else { return nil }
        return hello
    }

    func close() async {
        try? await channel.channel.close()
    }
}

func errorCode(in frames: [Frame]) -> ProtocolError? {
    for case .error(let error) in frames { return error }
    return nil
}
