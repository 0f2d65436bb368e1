import Foundation
import Logging
import Synchronization
public import TrailCore
import TrailReplication
import TrailStore

/// A deterministic simulation of a federation, in the manner of
/// FoundationDB's simulation testing: N relays, each a real `Store` over its
/// own RocksDB directory, replicate through `LinkSession`s (the protocol
/// without its transport) over a simulated network that delays, duplicates,
/// reorders and drops frames, partitions relays, and crashes and restarts
/// them, on a simulated clock. Every choice comes from one seed, so a
/// failing seed replays the same run: the same frames in the same order, the
/// same positions, the same digest.
///
/// Each step checks the cheap invariants of the relay it touched (vector =
/// held set); every `checkEvery` steps, and at the end on every relay,
/// `Store.check` checks them all (dense positions, parents before children,
/// origin order, id = hash, indexes). After the fault phase the network heals
/// and the run must converge: every relay holds the same events of every
/// namespace, none pending, every acknowledged append on every relay.
public final class Simulation {
    public struct Options: Sendable {
        public var relayCount = 3
        public var namespaceCount = 2
        /// Client appends, made during the fault phase.
        public var appendCount = 40
        /// Steps of the fault phase.
        public var faultSteps = 400
        /// Rounds of the quiet phase before the run counts as not converging.
        public var quietRoundsMax = 500
        /// Per step of the fault phase, in percent.
        public var dropPercent = 3
        public var crashPercent = 1
        public var partitionPercent = 2
        /// Per frame sent, in percent.
        public var duplicatePercent = 5
        /// Per delivery, in percent: a frame other than the first in its queue is delivered first.
        public var reorderPercent = 10
        /// A full `Store.check` of one relay every this many steps.
        public var checkEvery = 100
        /// Prints every step of the trace to standard output as it happens.
        public var printTrace = false

        public init() {}
    }

    public struct Result: Sendable, CustomStringConvertible {
        public let seed: UInt64
        /// SHA-256 of the run's trace and of every relay's final log: equal for equal runs.
        public let digest: String
        public let steps: Int
        public let appends: Int
        public let framesDelivered: Int
        public let crashes: Int
        public let partitions: Int
        public let drops: Int
        public let aliases: Int
        /// Why the run failed, with the last steps of its trace; nil: it converged with every invariant held.
        public let failure: String?

        public var description: String {
            "seed \(seed): \(failure == nil ? "ok" : "FAILED") after \(steps) steps, \(appends) appends, \(framesDelivered) frames, \(crashes) crashes, \(partitions) partitions, \(drops) drops, \(aliases) aliases, digest \(digest.prefix(16))"
                + (failure.map { "\n\($0)" } ?? "")
        }
    }

    /// A broken invariant or a run that did not converge.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    public let seed: UInt64
    let options: Options
    let root: String
    var random: SplitMix64
    let clock = SimulatedClock()
    var relays: [SimulatedRelay] = []
    var links: [Pair: SimulatedLink] = [:]
    var blockedUntil: [Pair: UInt64] = [:]
    let namespaces: [Namespace]
    /// Every acknowledged append: each must be on every relay at the end.
    var acknowledged: [EventID: Namespace] = [:]
    var trace: [String] = []
    var digest = SHA256Stream()
    var step = 0
    var counts = (appends: 0, frames: 0, crashes: 0, partitions: 0, drops: 0)

    /// `root` is a directory the simulation may fill (one subdirectory per relay); the caller removes it.
    public init(seed: UInt64, options: Options = Options(), root: String) {
        self.seed = seed
        self.options = options
        self.root = root
        random = SplitMix64(seed: seed)
        namespaces = (0..<options.namespaceCount).map { try! Namespace("sim/\($0)") }
    }

    /// Runs the simulation to its end; never throws: a failure is in the result.
    public func run() async -> Result {
        var failure: String?
        do {
            try start()
            while step < options.faultSteps {
                step += 1
                try await faultStep()
            }
            try await quiet()
            try await checkConvergence()
        } catch {
            failure = "\(error)\nlast steps:\n" + trace.suffix(25).joined(separator: "\n")
        }
        for relay in relays { relay.store?.close() }
        return Result(
            seed: seed, digest: digest.finish(), steps: step, appends: counts.appends, framesDelivered: counts.frames,
            crashes: counts.crashes, partitions: counts.partitions, drops: counts.drops,
            aliases: relays.reduce(0) { total, relay in total + namespaces.reduce(0) { $0 + Int(relay.store?.aliasCount(of: $1) ?? 0) } },
            failure: failure)
    }

