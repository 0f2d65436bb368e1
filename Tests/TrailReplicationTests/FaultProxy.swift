import NIOCore
import TrailCore
import NIOPosix

/// A TCP proxy on loopback between two relays that a test can cut and heal:
/// cutting closes every connection through it and refuses new ones (a
/// network partition as both relays see it); healing lets them through again.
final class FaultProxy: Sendable {
    let port: Int
    private let server: any Channel
    private let state = Locked(State())

    struct State {
        var cut = false
        var open: [ObjectIdentifier: any Channel] = [:]
    }

    init(to target: Int) async throws {
        let box = Box()
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                guard let proxy = box.proxy, !proxy.isCut else { return inbound.close() }
                return ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: "127.0.0.1", port: target)
                    .flatMap { outbound in
                        let (toOutbound, toInbound) = GlueHandler.matchedPair()
                        proxy.track(inbound)
                        proxy.track(outbound)
                        // The inbound side is registered, and starts reading, once this completes.
                        return inbound.pipeline.addHandler(toOutbound).flatMap {
                            outbound.pipeline.addHandler(toInbound)
                        }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = server.localAddress?.port ?? 0
        box.proxy = self
    }

    final class Box: @unchecked Sendable {
        // Set once, before the first connection can arrive.
        var proxy: FaultProxy?
    }

    var isCut: Bool { state.withLock { $0.cut } }

    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.open[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in self?.state.withLock { _ = $0.open.removeValue(forKey: id) } }
    }

    /// Closes every connection through the proxy and refuses new ones.
    func cut() {
        let channels = state.withLock { state -> [any Channel] in
            state.cut = true
            return Array(state.open.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    func heal() { state.withLock { $0.cut = false } }

    func close() async { try? await server.close() }
}

/// Forwards bytes between two channels with backpressure (after SwiftNIO's
/// connect-proxy example): each side reads only when the other can write.
final class GlueHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler(), second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerCloseFull() { context?.close(promise: nil) }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }
    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.partnerWrite(data) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }
    func channelInactive(context: ChannelHandlerContext) { partner?.partnerCloseFull() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }
    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable { context.read() } else { pendingRead = true }
    }
}
