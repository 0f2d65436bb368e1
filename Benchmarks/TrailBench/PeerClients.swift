import Foundation
import TrailCore
#if canImport(Glibc)
import CEpoll
import Glibc
#endif

// Minimal clients of Redis (RESP) and NATS (with JetStream's API subjects)
// for the comparison: blocking sockets on loopback, one thread each, every
// request pipelined in batches. Trail's side uses TrailClient over HTTP with
// the same batch size, so each system is driven the same way.

/// A blocking TCP connection to 127.0.0.1 with a read buffer.
final class BlockingSocket: @unchecked Sendable {
    // Used by one thread at a time.
    let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = errno
            Glibc.close(fd)
            throw BenchError("cannot connect to 127.0.0.1:\(port): errno \(error)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { Glibc.close(fd) }

    /// Connects, retrying while the server starts (bounded).
    static func connect(port: Int, within seconds: Double = 10) throws -> BlockingSocket {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do { return try BlockingSocket(port: port) } catch {
                if Date() > deadline { throw error }
                usleep(20_000)
            }
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                guard sent > 0 else { throw BenchError("send failed: errno \(errno)") }
                offset += sent
            }
        }
    }

    private func fill() throws {
        if start > 0 {
            buffer.withUnsafeMutableBytes { raw in
                if end > start { memmove(raw.baseAddress!, raw.baseAddress! + start, end - start) }
            }
            end -= start
            start = 0
        }
        if end == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + end, $0.count - end, 0) }
        guard received > 0 else { throw BenchError("the server closed the connection") }
        end += received
    }

    /// The next line, without its CR LF.
    func line() throws -> [UInt8] {
        var scanned = start
        while true {
            while scanned + 1 < end {
                if buffer[scanned] == 13, buffer[scanned + 1] == 10 {
                    let line = Array(buffer[start..<scanned])
                    start = scanned + 2
                    return line
                }
                scanned += 1
            }
            let offset = scanned - start
            try fill()
            scanned = start + offset
        }
    }

    /// One `recv` into the buffer (after `poll` said the socket is readable); false when the peer closed.
    func receiveAvailable() -> Bool {
        do { try fill() } catch { return false }
        return true
    }

    /// Hands the unread bytes to `body`, which returns how many it consumed.
    func consume(_ body: (UnsafeRawBufferPointer) throws -> Int) rethrows {
        let used = try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
        start += used
    }

    func bytes(_ count: Int) throws -> [UInt8] {
        while end - start < count { try fill() }
        defer { start += count }
        return Array(buffer[start..<start + count])
    }
}

// MARK: Redis

enum RESP: Equatable {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8]?)
    case array([RESP]?)

    var text: String? {
        switch self {
        case .simple(let text): text
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }
}

final class RedisConnection: @unchecked Sendable {
    let socket: BlockingSocket

    init(port: Int) throws { socket = try BlockingSocket.connect(port: port) }

    static func append(_ parts: [[UInt8]], to command: inout [UInt8]) {
        command += Array("*\(parts.count)\r\n".utf8)
        for part in parts {
            command += Array("$\(part.count)\r\n".utf8)
            command += part
            command += [13, 10]
        }
    }

    func reply() throws -> RESP {
        let line = try socket.line()
        guard let kind = line.first else { throw BenchError("an empty Redis reply line") }
        let rest = String(decoding: line.dropFirst(), as: UTF8.self)
        switch kind {
        case UInt8(ascii: "+"): return .simple(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ":"): return .integer(Int(rest) ?? 0)
        case UInt8(ascii: "$"):
            let count = Int(rest) ?? -1
            guard count >= 0 else { return .bulk(nil) }
            let bytes = try socket.bytes(count + 2)
            return .bulk(Array(bytes.prefix(count)))
        case UInt8(ascii: "*"):
            let count = Int(rest) ?? -1
            guard count >= 0 else { return .array(nil) }
            return .array(try (0..<count).map { _ in try reply() })
        default:
            throw BenchError("a Redis reply starting with \(kind)")
        }
    }

    func call(_ parts: [String]) throws -> RESP {
        var command = [UInt8]()
        Self.append(parts.map { Array($0.utf8) }, to: &command)
        try socket.write(command)
        let answer = try reply()
        if case .error(let message) = answer { throw BenchError("redis \(parts.first ?? ""): \(message)") }
        return answer
    }