    func log(_ line: String) {
        let entry = "[\(step) t=\(clock.now)] \(line)"
        digest.update(entry)
        if options.printTrace { print(entry) }
        trace.append(entry)
        if trace.count > 1000 { trace.removeFirst(500) }
    }

    // MARK: Relays

    private func start() throws {
        for index in 0..<options.relayCount {
            let directory = root + "/relay-\(index)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // The relay's key comes from the seed too: its origin orders vectors and logs.
            let keySeed = SHA256.hash(Array("trail.simulation.relay".utf8) + withUnsafeBytes(of: seed.bigEndian, Array.init) + [UInt8(index)])
            try (Hex.encode(keySeed) + "\n").write(toFile: directory + "/" + Store.identityFileName, atomically: true, encoding: .utf8)
            let relay = SimulatedRelay(index: index, directory: directory, routing: seed % 3 == 1 || (seed % 3 == 2 && index % 2 == 0))
            relays.append(relay)
            try open(relay)
        }
    }

    private func open(_ relay: SimulatedRelay) throws {
        var configuration = StoreConfiguration(
            shardCount: 4, writerCount: 1 + relay.index % 2, blockCacheBytes: 1 << 20, writeBufferBytes: StoreConfiguration.writeBufferBytesMin)
        let clock = clock
        configuration.clock = { clock.now }
        var logger = Logger(label: "trail.simulation")
        logger.logLevel = .critical
        configuration.logger = logger
        relay.store = try Store(directory: relay.directory, configuration: configuration)
    }

    private func crash(_ relay: SimulatedRelay) {
        for pair in links.keys.sorted() where pair.contains(relay.index) { disconnect(pair, because: "relay \(relay.index) crashed") }
        relay.store?.close()
        relay.store = nil
        relay.downUntil = clock.now + UInt64.random(in: 10...100, using: &random)
        counts.crashes += 1
        log("crash relay \(relay.index) until t=\(relay.downUntil)")
    }

    private func restart(_ relay: SimulatedRelay) throws {
        try open(relay)
        log("restart relay \(relay.index)")
        try checkCheap(relay)
    }

    var upRelays: [SimulatedRelay] { relays.filter { $0.store != nil } }

    // MARK: Links

    private func connect(_ pair: Pair) throws {
        guard let left = relays[pair.low].store, let right = relays[pair.high].store else { return }
        let configuration = ReplicationConfiguration(allowAnyPeer: true, segmentEventCountMax: 8)
        let link = SimulatedLink(
            sessions: [LinkSession(store: left, configuration: configuration, peer: hello(right, configuration), routes: relays[pair.low].routes),
                       LinkSession(store: right, configuration: configuration, peer: hello(left, configuration), routes: relays[pair.high].routes)])
        links[pair] = link
        for side in 0..<2 {
            // As `PeerLink` does: DIRECT (the origins of the relay's other links) before the WANTs and READY.
            let session = link.sessions[side]
            for frame in session.directFrames(linked: linkedOrigins(pair.relay(side))) + session.openingFrames() {
                send(frame, on: link, from: side)
            }
        }
        log("connect \(pair)")
        announceDirect(pair)
    }

    /// The current origins of the relays `relay` is linked to.
    private func linkedOrigins(_ relay: Int) -> Set<RelayID> {
        Set(links.compactMap { pair, link in pair.contains(relay) ? link.sessions[pair.low == relay ? 0 : 1].peer.origin : nil })
    }

    /// A link of the pair came up or went down: each of its relays tells its
    /// other links' peers which origins it now takes from their own relays.
    private func announceDirect(_ changed: Pair) {
        for relay in [changed.low, changed.high] {
            let linked = linkedOrigins(relay)
            for (pair, link) in links.sorted(by: { $0.key < $1.key }) where pair.contains(relay) {
                let side = pair.low == relay ? 0 : 1
                for frame in link.sessions[side].directFrames(linked: linked) { send(frame, on: link, from: side) }
            }
        }
    }

    private func hello(_ store: Store, _ configuration: ReplicationConfiguration) -> Frame.Hello {
        Frame.Hello(relay: store.relayID, origin: store.incarnation.origin, incarnation: store.incarnation.number,
                    nonce: [UInt8](repeating: 0, count: Frame.nonceByteCount), frameBytesMax: configuration.frameBytesMax, prefixes: [])
    }

