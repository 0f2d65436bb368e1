import AsyncHTTPClient
import Foundation
import NIOCore
import Subprocess
import Testing
import TrailAPI
import TrailClient
import TrailCore
import TrailTestSupport

/// A `trail serve` process on a loopback port with its own data directory.
final class ServeProcess: Sendable {
    let directory: TemporaryDirectory
    let process: TrailProcess
    let url: String

    init(_ extra: [String] = [], directory: TemporaryDirectory = TemporaryDirectory("serve"), environment: [String: String] = [:]) async throws {
        self.directory = directory
        process = try await TrailProcess(
            ["serve", "--data", directory.path, "--listen", "127.0.0.1:0"] + extra, waitForListening: true, environment: environment)
        url = try #require(process.url, "trail serve printed no listening line")
    }

    var peerPort: Int? { process.peerPort }

    @discardableResult
    func stop(_ signal: Signal = .terminate) async -> TerminationStatus? { await process.signal(signal) }
}

/// A raw HTTP exchange, for the status codes and bodies a client library would hide.
func http(_ method: String, _ url: String, body: String? = nil, contentType: String = "application/json", token: String? = nil) async throws -> (Int, String) {
    var request = HTTPClientRequest(url: url)
    request.method = .init(rawValue: method)
    request.headers.add(name: "Content-Type", value: contentType)
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 16 << 20)
    return (Int(response.status.code), String(buffer: bytes))
}

func newKey() -> SigningKey {
    var generator = SystemRandomNumberGenerator()
    return SigningKey.generate(using: &generator)
}

func errorBody(_ text: String) throws -> ErrorBody.Detail {
    try JSONDecoder().decode(ErrorBody.self, from: Data(text.utf8)).error
}

@Suite(.serialized) struct ServeTests {
    /// Appends through JSON, binary bulk and a signed event; reads them back;
    /// a subscriber gets the backlog and then live events, each once, in order.
    @Test func appendReadAndSubscribe() async throws {
        let relay = try await ServeProcess()
        defer { Task { await relay.stop() } }
        let client = TrailClient(relays: [relay.url])
        let namespace = try Namespace("chat/room-1")

        let first = try await client.append(type: "msg", payload: "hello", to: namespace)
        #expect(first.outcome == "appended")
        #expect(first.position == 1 && first.originSeq == 1)
        #expect(first.durability == "buffered")
        let synced = try await client.append(type: "msg", payload: "synced", to: namespace, options: .init(synced: true))
        #expect(synced.durability == "synced")

        let key = newKey()
        let signed = try Event(
            namespace: namespace, author: key.publicKey, timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000, logical: 0),
            parents: [try EventID(hex: first.id)], type: "vouch", payload: Array("signed".utf8)).signed(by: key)
        let placed = try await client.append(signed)
        #expect(placed.id == signed.id.hex && placed.position == 3)
        #expect(try await client.append(signed).outcome == "duplicate")