    /// Sends `count` pipelined commands and reads every reply; an error reply throws.
    func pipeline(_ commands: [UInt8], count: Int) throws {
        try socket.write(commands)
        for _ in 0..<count {
            if case .error(let message) = try reply() { throw BenchError("redis: \(message)") }
        }
    }

    /// `INFO section` as key → value.
    func info(_ section: String) throws -> [String: String] {
        guard let text = try call(["INFO", section]).text else { return [:] }
        var fields = [String: String]()
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }
}

// MARK: NATS

struct NATSMessage {
    var subject: String
    var sid: Int
    var reply: String?
    var payload: [UInt8]
}

final class NATSConnection: @unchecked Sendable {
    let socket: BlockingSocket
    private var nextInbox = 0
    private var inboxSubscribed = false
    let inbox = "_INBOX.bench\(UInt32.random(in: 0...UInt32.max))"

    init(port: Int) throws {
        socket = try BlockingSocket.connect(port: port)
        let info = try socket.line()
        guard info.starts(with: Array("INFO".utf8)) else { throw BenchError("NATS did not greet with INFO") }
        try socket.write(Array(#"CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}"#.utf8) + [13, 10]
                         + Array("PING\r\n".utf8))
        while true {
            let line = try socket.line()
            if line == Array("PONG".utf8) { break }
            if line.starts(with: Array("-ERR".utf8)) { throw BenchError("NATS: \(String(decoding: line, as: UTF8.self))") }
        }
    }

    func subscribe(_ subject: String, sid: Int) throws {
        try socket.write(Array("SUB \(subject) \(sid)\r\n".utf8))
    }

    static func publish(_ subject: String, reply: String?, payload: [UInt8], into command: inout [UInt8]) {
        command += Array("PUB \(subject) \(reply.map { $0 + " " } ?? "")\(payload.count)\r\n".utf8)
        command += payload
        command += [13, 10]
    }

    /// The next message for any subscription; answers the server's PINGs.
    func message() throws -> NATSMessage {
        while true {
            let line = try socket.line()
            if line.starts(with: Array("MSG ".utf8)) || line.starts(with: Array("HMSG ".utf8)) {
                let fields = line.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
                let headers = fields[0] == "HMSG"
                // MSG subject sid [reply] size; HMSG subject sid [reply] headerSize totalSize
                let sizeFields = headers ? 2 : 1
                let hasReply = fields.count == 3 + sizeFields
                guard let total = Int(fields[fields.count - 1]) else { throw BenchError("a NATS MSG line without a size") }
                let bytes = try socket.bytes(total + 2)
                let headerSize = headers ? Int(fields[fields.count - 2]) ?? 0 : 0
                return NATSMessage(subject: fields[1], sid: Int(fields[2]) ?? 0, reply: hasReply ? fields[3] : nil,
                                   payload: Array(bytes[headerSize..<total]))
            }
            if line == Array("PING".utf8) { try socket.write(Array("PONG\r\n".utf8)); continue }
            if line.starts(with: Array("-ERR".utf8)) { throw BenchError("NATS: \(String(decoding: line, as: UTF8.self))") }
            // +OK, PONG, INFO updates: nothing to do.
        }
    }

    /// A JetStream API request and its answer (JSON), waiting on this connection's inbox.
    func request(_ subject: String, _ json: String) throws -> String {
        if !inboxSubscribed {
            try subscribe(inbox + ".*", sid: 1)
            inboxSubscribed = true
        }
        nextInbox += 1
        var command = [UInt8]()
        Self.publish(subject, reply: "\(inbox).\(nextInbox)", payload: Array(json.utf8), into: &command)
        try socket.write(command)
        while true {
            let message = try message()
            if message.sid == 1, message.subject == "\(inbox).\(nextInbox)" {
                let answer = String(decoding: message.payload, as: UTF8.self)
                if answer.contains("\"error\"") { throw BenchError("JetStream \(subject): \(answer)") }
                return answer
            }
        }
    }

    /// Publishes `payloads` to JetStream, pipelined, and reads every ack.
    func publishAcked(_ messages: [(subject: String, payload: [UInt8])]) throws {
        if !inboxSubscribed {
            try subscribe(inbox + ".*", sid: 1)
            inboxSubscribed = true
        }
        var command = [UInt8]()
        command.reserveCapacity(messages.count * 320)
        for message in messages {
            nextInbox += 1
            Self.publish(message.subject, reply: "\(inbox).\(nextInbox)", payload: message.payload, into: &command)
        }
        try socket.write(command)
        var acked = 0
        while acked < messages.count {
            let message = try message()
            guard message.sid == 1 else { continue }
            if message.payload.count > 8, String(decoding: message.payload, as: UTF8.self).contains("\"error\"") {
                throw BenchError("JetStream publish: \(String(decoding: message.payload, as: UTF8.self))")
            }
            acked += 1
        }
    }
}

/// A free loopback port (bound and released: a server started right after takes it).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw BenchError("cannot find a free port: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs `body(lane)` for lanes 0..<count on threads of their own (blocking
/// clients must not hold the cooperative pool) and waits for all.
func threads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) async throws {
    let failure = Locked<(any Error)?>(nil)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let group = DispatchGroup()
        for lane in 0..<count {
            group.enter()
            let thread = Thread {
                do { try body(lane) } catch { failure.withLock { $0 = $0 ?? error } }
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.notify(queue: .global()) { continuation.resume() }
    }
    if let error = failure.withLock({ $0 }) { throw error }
}

// MARK: Reading many subscribers on one thread

/// Where one complete RESP value starting at `at` ends, or nil when the
/// bytes hold only part of it; `visit` sees every bulk string. Allocates nothing.
func skimRESP(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ visit: (UnsafeRawBufferPointer) -> Void) -> Int? {
    guard at < bytes.count else { return nil }
    var index = at + 1
    while index + 1 < bytes.count, !(bytes[index] == 13 && bytes[index + 1] == 10) { index += 1 }
    guard index + 1 < bytes.count else { return nil }
    var number = 0
    var negative = false
    for position in (at + 1)..<index {
        if bytes[position] == UInt8(ascii: "-") { negative = true } else { number = number * 10 + Int(bytes[position] &- 48) }
    }
    let next = index + 2
    switch bytes[at] {
    case UInt8(ascii: "$"):
        if negative { return next }
        guard next + number + 2 <= bytes.count else { return nil }
        visit(UnsafeRawBufferPointer(rebasing: bytes[next..<next + number]))
        return next + number + 2
    case UInt8(ascii: "*"):
        if negative { return next }
        var position = next
        for _ in 0..<number {
            guard let end = skimRESP(bytes, position, visit) else { return nil }
            position = end
        }
        return position
    default:
        return next
    }
}

/// The send time in a payload `t<nanoseconds>`, or nil.
func sentTime(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
    guard bytes.count > 1, bytes[0] == UInt8(ascii: "t") else { return nil }
    var value: UInt64 = 0
    for byte in bytes.dropFirst() {
        guard byte >= 48, byte <= 57 else { return nil }
        value = value * 10 + UInt64(byte - 48)
    }
    return value
}

/// Reads `sockets` on the calling thread with epoll(7), the way an event loop
/// would, handing each its unread bytes; `handle(index, bytes)` returns the
/// bytes it consumed. Stops when `done()` or at `deadline`.
func pollLoop(_ sockets: [BlockingSocket], until deadline: Date, done: () -> Bool,
              _ handle: (Int, UnsafeRawBufferPointer) throws -> Int) throws {
    // epoll, not poll(2): poll hands the kernel every descriptor on every call,
    // which with a thousand subscribers cost the reader more than the reading.
    let epoll = epoll_create1(0)
    guard epoll >= 0 else { throw BenchError("epoll_create1 failed: errno \(errno)") }
    defer { close(epoll) }
    for (index, socket) in sockets.enumerated() {
        var event = epoll_event()
        event.events = UInt32(EPOLLIN.rawValue)
        event.data.u64 = UInt64(index)
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, socket.fd, &event) == 0 else { throw BenchError("epoll_ctl failed: errno \(errno)") }
    }
    var events = [epoll_event](repeating: epoll_event(), count: 1024)
    while !done(), Date() < deadline {
        let ready = epoll_wait(epoll, &events, Int32(events.count), 100)
        guard ready > 0 else { continue }
        for event in events[0..<Int(ready)] {
            let index = Int(event.data.u64)
            guard sockets[index].receiveAvailable() else { throw BenchError("a subscriber's connection closed") }
            try sockets[index].consume { try handle(index, $0) }
        }
    }
}