    private func disconnect(_ pair: Pair, because reason: String) {
        guard let link = links.removeValue(forKey: pair) else { return }
        for session in link.sessions { session.close() }
        log("disconnect \(pair): \(reason)")
        announceDirect(pair)
    }

    private func send(_ frame: Frame, on link: SimulatedLink, from side: Int) {
        let reorderable: Bool
        switch frame {
        case .segment, .ack, .fetched: reorderable = true
        default: reorderable = false
        }
        let message = SimulatedLink.Message(bytes: frame.encoded(), reorderable: reorderable,
                                            deliverAt: clock.now + UInt64.random(in: 1...20, using: &random))
        link.queues[side].append(message)
        if reorderable, Int.random(in: 0..<100, using: &random) < options.duplicatePercent {
            link.queues[side].append(message)
        }
    }

    /// Delivers one frame of the queue from `side` to the other side, if one is due.
    private func deliver(_ pair: Pair, from side: Int, faults: Bool) async throws {
        guard let link = links[pair], let head = link.queues[side].first, head.deliverAt <= clock.now else { return }
        var index = 0
        if faults, head.reorderable, Int.random(in: 0..<100, using: &random) < options.reorderPercent {
            let candidates = link.queues[side].indices.filter { link.queues[side][$0].reorderable && link.queues[side][$0].deliverAt <= clock.now }
            index = candidates.randomElement(using: &random) ?? 0
        }
        let message = link.queues[side].remove(at: index)
        let receiver = 1 - side
        let session = link.sessions[receiver]
        let frame: Frame
        do { frame = try Frame(decoding: message.bytes) } catch { throw Failure("a frame from \(pair.relay(side)) does not decode: \(error)") }
        counts.frames += 1
        let to = pair.relay(receiver)
        do {
            switch frame {
            case .want(let namespace, let vector):
                try session.receiveWant(namespace, vector)
                log("\(pair.relay(side))→\(to) WANT \(namespace) \(vector.total)")
            case .ready:
                // As `PeerLink` does: PRUNEs for what other links carry, then the credit pushing waits for.
                for prune in session.receiveReady() { send(prune, on: link, from: receiver) }
                send(.credit(8), on: link, from: receiver)
                log("\(pair.relay(side))→\(to) READY")
            case .credit:
                link.ready[receiver] = true
                log("\(pair.relay(side))→\(to) CREDIT")
            case .segment(let bytes):
                let segment = try LinkSession.decodeSegment(bytes, limits: .default)
                for answer in try await session.apply(segment) { send(answer, on: link, from: receiver) }
                log("\(pair.relay(side))→\(to) SEGMENT \(segment.namespace) \(segment.records.map { "\($0.event.id.short)@\($0.originSeq)" }.joined(separator: ","))")
            case .ack(let namespace, let vector):
                session.receiveAck(namespace, vector)
                log("\(pair.relay(side))→\(to) ACK \(namespace) \(vector.total)")
            case .fetch(let ids):
                send(try session.answer(fetch: ids), on: link, from: receiver)
                log("\(pair.relay(side))→\(to) FETCH \(ids.map(\.short).joined(separator: ","))")
            case .fetched(let records):
                try await session.receiveFetched(records)
                log("\(pair.relay(side))→\(to) FETCHED \(records.count)")
            case .prune(let namespace, let origins):
                try session.receivePrune(namespace, origins)
                log("\(pair.relay(side))→\(to) PRUNE \(namespace) \(origins.map { $0.hex.prefix(8) })")
            case .direct(let origins):
                session.receiveDirect(origins)
                log("\(pair.relay(side))→\(to) DIRECT \(origins.map { $0.hex.prefix(8) })")
            case .graft(let namespace, let origins, let vector):
                try session.receiveGraft(namespace, origins, vector)
                log("\(pair.relay(side))→\(to) GRAFT \(namespace) \(origins.map { $0.hex.prefix(8) }) after \(vector.total)")
            default:
                throw Failure("relay \(pair.relay(side)) sent \(frame.name), which a session never sends")
            }
        } catch let error as ProtocolError {
            throw Failure("relay \(to) refused a frame from relay \(pair.relay(side)): \(error)")
        }
        try checkCheap(relays[to])
    }