        var bulk = [Event]()
        for index in 0..<500 {
            bulk.append(try Event(
                namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_001, logical: UInt16(index)),
                type: "bulk", payload: Array("event \(index)".utf8)))
        }
        let results = try await client.append(contentsOf: bulk, to: namespace)
        #expect(results.map(\.outcome) == Array(repeating: "appended", count: 500))
        #expect(results.last?.position == 503)

        let page = try await client.read(namespace, limit: 3)
        #expect(page.events.map(\.event.type) == ["msg", "msg", "vouch"])
        #expect(page.events[2].event == signed)
        #expect(page.lastPosition == 503)
        let filtered = try await client.read(namespace, types: ["vouch"])
        #expect(filtered.events.map(\.event.id) == [signed.id])
        let rest = try await client.read(namespace, after: page.cursor, limit: 1000)
        #expect(rest.events.count == 500 && rest.events.first?.position == 4)

        // Backlog then live, from the portable cursor of the first page.
        var iterator = client.subscribe(namespace, after: page.portableCursor).makeAsyncIterator()
        var received = [ReceivedEvent]()
        let live = Task {
            for index in 0..<20 { try await client.append(type: "live", payload: "live \(index)", to: namespace) }
        }
        while received.count < 520, let update = try await iterator.next() {
            if case .event(let event) = update { received.append(event) }
        }
        try await live.value
        #expect(received.map(\.position) == Array(4...523))
        #expect(received.suffix(20).map { String(decoding: $0.event.payload, as: UTF8.self) } == (0..<20).map { "live \($0)" })
    }

    /// Subscribers at the head share one fan-out: each still gets every event
    /// once and in log order, through its own filter and batch size.
    @Test func liveSubscribersEachGetEveryEventOnceThroughTheirFilter() async throws {
        let relay = try await ServeProcess()
        defer { Task { await relay.stop() } }
        let client = TrailClient(relays: [relay.url])
        let namespace = try Namespace("fan/out")
        try await client.append(type: "a", payload: "before", to: namespace)
        func collect(_ subscription: Subscription, count: Int) -> Task<[ReceivedEvent], any Error> {
            Task {
                var received = [ReceivedEvent]()
                var iterator = subscription.makeAsyncIterator()
                while received.count < count, let update = try await iterator.next() {
                    if case .event(let event) = update { received.append(event) }
                }
                return received
            }
        }
        let all = (0..<3).map { _ in collect(client.subscribe(namespace), count: 401) }
        let onlyB = collect(client.subscribe(namespace, types: ["b"]), count: 200)
        let small = collect(client.subscribe(namespace, batch: 1), count: 401)
        try await Task.sleep(for: .milliseconds(200))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for type in ["a", "b"] {
                group.addTask {
                    for index in 0..<200 { try await client.append(type: type, payload: "\(type)\(index)", to: namespace) }
                }
            }
            try await group.waitForAll()
        }
        for task in all + [small] {
            let received = try await task.value
            #expect(received.map(\.position) == Array(1...401))
        }
        let bs = try await onlyB.value
        #expect(bs.map { String(decoding: $0.event.payload, as: UTF8.self) } == (0..<200).map { "b\($0)" })
        #expect(bs.map(\.position) == bs.map(\.position).sorted())
        let metrics = try await http("GET", relay.url + "/metrics").1
        let shared = metrics.split(separator: "\n").first { $0.hasPrefix("trail_subscription_messages_total{source=\"fanout\"}") }
        #expect((shared?.split(separator: " ").last.flatMap { Double($0) } ?? 0) > 0, "no message came from the shared fan-out")
    }

    /// A subscriber that stops reading holds up nobody: another gets every
    /// event as it commits while the stalled one's socket is full, and the
    /// stalled one, once it reads again, gets them all, in order, once.
    @Test func aStalledSubscriberDelaysNobody() async throws {
        let relay = try await ServeProcess()
        defer { Task { await relay.stop() } }
        let client = TrailClient(relays: [relay.url])
        let namespace = try Namespace("fan/stalled")
        let port = try #require(URL(string: relay.url)?.port)
        // Subscribed, then not read: its buffers fill, and the relay's writes to it wait.
        let stalled = try RawWebSocket(port: port, path: "/v1/subscribe/fan/stalled")
        // 1000 events of 16 KiB: 16 MiB, several times what the loopback sockets buffer.
        let count = 1000
        let payload = Array(String(repeating: "x", count: 16 << 10).utf8)
        let live = Task {
            var positions = [UInt64]()
            for try await update in client.subscribe(namespace) {
                if case .event(let event) = update { positions.append(event.position) }
                if positions.count == count { break }
            }
            return positions
        }
        try await Task.sleep(for: .milliseconds(200))
        for first in stride(from: 0, to: count, by: 50) {
            let events = try (first..<first + 50).map { index in
                try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                          type: "chunk", payload: payload)
            }
            _ = try await client.append(contentsOf: events, to: namespace)
        }
        // Had the stalled subscriber held up the others, `live` would wait forever: bound it.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            live.cancel()
        }
        let delivered = try await live.value
        watchdog.cancel()
        #expect(delivered == Array(1...UInt64(count)), "the live subscriber got \(delivered.count) of \(count) events")
        #expect(stalled.unreadBytes > 0, "nothing waited on the stalled socket: the test did not stall it")
        var positions = [UInt64]()
        while positions.count < count { positions += try stalled.nextEventPositions() }
        #expect(positions == Array(1...UInt64(count)))
    }

    /// A leader checkpoints with a conditional append: a stale one is a 409
    /// naming where the log ends, and a retry from there succeeds.
    @Test func conditionalAppendRefusesAStaleCheckpoint() async throws {
        let relay = try await ServeProcess()
        defer { Task { await relay.stop() } }
        let client = TrailClient(relays: [relay.url])
        let namespace = try Namespace("task/leader")
        let start = try await client.append(type: "task", payload: "plan", to: namespace, options: .init(ifLastPosition: 0))
        #expect(start.outcome == "appended" && start.position == 1)
        try await client.append(type: "progress", payload: "sub-agent 1 done", to: namespace)
        let stale = try await client.append(type: "checkpoint", payload: "saw 1", to: namespace, options: .init(ifLastPosition: 1))
        #expect(stale.outcome == "head_moved" && stale.lastPosition == 2 && stale.position == nil)
        let (status, text) = try await http("POST", relay.url + "/v1/events/task/leader?if_last_position=1", body: #"{"type":"checkpoint"}"#)
        #expect(status == 409 && text.contains(#""outcome":"head_moved""#))
        let page = try await client.read(namespace)
        let fresh = try await client.append(
            type: "checkpoint", payload: "saw 2", parents: page.events.map(\.event.id), to: namespace,
            options: .init(ifLastPosition: page.lastPosition))
        #expect(fresh.outcome == "appended" && fresh.position == 3)
        #expect(try await http("POST", relay.url + "/v1/events/task/leader?if_last_position=x", body: #"{"type":"c"}"#).0 == 400)
    }

    /// Every bad input is a 4xx naming the field and the reason, and nothing stored changes.
    @Test func badInputIsRefusedWithTheFieldAndNothingChanges() async throws {
        let config = TemporaryDirectory("config")
        try FileManager.default.createDirectory(atPath: config.path, withIntermediateDirectories: true)
        let signedOnly = newKey()
        let file = config.path + "/trail.json"
        try """
            {"payload_bytes_max": 1024,
             "namespaces": [{"prefix": "vouch/", "require_signatures": true, "authors": ["\(signedOnly.publicKey.hex)"]}]}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let relay = try await ServeProcess(["--config", file])
        defer { Task { await relay.stop() } }
        let events = relay.url + "/v1/events/"
        let (created, _) = try await http("POST", events + "chat/a", body: #"{"type":"msg","payload":"kept"}"#)
        #expect(created == 201)

        let cases: [(String, String, String, Int, String)] = [
            ("POST", "chat/a", #"{"type":"msg","payload":"x""#, 400, "body"),
            ("POST", "chat/a", #"{"payload":"no type"}"#, 400, "body.type"),
            ("POST", "chat/a", #"{"type":"msg","paylod":"typo"}"#, 400, "paylod"),
            ("POST", "chat/a", #"{"events":[{"type":"msg","parents":"x"}]}"#, 400, "events[0].parents"),
            ("POST", "chat/a", #"{"type":"msg","parents":["beef"]}"#, 400, "body.parents[0]"),
            ("POST", "chat/a", #"{"events":[{"type":"ok"},{"type":""}]}"#, 400, "events[1].type"),
            ("POST", "chat/a", "{\"type\":\"msg\",\"payload\":\"\(String(repeating: "x", count: 2000))\"}", 400, "body.payload"),
            ("POST", "chat//a", #"{"type":"msg"}"#, 400, "namespace"),
            ("POST", "chat/a%01", #"{"type":"msg"}"#, 400, "namespace"),
            ("POST", "vouch/x", #"{"type":"vouch","payload":"unsigned"}"#, 400, "body.signature"),
            ("POST", "chat/a", #"{"type":"msg","author":"\#(signedOnly.publicKey.hex)","timestamp":"5","signature":"\#(String(repeating: "ab", count: 64))"}"#, 400, "signature"),
            ("POST", "chat/a?durability=fast", #"{"type":"msg"}"#, 400, "durability"),
            ("GET", "chat/a?after=not-a-cursor!", "", 400, "after"),
            ("GET", "chat/a?limit=0", "", 400, "limit"),
            ("GET", "chat/a?author=xyz", "", 400, "author"),
            ("GET", "chat/a?author=", "", 400, "author"),
            ("GET", "chat/a?author=\(signedOnly.publicKey.hex),", "", 400, "author"),
        ]
        for (method, path, body, status, field) in cases {
            let (code, text) = try await http(method, events + path, body: method == "POST" ? body : nil)
            #expect(code == status, "\(method) \(path) \(body.prefix(80)): \(text)")
            let detail = try errorBody(text)
            #expect(detail.field == field, "\(method) \(path): \(text)")
            #expect(!detail.message.isEmpty)
        }
        #expect(try await http("DELETE", events + "chat/a").0 == 405)
        #expect(try await http("TRACE", relay.url + "/v1/events").0 == 405)
        // The operator's body is read as strictly as an append's.
        let (blocked, blockedText) = try await http("PUT", relay.url + "/v1/admin/blocked-peers", body: #"{"relays":[],"relay":["x"]}"#)
        #expect(try blocked == 400 && errorBody(blockedText).field == "relay", "\(blockedText)")
        let (notKey, notKeyText) = try await http("PUT", relay.url + "/v1/admin/blocked-peers", body: #"{"relays":[7]}"#)
        #expect(try notKey == 400 && errorBody(notKeyText).field == "relays[0]", "\(notKeyText)")
        #expect(try await http("GET", relay.url + "/v1/subscribe/chat/a").0 == 426)
        #expect(try await http("GET", relay.url + "/v2/nothing").0 == 404)
        // A cursor of another relay, and one past the end.
        let (foreign, text) = try await http("GET", events + "chat/a?after=" + Cursor.position(relay: 42, position: 1).text)
        #expect(try foreign == 400 && errorBody(text).code == "bad_cursor")
        let client = TrailClient(relays: [relay.url])
        let ns = try Namespace("chat/a")
        let page = try await client.read(ns)
        #expect(page.events.map { String(decoding: $0.event.payload, as: UTF8.self) } == ["kept"])
        #expect(try await client.namespaces().map(\.namespace) == ["chat/a"])
        // Replicas asked of a relay with no peer: answered at once, with the truth.
        let lone = try await client.append(type: "msg", payload: "alone", to: ns, options: .init(replicas: 1))
        #expect(lone.durability == "replicated:0")
        // A signed event by the allowed author is taken under vouch/.
        let vouch = try Event(
            namespace: try Namespace("vouch/x"), author: signedOnly.publicKey, timestamp: HybridTimestamp(rawValue: 1 << 20),
            type: "vouch", payload: []).signed(by: signedOnly)
        #expect(try await client.append(vouch).outcome == "appended")
        let stranger = newKey()
        let forged = try Event(
            namespace: try Namespace("vouch/x"), author: stranger.publicKey, timestamp: HybridTimestamp(rawValue: 1 << 20),
            type: "vouch", payload: []).signed(by: stranger)
        await #expect(throws: TrailClientError.self) { try await client.append(forged) }
    }

    /// Tokens: none is 401, a read token cannot write, a prefix token cannot leave its prefix.
    @Test func tokensAreScopedToPrefixesAndAccess() async throws {
        let config = TemporaryDirectory("config")
        try FileManager.default.createDirectory(atPath: config.path, withIntermediateDirectories: true)
        let file = config.path + "/trail.json"
        try """
            {"tokens": [{"name": "auction-writer", "secret": "writer-secret-0123456789", "prefixes": ["auction/"]},
                        {"name": "reader", "secret": "reader-secret-0123456789", "access": "read"}]}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let relay = try await ServeProcess([], environment: ["TRAIL_CONFIG": file])
        defer { Task { await relay.stop() } }
        let body = #"{"type":"bid","payload":"40"}"#
        #expect(try await http("POST", relay.url + "/v1/events/auction/1", body: body).0 == 401)
        #expect(try await http("POST", relay.url + "/v1/events/auction/1", body: body, token: "wrong-secret-0123456789").0 == 401)
        #expect(try await http("POST", relay.url + "/v1/events/auction/1", body: body, token: "writer-secret-0123456789").0 == 201)
        let (outside, text) = try await http("POST", relay.url + "/v1/events/chat/1", body: body, token: "writer-secret-0123456789")
        #expect(try outside == 403 && errorBody(text).field == "namespace")
        #expect(try await http("POST", relay.url + "/v1/events/auction/1", body: body, token: "reader-secret-0123456789").0 == 403)
        #expect(try await http("GET", relay.url + "/v1/events/auction/1", token: "reader-secret-0123456789").0 == 200)
        #expect(try await http("GET", relay.url + "/healthz").0 == 200)
    }

    /// One binary bulk request to `POST /v1/events` appends to many
    /// namespaces; a token that may not write one of them appends nothing.
    @Test func aBulkAppendAcrossNamespaces() async throws {
        let config = TemporaryDirectory("config")
        try FileManager.default.createDirectory(atPath: config.path, withIntermediateDirectories: true)
        let file = config.path + "/trail.json"
        try #"{"tokens": [{"name": "all", "secret": "all-secret-0123456789"}, {"name": "docs", "secret": "docs-secret-0123456789", "prefixes": ["doc/"]}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        let relay = try await ServeProcess([], environment: ["TRAIL_CONFIG": file])
        defer { Task { await relay.stop() } }
        let events = try (0..<30).map { index in
            try Event(namespace: Namespace(index % 3 == 0 ? "chat/\(index % 2)" : "doc/\(index % 5)"),
                      timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                      type: "bulk", payload: Array("event \(index)".utf8))
        }
        let narrow = TrailClient(relays: [relay.url], token: "docs-secret-0123456789")
        await #expect(throws: (any Error).self) { try await narrow.append(contentsOf: events) }
        let client = TrailClient(relays: [relay.url], token: "all-secret-0123456789")
        #expect(try await client.namespaces(prefix: "").isEmpty, "the refused request appended nothing")
        let results = try await client.append(contentsOf: events)
        #expect(results.map(\.outcome) == Array(repeating: "appended", count: 30))
        #expect(results.map(\.id) == events.map(\.id.hex))
        let counts = Dictionary(uniqueKeysWithValues: try await client.namespaces(prefix: "").map { ($0.namespace, $0.eventCount) })
        #expect(counts == ["chat/0": 5, "chat/1": 5, "doc/0": 4, "doc/1": 4, "doc/2": 4, "doc/3": 4, "doc/4": 4])
        let (status, text) = try await http("POST", relay.url + "/v1/events", body: "{}", token: "all-secret-0123456789")
        #expect(status == 415 && text.contains("bulk"))
    }

    /// A binary page: the same events as JSON pages, positions dense from
    /// the header's first; a portable cursor or a filter is refused.
    @Test func binaryPagesReplayTheLog() async throws {
        let relay = try await ServeProcess()
        defer { Task { await relay.stop() } }
        let client = TrailClient(relays: [relay.url])
        let namespace = try Namespace("replay/binary")
        let events = try (0..<25).map { index in
            try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                      type: "bin", payload: (0..<40).map { UInt8(truncatingIfNeeded: $0 * index) })
        }
        _ = try await client.append(contentsOf: events, to: namespace)
        var read = [Event]()
        var positions = [UInt64]()
        var cursor: String?
        while true {
            let page = try await client.readBinary(namespace, after: cursor, limit: 10)
            read += page.events
            positions += page.events.indices.map { page.firstPosition + UInt64($0) }
            cursor = page.cursor
            if page.isAtEnd { break }
        }
        #expect(read == events)
        #expect(positions == Array(1...25))

        // The same log through `replay`, a page ahead: every event once, in order,
        // from the start and from a cursor; an empty log gives no page.
        var replayed = [Event]()
        var firsts = [UInt64]()
        for try await page in client.replay(namespace, pageSize: 10) {
            replayed += page.events
            firsts.append(page.firstPosition)
        }
        #expect(replayed == events && firsts == [1, 11, 21])
        let middle = try await client.readBinary(namespace, limit: 7).cursor
        var rest = [Event]()
        for try await page in client.replay(namespace, after: middle, pageSize: 10) { rest += page.events }
        #expect(rest == Array(events[7...]))
        var emptyPages = 0
        for try await _ in client.replay(try Namespace("replay/nothing-here")) { emptyPages += 1 }
        #expect(emptyPages == 0)

        let json = try await client.read(namespace, limit: 1)
        await #expect(throws: (any Error).self) { try await client.readBinary(namespace, after: json.portableCursor) }
        let (status, text) = try await http("GET", relay.url + "/v1/events/replay/binary?type=bin", contentType: "application/json")
        #expect(status == 200 && text.contains("\"events\""), "JSON filters still work")
    }

    /// Configuration errors stop `trail serve` with a message naming the source and the key.
    @Test func badConfigurationIsNamed() async throws {
        let directory = TemporaryDirectory("config")
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        let file = directory.path + "/trail.json"
        try #"{"listen": "127.0.0.1:7400", "lisen": 1}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let data = ["--data", directory.path + "/data"]
        var (code, _, error) = try await runTrail(["serve", "--config", file] + data)
        #expect(code != 0 && error.contains("lisen") && error.contains("unknown setting"))
        (code, _, error) = try await runTrail(["serve", "--listen", "nowhere"] + data)
        #expect(code != 0 && error.contains("flag --listen") && error.contains("HOST:PORT"))
        (code, _, error) = try await runTrail(["serve"] + data, environment: ["TRAIL_DURABILITY": "fast"])
        #expect(code != 0 && error.contains("TRAIL_DURABILITY") && error.contains("buffered"))
        (code, _, error) = try await runTrail(["serve", "--log-format", "xml"] + data)
        #expect(code != 0 && error.contains("log-format") && error.contains("json"))
        (code, _, error) = try await runTrail(["serve", "--peer-listen", "127.0.0.1:0"] + data)
        #expect(code != 0 && error.contains("allow_peers"))
        try #"{"tokens": [{"secret": "0123456789abcdef0", "append_rate": {"events_per_second": 0}}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        (code, _, error) = try await runTrail(["serve", "--config", file] + data)
        #expect(code != 0 && error.contains("tokens[0].append_rate.events_per_second"))
    }

    /// A token's append rate: its burst passes, the next request is refused
    /// with 429 and Retry-After (nothing appended), the budget refills with
    /// time, and another token's budget is its own.
    @Test func appendRatesAreEnforcedPerToken() async throws {
        let config = TemporaryDirectory("config")
        try FileManager.default.createDirectory(atPath: config.path, withIntermediateDirectories: true)
        let file = config.path + "/trail.json"
        try #"""
            {"tokens": [{"name": "agent", "secret": "agent-secret-0123456789", "append_rate": {"events_per_second": 0.25, "burst": 4}},
                        {"name": "other", "secret": "other-secret-0123456789"}],
             "append_rate": {"events_per_second": 1000}}
            """#.write(toFile: file, atomically: true, encoding: .utf8)
        let relay = try await ServeProcess([], environment: ["TRAIL_CONFIG": file])
        defer { Task { await relay.stop() } }
        let body = #"{"type":"bid","payload":"40"}"#
        let url = relay.url + "/v1/events/auction/rate"
        for _ in 0..<4 { #expect(try await http("POST", url, body: body, token: "agent-secret-0123456789").0 == 201) }
        // One event refills every 4 s: slow enough that the burst is spent however loaded the machine.
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer agent-secret-0123456789")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        #expect(try response.status.code == 429 && errorBody(text).code == "rate_limited" && text.contains("0.25 events/s"), "\(text)")
        let retryAfter = try #require(response.headers.first(name: "Retry-After").flatMap(Int.init))
        #expect((1...4).contains(retryAfter))
        let batch = #"{"events": [{"type":"a"},{"type":"b"},{"type":"c"},{"type":"d"},{"type":"e"}]}"#
        let (tooBig, bigText) = try await http("POST", url, body: batch, token: "agent-secret-0123456789")
        #expect(tooBig == 429 && bigText.contains("can never fit"))
        // The other token has the relay's budget, not this one's.
        #expect(try await http("POST", url, body: body, token: "other-secret-0123456789").0 == 201)
        // Retry-After is honest: once it has passed, the next append goes through.
        try await Task.sleep(for: .milliseconds(retryAfter * 1000 + 300))
        #expect(try await http("POST", url, body: body, token: "agent-secret-0123456789").0 == 201)
        let client = TrailClient(relays: [relay.url], token: "other-secret-0123456789")
        #expect(try await client.read(try Namespace("auction/rate"), limit: 100).events.count == 6, "refused requests appended nothing")
    }

    /// A token's read rate counts requests (pages, namespace status,
    /// subscriptions): its burst passes, the next is refused with 429 and
    /// Retry-After, and another token's budget is its own.
    @Test func readRatesAreEnforcedPerToken() async throws {
        let config = TemporaryDirectory("config")
        try FileManager.default.createDirectory(atPath: config.path, withIntermediateDirectories: true)
        let file = config.path + "/trail.json"
        try #"""
            {"tokens": [{"name": "reader", "secret": "reader-secret-0123456789", "read_rate": {"requests_per_second": 0.25, "burst": 3}},
                        {"name": "other", "secret": "other-secret-0123456789"}],
             "read_rate": {"requests_per_second": 1000}}
            """#.write(toFile: file, atomically: true, encoding: .utf8)
        let relay = try await ServeProcess([], environment: ["TRAIL_CONFIG": file])
        defer { Task { await relay.stop() } }
        #expect(try await http("POST", relay.url + "/v1/events/feed/a", body: #"{"type":"note"}"#, token: "other-secret-0123456789").0 == 201)
        let url = relay.url + "/v1/events/feed/a"
        #expect(try await http("GET", url, token: "reader-secret-0123456789").0 == 200)
        #expect(try await http("GET", relay.url + "/v1/namespaces/feed/a", token: "reader-secret-0123456789").0 == 200)
        #expect(try await http("GET", url, token: "reader-secret-0123456789").0 == 200)
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer reader-secret-0123456789")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        #expect(try response.status.code == 429 && errorBody(text).code == "rate_limited" && text.contains("0.25 requests/s"), "\(text)")
        let retryAfter = try #require(response.headers.first(name: "Retry-After").flatMap(Int.init))
        #expect((1...4).contains(retryAfter))
        #expect(try await http("GET", url, token: "other-secret-0123456789").0 == 200)
        // Appends have their own budget: a reader out of reads may still write.
        #expect(try await http("POST", url, body: #"{"type":"note"}"#, token: "reader-secret-0123456789").0 == 201)
    }

    /// SIGTERM while a writer appends: the relay drains and exits 0, and
    /// every event it acknowledged is there when it starts again.
    @Test func sigtermDuringLoadLosesNoAcknowledgedEvent() async throws {
        let directory = TemporaryDirectory("sigterm")
        let relay = try await ServeProcess([], directory: directory)
        let client = TrailClient(relays: [relay.url], requestTimeout: .seconds(5))
        let namespace = try Namespace("load/a")
        let writers = (0..<4).map { writer in
            Task { () -> [String] in
                var acknowledged = [String]()
                for index in 0..<5000 {
                    guard let outcome = try? await client.append(type: "load", payload: "\(writer)-\(index)", to: namespace) else { break }
                    acknowledged.append(outcome.id)
                }
                return acknowledged
            }
        }
        // Subscribers too: shutdown ends their subscriptions rather than waiting for them.
        let subscribers = (0..<3).map { _ in
            Task {
                var iterator = client.subscribe(namespace).makeAsyncIterator()
                while let _ = try? await iterator.next(), !Task.isCancelled {}
            }
        }
        try await Task.sleep(for: .milliseconds(400))
        let stopping = ContinuousClock.now
        let status = await relay.stop(.terminate)
        #expect(ContinuousClock.now - stopping < .seconds(8), "shutdown waited \(ContinuousClock.now - stopping)")
        subscribers.forEach { $0.cancel() }
        var acknowledged = Set<String>()
        for writer in writers { acknowledged.formUnion(await writer.value) }
        #expect(status == .exited(0))
        #expect(acknowledged.count > 0)

        let again = try await ServeProcess([], directory: directory)
        defer { Task { await again.stop() } }
        let reader = TrailClient(relays: [again.url])
        var held = Set<String>()
        var cursor: String?
        while true {
            let page = try await reader.read(namespace, after: cursor, limit: 1000)
            held.formUnion(page.events.map(\.event.id.hex))
            cursor = page.cursor
            if page.events.isEmpty { break }
        }
        #expect(acknowledged.isSubset(of: held), "lost \(acknowledged.subtracting(held).count) acknowledged events")
    }

    /// Participants announced on a subscription are listed, and leave when it closes.
    @Test func participantsJoinAndLeave() async throws {
        let relay = try await ServeProcess()
        defer { Task { await relay.stop() } }
        let client = TrailClient(relays: [relay.url])
        let namespace = try Namespace("task/leader")
        var watcher = client.subscribe(namespace, participant: "watcher").makeAsyncIterator()
        // The subscription is up once its participant list arrives.
        while let update = try await watcher.next() {
            if case .participants = update { break }
        }
        var seen = [String]()
        // The watcher sees its own join, then the worker's join and leave.
        let worker = Task {
            var iterator = client.subscribe(namespace, participant: "worker-1").makeAsyncIterator()
            while let update = try await iterator.next() {
                if case .joined(let who) = update, who.id == "worker-1" { break }
            }
            #expect(Set(try await client.participants(namespace).map(\.id)) == ["watcher", "worker-1"])
        }
        while let update = try await watcher.next() {
            switch update {
            case .joined(let who): seen.append("+\(who.id)")
            case .left(let who): seen.append("-\(who.id)")
            default: continue
            }
            if seen.contains("-worker-1") { break }
        }
        try await worker.value
        #expect(seen.filter { $0.hasSuffix("worker-1") } == ["+worker-1", "-worker-1"])
        #expect(try await client.participants(namespace).map(\.id) == ["watcher"])
    }
}

@Suite(.serialized) struct FederationTests {
    /// Two federated relays; a subscriber reads from A while a writer appends
    /// to B. A is killed mid-stream: the subscription resumes on B from its
    /// portable cursor, and the subscriber ends with every event exactly once,
    /// each after its parent.
    @Test func aSubscriptionFailsOverWithNoGapAndNoDuplicate() async throws {
        let a = try await ServeProcess(["--peer-listen", "127.0.0.1:0", "--allow-any"])
        let peerPort = try #require(a.peerPort)
        let b = try await ServeProcess(["--connect", "127.0.0.1:\(peerPort)", "--allow-any"])
        defer { Task { await b.stop() } }
        let namespace = try Namespace("doc/shared")
        let total = 600
        let writer = TrailClient(relays: [b.url])
        let written = Task { () -> [String] in
            var ids = [String]()
            var previous: EventID?
            for index in 0..<total {
                let outcome = try await writer.append(
                    type: "edit", payload: "edit \(index)", parents: previous.map { [$0] } ?? [], to: namespace)
                ids.append(outcome.id)
                previous = try EventID(hex: outcome.id)
                if index % 50 == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            return ids
        }
        let reader = TrailClient(relays: [a.url, b.url])
        var iterator = reader.subscribe(namespace).makeAsyncIterator()
        var received = [ReceivedEvent]()
        var relays = [String]()
        var killed = false
        // Generous: debug-built relays beside the rest of the suite on two cores.
        let deadline = ContinuousClock.now + .seconds(180)
        while received.count < total, ContinuousClock.now < deadline, let update = try await iterator.next() {
            switch update {
            case .event(let event): received.append(event)
            case .connected(let relay): relays.append(relay)
            default: break
            }
            if !killed, received.count >= total / 4 {
                killed = true
                await a.stop(.kill)
            }
        }
        let ids = try await written.value
        #expect(killed)
        #expect(relays.first == a.url && relays.contains(b.url))
        #expect(received.count == total)
        #expect(Set(received.map(\.event.id.hex)).count == received.count, "a duplicate was delivered")
        #expect(Set(received.map(\.event.id.hex)) == Set(ids))
        var seen = Set<EventID>()
        for event in received {
            #expect(event.event.parents.allSatisfy(seen.contains), "event \(event.event.id.short) came before its parent")
            seen.insert(event.event.id)
        }
    }

    /// Two relays open to any peer, B linked to A's peer listener.
    static func linkedPair() async throws -> (a: ServeProcess, b: ServeProcess) {
        let a = try await ServeProcess(["--peer-listen", "127.0.0.1:0", "--allow-any"])
        let peerPort = try #require(a.peerPort)
        return (a, try await ServeProcess(["--connect", "127.0.0.1:\(peerPort)", "--allow-any"]))
    }

    /// Participants on two federated relays see one list; when a relay dies,
    /// its participants leave the other relay's list within the lease (3 s).
    @Test func participantsAreSharedAcrossRelaysAndLeaveWhenTheirRelayDies() async throws {
        let (a, b) = try await Self.linkedPair()
        defer { Task { await b.stop() } }
        let namespace = try Namespace("task/team")
        let onA = TrailClient(relays: [a.url])
        let onB = TrailClient(relays: [b.url])
        var alice = onA.subscribe(namespace, participant: "alice").makeAsyncIterator()
        var bob = onB.subscribe(namespace, participant: "bob").makeAsyncIterator()
        // Each sees the other join, announced by the other relay.
        func waitFor(_ kind: String, _ who: String, _ iterator: inout Subscription.Iterator) async throws -> ParticipantOutput? {
            while let update = try await iterator.next() {
                switch update {
                case .joined(let participant) where kind == "joined" && participant.id == who: return participant
                case .left(let participant) where kind == "left" && participant.id == who: return participant
                case .participants(let list) where kind == "joined": if let found = list.first(where: { $0.id == who }) { return found }
                default: continue
                }
            }
            return nil
        }
        let bobSeen = try await waitFor("joined", "bob", &alice)
        let aliceSeen = try await waitFor("joined", "alice", &bob)
        let relayA = try await onA.status().relay
        let relayB = try await onB.status().relay
        #expect(bobSeen?.relay == relayB)
        #expect(aliceSeen?.relay == relayA)
        #expect(Set(try await onB.participants(namespace).map(\.id)) == ["alice", "bob"])
        #expect(Set(try await onA.participants(namespace).map(\.id)) == ["alice", "bob"])

        let killed = ContinuousClock.now
        await a.stop(.kill)
        let left = try await waitFor("left", "alice", &bob)
        let elapsed = ContinuousClock.now - killed
        #expect(left?.relay == relayA)
        #expect(elapsed < .seconds(5), "alice left \(elapsed) after her relay died")
        #expect(try await onB.participants(namespace).map(\.id) == ["bob"])
    }

    /// `replicas=N`: the answer comes once N peer relays hold the event, and
    /// says how many did when fewer could within the timeout.
    @Test func anAppendWaitsUntilPeersHoldIt() async throws {
        let (a, b) = try await Self.linkedPair()
        defer { Task { await a.stop(); await b.stop() } }
        let namespace = try Namespace("task/checkpoint")
        let onA = TrailClient(relays: [a.url])
        let onB = TrailClient(relays: [b.url])
        let held = try await onA.append(type: "checkpoint", payload: "step 1", to: namespace, options: .init(replicas: 1))
        #expect(held.outcome == "appended")
        #expect(held.durability == "replicated:1")
        // The answer promised that B holds it: B serves it at once, with no waiting.
        let page = try await onB.read(namespace)
        #expect(page.events.map(\.event.id.hex) == [held.id])
        // Two replicas asked of a relay with one peer: after the timeout, the answer says one.
        let short = try await onA.append(
            type: "checkpoint", payload: "step 2", to: namespace, options: .init(replicas: 2, timeout: .milliseconds(300)))
        #expect(short.outcome == "appended")
        #expect(short.durability == "replicated:1")
    }

    /// Two relays with TLS on the client API and on their peer link: an event
    /// appended over HTTPS to one is read over HTTPS from the other.
    @Test func relaysFederateOverTLS() async throws {
        let keys = TemporaryDirectory("tls")
        try FileManager.default.createDirectory(atPath: keys.path, withIntermediateDirectories: true)
        let certificate = keys.path + "/cert.pem", key = keys.path + "/key.pem"
        let (code, _, error) = try await runCommand("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", certificate,
            "-days", "2", "-subj", "/CN=trail-test", "-addext", "subjectAltName=IP:127.0.0.1"])
        try #require(code == 0, "openssl could not make a test certificate: \(error)")
        let tls = ["--tls-certificate", certificate, "--tls-key", key, "--tls-trust-roots", certificate, "--peer-tls", "--allow-any"]
        let a = try await ServeProcess(tls + ["--peer-listen", "127.0.0.1:0"])
        defer { Task { await a.stop() } }
        let peerPort = try #require(a.peerPort)
        let b = try await ServeProcess(tls + ["--connect", "127.0.0.1:\(peerPort)"])
        defer { Task { await b.stop() } }
        #expect(a.url.hasPrefix("https://") && b.url.hasPrefix("https://"))
        let namespace = try Namespace("secure/doc")
        let onB = TrailClient(relays: [b.url], tlsTrustRoots: certificate)
        let onA = TrailClient(relays: [a.url], tlsTrustRoots: certificate)
        let placed = try await onB.append(type: "note", payload: "over TLS", to: namespace)
        var seen: [String] = []
        for _ in 0..<100 where seen.isEmpty {
            seen = (try? await onA.read(namespace).events.map(\.event.id.hex)) ?? []
            if seen.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(seen == [placed.id])
        // A client that does not trust the certificate is refused.
        let untrusting = TrailClient(relays: [a.url], requestTimeout: .seconds(3))
        await #expect(throws: (any Error).self) { _ = try await untrusting.status() }
        try await onA.shutdown()
        try await onB.shutdown()
    }
}

