import Foundation
import Glibc
import TrailAPI

/// A WebSocket subscriber on a plain blocking socket, for what a client
/// library hides: it reads only when asked, so until then the relay's
/// frames pile up in the kernel's buffers and the relay sees a stalled
/// reader. Server frames are unmasked; only text frames are kept.
final class RawWebSocket {
    let descriptor: Int32
    private var buffer = [UInt8]()

    /// Connects to `127.0.0.1:port` with a receive buffer of `receiveBufferBytes`
    /// (small: the stall reaches the relay sooner) and upgrades `path`.
    init(port: Int, path: String, receiveBufferBytes: Int32 = 8 << 10) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RawWebSocketError("socket: errno \(errno)") }
        var size = receiveBufferBytes
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        // A read that waits this long fails rather than hanging the test.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw RawWebSocketError("connect: errno \(errno)") }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try send(Array(request.utf8))
        let end = Array("\r\n\r\n".utf8)
        while buffer.firstRange(of: end) == nil { try receive() }
        let headerEnd = buffer.firstRange(of: end)!.upperBound
        let status = String(decoding: buffer[..<headerEnd], as: UTF8.self)
        guard status.hasPrefix("HTTP/1.1 101") else { throw RawWebSocketError("upgrade refused: \(status)") }
        buffer.removeFirst(headerEnd)
    }

    deinit { close(descriptor) }

    /// The bytes received on this socket that nobody has read yet, as the kernel counts them (Linux).
    var unreadBytes: Int {
        var count: Int32 = 0
        _ = ioctl(descriptor, UInt(FIONREAD), &count)
        return Int(count)
    }

    /// The next text message, read from the socket as needed.
    func nextText() throws -> [UInt8] {
        while true {
            if let (opcode, payload, used) = Self.frame(in: buffer) {
                buffer.removeFirst(used)
                if opcode == 0x1 { return payload }
                if opcode == 0x8 { throw RawWebSocketError("the relay closed the connection") }
                continue
            }
            try receive()
        }
    }

    /// The next `events` message's positions (other messages are skipped).
    func nextEventPositions() throws -> [UInt64] {
        while true {
            let message = try JSONDecoder().decode(StreamMessage.self, from: Data(try nextText()))
            if message.kind == "events" { return (message.events ?? []).map(\.position) }
        }
    }

    static func frame(in bytes: [UInt8]) -> (opcode: UInt8, payload: [UInt8], used: Int)? {
        guard bytes.count >= 2 else { return nil }
        var length = Int(bytes[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard bytes.count >= offset + length else { return nil }
        return (bytes[0] & 0x0F, Array(bytes[offset..<offset + length]), offset + length)
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw RawWebSocketError("send: errno \(errno)") }
            sent += count
        }
    }

    private func receive() throws {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw RawWebSocketError(count == 0 ? "the relay closed the socket" : "recv: errno \(errno)") }
        buffer.append(contentsOf: chunk[..<count])
    }
}

struct RawWebSocketError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