    /// Pushes what one side's peer lacks, one page per grown namespace.
    private func push(_ pair: Pair, side: Int) throws -> Bool {
        guard let link = links[pair], link.ready[side] else { return false }
        var sent = false
        let session = link.sessions[side]
        for (namespace, head) in session.grownNamespaces() {
            guard let segments = try session.nextSegments(of: namespace, head: head) else { continue }
            for (_, encoded) in segments { send(.segment(encoded), on: link, from: side) }
            if !segments.isEmpty { log("\(pair.relay(side)) pushes \(segments.count) segments of \(namespace) to \(pair.relay(1 - side))") }
            sent = true
        }
        return sent
    }

    /// One routing check of one side (what `PeerLink` does every `routeInterval`).
    private func route(_ pair: Pair, side: Int) -> Bool {
        guard let link = links[pair] else { return false }
        let frames = link.sessions[side].routingFrames(now: .milliseconds(clock.now))
        for frame in frames { send(frame, on: link, from: side) }
        return !frames.isEmpty
    }

    private func fetch(_ pair: Pair, side: Int) async {
        guard let link = links[pair] else { return }
        let ids = await link.sessions[side].parentsToFetch(now: .milliseconds(clock.now), again: .milliseconds(100))
        guard !ids.isEmpty else { return }
        send(.fetch(ids), on: link, from: side)
        log("\(pair.relay(side)) asks \(pair.relay(1 - side)) for \(ids.count) parents")
    }

    // MARK: Appends

    /// A client appends to one relay; sometimes the identical event also to a second (a retry elsewhere).
    private func append() async throws {
        let up = upRelays
        guard let relay = up.randomElement(using: &random), let store = relay.store else { return }
        let namespace = namespaces.randomElement(using: &random)!
        let last = store.tips()[namespace]?.lastPosition ?? 0
        var parents = [EventID]()
        if last > 0, let head = try store.event(at: last, in: namespace) { parents.append(head.event.id) }
        if last > 1, Bool.random(using: &random), let other = try store.event(at: UInt64.random(in: 1...last, using: &random), in: namespace) {
            parents.append(other.event.id)
        }
        let event = try Event(namespace: namespace, timestamp: store.now(), parents: parents, type: "sim",
                              payload: Array("seed \(seed) append \(counts.appends)".utf8))
        counts.appends += 1
        let result = try await store.append(event)
        acknowledged[event.id] = namespace
        log("append \(event.id.short) to relay \(relay.index) \(namespace) → \(describe(result))")
        try checkCheap(relay)
        if Int.random(in: 0..<100, using: &random) < 15, let twin = up.filter({ $0 !== relay }).randomElement(using: &random), let other = twin.store,
           try parents.allSatisfy({ try other.event(id: $0) != nil }) {
            let again = try await other.append(event)
            log("append \(event.id.short) also to relay \(twin.index) → \(describe(again))")
            try checkCheap(twin)
        }
    }

    private func describe(_ result: AppendResult) -> String {
        switch result.outcome {
        case .appended(let placement): "appended @\(placement.position) as \(placement.origin.hex.prefix(8))#\(placement.originSeq)"
        case .duplicate(let placement): "duplicate @\(placement.position)"
        default: "\(result.outcome)"
        }
    }

    // MARK: Phases

    private func faultStep() async throws {
        clock.advance(by: UInt64.random(in: 0...4, using: &random))
        for relay in relays where relay.store == nil && relay.downUntil <= clock.now { try restart(relay) }
        for (pair, until) in blockedUntil.sorted(by: { $0.key < $1.key }) where until <= clock.now {
            blockedUntil[pair] = nil
            log("heal \(pair)")
        }
        let pairs = Pair.all(options.relayCount)
        let roll = Int.random(in: 0..<100, using: &random)
        let appendsLeft = options.appendCount - counts.appends
        let stepsLeft = options.faultSteps - step + 1
        if appendsLeft > 0, Int.random(in: 0..<stepsLeft, using: &random) < appendsLeft * 2 || appendsLeft >= stepsLeft {
            try await append()
        } else if roll < options.dropPercent {
            if let pair = links.keys.sorted().randomElement(using: &random) {
                counts.drops += 1
                disconnect(pair, because: "the connection dropped")
            }
        } else if roll < options.dropPercent + options.crashPercent {
            if upRelays.count > 1, let relay = upRelays.randomElement(using: &random) { crash(relay) }
        } else if roll < options.dropPercent + options.crashPercent + options.partitionPercent {
            let pair = pairs.randomElement(using: &random)!
            blockedUntil[pair] = clock.now + UInt64.random(in: 20...200, using: &random)
            counts.partitions += 1
            log("partition \(pair) until t=\(blockedUntil[pair]!)")
            disconnect(pair, because: "partitioned")
        } else if roll < 20 {
            let pair = pairs.randomElement(using: &random)!
            if links[pair] == nil, blockedUntil[pair] == nil { try connect(pair) }
        } else if roll < 40 {
            if let pair = links.keys.sorted().randomElement(using: &random) { _ = try push(pair, side: Int.random(in: 0...1, using: &random)) }
        } else if roll < 45 {
            if let pair = links.keys.sorted().randomElement(using: &random) {
                let side = Int.random(in: 0...1, using: &random)
                await fetch(pair, side: side)
                _ = route(pair, side: side)
            }
        } else {
            if let pair = links.keys.sorted().randomElement(using: &random) {
                try await deliver(pair, from: Int.random(in: 0...1, using: &random), faults: true)
            }
        }
        if options.checkEvery > 0, step % options.checkEvery == 0, let relay = upRelays.randomElement(using: &random) {
            try checkFull(relay)
        }
    }

    /// Heals the network and restarts every relay, links them in a connected
    /// topology chosen by the seed, then runs rounds without faults (every
    /// frame delivered in order, every side pushing and fetching) until
    /// nothing moves.
    private func quiet() async throws {
        log("quiet phase")
        blockedUntil = [:]
        for relay in relays where relay.store == nil { try restart(relay) }
        let n = options.relayCount
        let topology = Int.random(in: 0..<3, using: &random)
        var wanted: [Pair] = switch topology {
        case 0: (0..<n - 1).map { Pair($0, $0 + 1) }  // chain
        case 1: (1..<n).map { Pair(0, $0) }  // star
        default: Pair.all(n)  // mesh
        }
        wanted = wanted.filter { $0.low != $0.high }
        for pair in links.keys.sorted() where !wanted.contains(pair) { disconnect(pair, because: "not in the quiet topology") }
        for pair in wanted where links[pair] == nil { try connect(pair) }
        for round in 0..<options.quietRoundsMax {
            step += 1
            clock.advance(by: 25)
            var moved = false
            for pair in links.keys.sorted() {
                for side in 0..<2 {
                    while let head = links[pair]?.queues[side].first {
                        if head.deliverAt > clock.now { clock.advance(by: head.deliverAt - clock.now) }
                        try await deliver(pair, from: side, faults: false)
                        moved = true
                    }
                }
            }
            for pair in links.keys.sorted() {
                for side in 0..<2 {
                    if try push(pair, side: side) { moved = true }
                    await fetch(pair, side: side)
                    if route(pair, side: side) { moved = true }
                }
            }
            let pending = relays.contains { $0.store?.hasPending ?? false }
            let grafting = links.values.contains { $0.sessions.contains { $0.mayGraft || $0.notesDue } }
            if !moved && !pending && !grafting && links.values.allSatisfy({ $0.queues.allSatisfy(\.isEmpty) }) {
                log("quiet after \(round + 1) rounds")
                return
            }
        }
        var state = [String]()
        for relay in relays {
            guard let store = relay.store else { continue }
            for namespace in namespaces {
                let pending = try store.pending(in: namespace)
                state.append("relay \(relay.index) \(namespace): vector \(store.vector(of: namespace)), \(pending.count) pending \(pending.map { "\($0.id.short)(parents \($0.parents.map(\.short).joined(separator: "+")))" }.joined(separator: " "))")
            }
            state.append("relay \(relay.index) misses parents \(await store.missingParents().map(\.short))")
        }
        throw Failure("still moving after \(options.quietRoundsMax) quiet rounds:\n" + state.joined(separator: "\n"))
    }

    // MARK: Invariants

    /// Vector = held set, from memory: per namespace, the slots the vector
    /// counts are the positions plus the aliases.
    private func checkCheap(_ relay: SimulatedRelay) throws {
        guard let store = relay.store else { return }
        for (namespace, tip) in store.tips() {
            let total = store.vector(of: namespace).total
            guard total == tip.lastPosition + tip.aliasCount else {
                throw Failure("relay \(relay.index) \(namespace): vector counts \(total) slots, log has \(tip.lastPosition) positions + \(tip.aliasCount) aliases")
            }
        }
    }

    private func checkFull(_ relay: SimulatedRelay) throws {
        guard let store = relay.store else { return }
        for (namespace, violations) in try store.check(namespaces) where !violations.isEmpty {
            throw Failure("relay \(relay.index) \(namespace): \(violations.map(\.description).joined(separator: "; "))")
        }
    }

    private func checkConvergence() async throws {
        var reference: [Namespace: (vector: VersionVector, ids: Set<EventID>)] = [:]
        for relay in relays {
            let store = relay.store!
            try checkFull(relay)
            for namespace in namespaces {
                guard try store.pending(in: namespace).isEmpty else { throw Failure("relay \(relay.index) \(namespace): events still pending") }
                var ids = [EventID]()
                var position: UInt64 = 0
                while let stored = try store.event(at: position + 1, in: namespace) {
                    ids.append(stored.event.id)
                    position += 1
                }
                digest.update("relay \(relay.index) \(namespace): \(ids.map(\.short).joined(separator: ","))")
                let vector = store.vector(of: namespace)
                if let expected = reference[namespace] {
                    guard vector == expected.vector else {
                        throw Failure("relay \(relay.index) \(namespace): vector \(vector) differs from relay 0's \(expected.vector)")
                    }
                    guard Set(ids) == expected.ids else {
                        throw Failure("relay \(relay.index) \(namespace): holds \(ids.count) events, relay 0 \(expected.ids.count); they differ")
                    }
                } else {
                    reference[namespace] = (vector, Set(ids))
                }
            }
        }
        for (id, namespace) in acknowledged.sorted(by: { $0.key < $1.key }) where !(reference[namespace]?.ids.contains(id) ?? false) {
            throw Failure("acknowledged event \(id.short) of \(namespace) is on no relay's log")
        }
    }
}

/// The simulated time, in milliseconds: what every store's clock reads.
final class SimulatedClock: Sendable {
    private let milliseconds = Atomic<UInt64>(1_800_000_000_000)
    var now: UInt64 { milliseconds.load(ordering: .relaxed) }
    func advance(by delta: UInt64) { milliseconds.add(delta, ordering: .relaxed) }
}

final class SimulatedRelay {
    let index: Int
    let directory: String
    var store: Store?
    var downUntil: UInt64 = 0
    /// Which of its links carries which origin, when it routes (seeds ≡ 1 mod 3: every relay; ≡ 2: the even-numbered ones; ≡ 0: none); claims end with their links.
    let routes: RouteBoard?

    init(index: Int, directory: String, routing: Bool) {
        routes = routing ? RouteBoard() : nil
        self.index = index
        self.directory = directory
    }
}

/// One connection between two relays: a session at each end, and the frames
/// in flight each way (`queues[side]` goes from `side` to the other).
final class SimulatedLink {
    struct Message {
        let bytes: [UInt8]
        let reorderable: Bool
        let deliverAt: UInt64
    }

    let sessions: [LinkSession]
    var queues: [[Message]] = [[], []]
    /// Whether each side received its peer's READY (it may push).
    var ready = [false, false]

    init(sessions: [LinkSession]) { self.sessions = sessions }
}

/// Two relays, the lower index first; side 0 is `low`, side 1 `high`.
struct Pair: Hashable, Comparable, CustomStringConvertible {
    let low: Int
    let high: Int

    init(_ a: Int, _ b: Int) {
        low = min(a, b)
        high = max(a, b)
    }

    func relay(_ side: Int) -> Int { side == 0 ? low : high }
    func contains(_ relay: Int) -> Bool { low == relay || high == relay }
    static func < (a: Pair, b: Pair) -> Bool { (a.low, a.high) < (b.low, b.high) }
    static func all(_ n: Int) -> [Pair] { (0..<n).flatMap { i in (i + 1..<n).map { Pair(i, $0) } } }
    var description: String { "\(low)-\(high)" }
}

/// A running SHA-256 over the trace's lines.
struct SHA256Stream {
    private var state = [UInt8](repeating: 0, count: 32)
    mutating func update(_ line: String) { state = SHA256.hash(state + Array(line.utf8)) }
    func finish() -> String { Hex.encode(state) }
}
