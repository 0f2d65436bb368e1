public import Foundation
public import Logging
public import TrailCore
public import TrailStore

/// Everything `trail serve` needs to run a relay. The defaults run a relay on
/// `./trail-data` answering clients on 127.0.0.1:7400, with no peers and no
/// tokens: a development relay. `load(file:environment:flags:)` reads the
/// operator's settings with one precedence: flags, then environment, then
/// the file, then these defaults (Docs/OPERATIONS.md lists every setting).
public struct RelayConfiguration: Sendable {
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var dataDirectory = "./trail-data"
    /// The client API (HTTP and WebSocket).
    public var listen = Address(host: "127.0.0.1", port: 7400)
    /// The peer listener; nil runs no listener (the relay may still dial `peers`).
    public var peerListen: Address?
    public var peers: [Address] = []
    public var allowedPeers: [PublicKey] = []
    public var allowAnyPeer = false
    /// Namespace prefixes this relay holds and replicates (empty: all).
    public var prefixes: [String] = []
    public var durability: Durability = .buffered
    /// Appends are refused (507 disk_full) while the data directory's disk has less free than this.
    public var diskReserveBytes = StoreConfiguration().diskReserveBytes
    public var logLevel: Logger.Level = .info
    /// `text` (swift-log's stream format) or `json` (one object per line).
    public var logFormat = "text"
    /// Bearer tokens; with none, the client API is open (a loopback development relay).
    public var tokens: [AccessToken] = []
    /// The append limit of each token that sets none, and of all clients
    /// together on a relay without tokens; nil: unlimited.
    public var appendRate: AppendRate?
    /// The read limit (requests: pages, namespace listings and status,
    /// subscriptions opened) of each token that sets none, and of all clients
    /// together on a relay without tokens; nil: unlimited.
    public var readRate: AppendRate?
    /// Per-prefix rules; the longest matching prefix applies.
    public var policies: [NamespacePolicy] = []
    /// The largest payload any namespace accepts (a policy may lower it).
    public var payloadBytesMax = 1 << 20
    /// The largest request body (a batch, JSON or binary).
    public var requestBytesMax = 16 << 20
    /// Connections beyond this wait in the kernel's backlog.
    public var connectionCountMax = 16_384
    /// The most events in one page or one subscription batch.
    public var pageEventCountMax = 1000
    /// How long a shutdown waits for requests and subscribers before closing the store.
    public var shutdownGrace: Duration = .seconds(10)
    /// PEM files: with both, the client API is HTTPS (and WSS) and the peer
    /// listener, when `peerTLS`, presents this certificate.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// PEM file of the certificates that verify peers this relay dials (with `peerTLS`).
    public var tlsTrustRoots: String?
    /// TLS on peer links, both ways; needs the certificate, key and trust roots.
    public var peerTLS = false
    /// PRUNE/GRAFT routing on peer links (Docs/PROTOCOL.md "Routing"; off by default).
    public var peerRouting = false

    public init() {}
}

/// A bearer token: who may read or write which namespaces.
public struct AccessToken: Sendable, Hashable {
    /// A label for logs and metrics; never the secret.
    public var name: String
    /// The bearer secret; empty for a token held by `key`.
    public var secret: String
    /// An Ed25519 public key whose holder gets this token's reach by
    /// answering a challenge (`POST /v1/auth/challenge`, then `/v1/auth/session`)
    /// instead of presenting a secret; nil for a secret token.
    public var key: PublicKey?
    /// Namespace prefixes the token reaches (`""` reaches every namespace).
    public var prefixes: [String]
    public var canRead: Bool
    public var canWrite: Bool
    /// This token's append limit; nil: the relay's `appendRate`, if any.
    public var appendRate: AppendRate?
    /// This token's read limit, in requests (pages, namespace listings,
    /// subscriptions opened); nil: the relay's `readRate`, if any.
    public var readRate: AppendRate?

    public init(name: String, secret: String, prefixes: [String] = [""], canRead: Bool = true, canWrite: Bool = true,
                appendRate: AppendRate? = nil, readRate: AppendRate? = nil, key: PublicKey? = nil) {
        self.key = key
        self.appendRate = appendRate
        self.readRate = readRate
        self.name = name
        self.secret = secret
        self.prefixes = prefixes
        self.canRead = canRead
        self.canWrite = canWrite
    }
}

/// Rules for the namespaces under a prefix.
public struct NamespacePolicy: Sendable, Hashable {
    public var prefix: String
    /// Unsigned events are refused.
    public var requireSignatures = false
    /// When set, only events signed by one of these keys are accepted.
    public var allowedAuthors: Set<PublicKey>?
    /// Lower than the relay's `payloadBytesMax` to tighten it here.
    public var payloadBytesMax: Int?
    /// Applied to each namespace under the prefix when it is first written.
    public var retention: Retention?

    public init(
        prefix: String, requireSignatures: Bool = false, allowedAuthors: Set<PublicKey>? = nil,
        payloadBytesMax: Int? = nil, retention: Retention? = nil
    ) {
        self.prefix = prefix
        self.requireSignatures = requireSignatures
        self.allowedAuthors = allowedAuthors
        self.payloadBytesMax = payloadBytesMax
        self.retention = retention
    }
}

/// A setting that could not be used: where it came from, which, and why.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var source: String
    public var key: String
    public var reason: String
    public var description: String { "\(source): \(key): \(reason)" }

    public init(source: String, key: String, reason: String) {
        self.source = source
        self.key = key
        self.reason = reason
    }
}

extension RelayConfiguration {
    /// The environment variable naming a configuration file.
    public static let fileVariable = "TRAIL_CONFIG"

    /// The settings that come from the file, the environment and flags alike,
    /// each as text (`name` is the file key; the variable is TRAIL_ + NAME,
    /// the flag --name with `_` as `-`). Lists are comma-separated in the
    /// environment, repeated as flags, arrays in the file.
    public static let scalarSettings: [String] = [
        "data", "listen", "peer_listen", "peers", "allow_peers", "allow_any_peer", "prefixes", "durability",
        "log_level", "log_format", "payload_bytes_max", "request_bytes_max", "connection_count_max", "page_event_count_max",
        "shutdown_grace_seconds", "tls_certificate", "tls_key", "tls_trust_roots", "peer_tls", "peer_routing", "disk_reserve_mb",
    ]
    static let listSettings: Set<String> = ["peers", "allow_peers", "prefixes"]

    /// Reads the file (if any), then the environment, then the flags, each
    /// overriding the one before. Unknown keys and bad values are errors that
    /// name their source and key.
    public static func load(
        file: String?, environment: [String: String], flags: [String: [String]]
    ) throws(ConfigurationError) -> RelayConfiguration {
        var configuration = RelayConfiguration()
        if let file {
            try configuration.apply(file: file)
        }
        for name in scalarSettings {
            guard let value = environment["TRAIL_" + name.uppercased()] else { continue }
            let values = listSettings.contains(name)
                ? value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                : [value]
            try configuration.set(name, values, source: "environment variable TRAIL_\(name.uppercased())")
        }
        for (name, values) in flags.sorted(by: { $0.key < $1.key }) {
            guard scalarSettings.contains(name) else {
                throw ConfigurationError(source: "flags", key: name, reason: "not a setting")
            }
            try configuration.set(name, values, source: "flag --\(name.replacingOccurrences(of: "_", with: "-"))")
        }
        try configuration.validate()
        return configuration
    }

    /// A configuration file's contents alone (no environment, no flags),
    /// checked like `load`: what the configuration fuzz target exercises.
    public static func parse(fileContents data: Data, source: String) throws(ConfigurationError) -> RelayConfiguration {
        var configuration = RelayConfiguration()
        try configuration.apply(contents: data, source: source)
        try configuration.validate()
        return configuration
    }

    mutating func apply(file path: String) throws(ConfigurationError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigurationError(source: path, key: "(file)", reason: "cannot be read: \(error.localizedDescription)")
        }
        try apply(contents: data, source: path)
    }

    mutating func apply(contents data: Data, source path: String) throws(ConfigurationError) {
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw ConfigurationError(source: path, key: "(file)", reason: "is not valid JSON: \(error)")
        }
        guard case .object(let settings) = root else {
            throw ConfigurationError(source: path, key: "(file)", reason: "must hold one JSON object")
        }
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "tokens": tokens = try Self.tokens(value, source: path)
            case "append_rate": appendRate = try Self.appendRate(value, source: path, key: "append_rate")
            case "read_rate": readRate = try Self.appendRate(value, source: path, key: "read_rate", unit: "requests")
            case "namespaces": policies = try Self.policies(value, source: path)
            case _ where Self.scalarSettings.contains(key):
                try set(key, try Self.texts(value, key: key, source: path), source: path)
            default:
                throw ConfigurationError(
                    source: path, key: key,
                    reason: "unknown setting (known: \((Self.scalarSettings + ["tokens", "namespaces", "append_rate", "read_rate"]).joined(separator: ", ")))")
            }
        }
    }

    /// A file value as text: strings, numbers and booleans as written; arrays of them for lists.
    static func texts(_ value: JSONValue, key: String, source: String) throws(ConfigurationError) -> [String] {
        if case .array(let items) = value {
            guard listSettings.contains(key) else {
                throw ConfigurationError(source: source, key: key, reason: "takes one value, not a list")
            }
            var result = [String]()
            for item in items {
                guard let text = item.scalarText else {
                    throw ConfigurationError(source: source, key: key, reason: "expected a list of strings")
                }
                result.append(text)
            }
            return result
        }
        guard let text = value.scalarText else {
            throw ConfigurationError(source: source, key: key, reason: "expected a string, number or boolean")
        }
        return [text]
    }

    mutating func set(_ name: String, _ values: [String], source: String) throws(ConfigurationError) {
        func fail(_ reason: String) -> ConfigurationError { ConfigurationError(source: source, key: name, reason: reason) }
        func one() throws(ConfigurationError) -> String {
            guard values.count == 1, let value = values.first else { throw fail("takes one value, got \(values.count)") }
            return value
        }
        func integer(_ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            let text = try one()
            guard let value = Int(text), range.contains(value) else {
                throw fail("expected an integer from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            }
            return value
        }
        func address(_ text: String) throws(ConfigurationError) -> Address {
            do { return try Address(parsing: text) } catch { throw fail(error.reason) }
        }
        switch name {
        case "data":
            let value = try one()
            guard !value.isEmpty else { throw fail("is empty") }
            dataDirectory = value
        case "listen": listen = try address(try one())
        case "peer_listen":
            let value = try one()
            peerListen = value.isEmpty || value == "off" ? nil : try address(value)
        case "peers":
            var parsed = [Address]()
            for value in values { parsed.append(try address(value)) }
            peers = parsed
        case "allow_peers":
            var keys = [PublicKey]()
            for value in values {
                guard let key = try? PublicKey(hex: value) else { throw fail("\"\(value)\" is not a relay key (64 hex digits; `trail identity` prints it)") }
                keys.append(key)
            }
            allowedPeers = keys
        case "allow_any_peer", "peer_tls", "peer_routing":
            let value = try one()
            guard let flag = ["true": true, "false": false, "1": true, "0": false][value.lowercased()] else {
                throw fail("expected true or false, got \"\(value)\"")
            }
            switch name {
            case "peer_tls": peerTLS = flag
            case "peer_routing": peerRouting = flag
            default: allowAnyPeer = flag
            }
        case "tls_certificate", "tls_key", "tls_trust_roots":
            let value = try one()
            guard FileManager.default.isReadableFile(atPath: value) else { throw fail("cannot read the file \"\(value)\"") }
            switch name {
            case "tls_certificate": tlsCertificate = value
            case "tls_key": tlsKey = value
            default: tlsTrustRoots = value
            }
        case "prefixes": prefixes = values
        case "durability":
            let value = try one()
            guard let parsed = Durability(rawValue: value) else {
                throw fail("expected one of \(Durability.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(value)\"")
            }
            durability = parsed
        case "log_level":
            let value = try one()
            guard let level = Logger.Level(rawValue: value.lowercased()) else {
                throw fail("expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(value)\"")
            }
            logLevel = level
        case "log_format":
            let value = try one()
            guard ["text", "json"].contains(value) else { throw fail("expected text or json, got \"\(value)\"") }
            logFormat = value
        case "payload_bytes_max": payloadBytesMax = try integer(0...EventLimits.payloadBytesCeiling)
        case "request_bytes_max": requestBytesMax = try integer(1024...(1 << 30))
        case "connection_count_max": connectionCountMax = try integer(1...1_000_000)
        case "page_event_count_max": pageEventCountMax = try integer(1...100_000)
        case "shutdown_grace_seconds": shutdownGrace = .seconds(try integer(0...3600))
        case "disk_reserve_mb": diskReserveBytes = UInt64(try integer(0...(1 << 20))) << 20
        default: throw fail("not a setting")
        }
    }

    static func tokens(_ value: JSONValue, source: String) throws(ConfigurationError) -> [AccessToken] {
        guard case .array(let items) = value else {
            throw ConfigurationError(source: source, key: "tokens", reason: "expected an array of objects")
        }
        var tokens = [AccessToken]()
        for (index, item) in items.enumerated() {
            func fail(_ field: String, _ reason: String) -> ConfigurationError {
                ConfigurationError(source: source, key: "tokens[\(index)]\(field.isEmpty ? "" : ".")\(field)", reason: reason)
            }
            guard case .object(let object) = item else { throw fail("", "expected an object") }
            for field in object.keys.sorted() where !["name", "secret", "key", "prefixes", "access", "append_rate", "read_rate"].contains(field) {
                throw fail(field, "unknown field (known: name, secret, key, prefixes, access, append_rate, read_rate)")
            }
            var secret = ""
            var key: PublicKey?
            switch (object["secret"], object["key"]) {
            case (.some(let value), nil):
                guard case .string(let text) = value, text.utf8.count >= 16 else {
                    throw fail("secret", "required: a string of at least 16 characters")
                }
                secret = text
            case (nil, .some(let value)):
                guard case .string(let text) = value, let parsed = try? PublicKey(hex: text) else {
                    throw fail("key", "expected an Ed25519 public key, 64 hexadecimal digits")
                }
                key = parsed
            case (.some, .some):
                throw fail("key", "a token has a secret or a key, not both")
            case (nil, nil):
                throw fail("secret", "required: a secret of at least 16 characters, or a key (64 hexadecimal digits)")
            }
            var name = "token \(index)"
            if let value = object["name"] {
                guard case .string(let text) = value else { throw fail("name", "expected a string") }
                name = text
            }
            var prefixes = [""]
            if let value = object["prefixes"] {
                guard let texts = value.strings else { throw fail("prefixes", "expected an array of namespace prefixes") }
                prefixes = texts
            }
            var access = "read-write"
            if let value = object["access"] {
                guard case .string(let text) = value else { throw fail("access", "expected read, write or read-write") }
                access = text
            }
            guard let (read, write) = ["read": (true, false), "write": (false, true), "read-write": (true, true)][access] else {
                throw fail("access", "expected read, write or read-write, got \"\(access)\"")
            }
            let rate = try object["append_rate"].map { value throws(ConfigurationError) in
                try Self.appendRate(value, source: source, key: "tokens[\(index)].append_rate")
            }
            let readRate = try object["read_rate"].map { value throws(ConfigurationError) in
                try Self.appendRate(value, source: source, key: "tokens[\(index)].read_rate", unit: "requests")
            }
            tokens.append(AccessToken(name: name, secret: secret, prefixes: prefixes, canRead: read, canWrite: write,
                                      appendRate: rate, readRate: readRate, key: key))
        }
        return tokens
    }

    /// `{"events_per_second": N, "burst": M}` (burst defaults to N), or with
    /// `unit` "requests", `{"requests_per_second": N, "burst": M}`.
    static func appendRate(_ value: JSONValue, source: String, key: String, unit: String = "events") throws(ConfigurationError) -> AppendRate {
        let perSecond = "\(unit)_per_second"
        guard case .object(let object) = value else {
            throw ConfigurationError(source: source, key: key, reason: "expected {\"\(perSecond)\": N, \"burst\": M}")
        }
        for field in object.keys.sorted() where ![perSecond, "burst"].contains(field) {
            throw ConfigurationError(source: source, key: "\(key).\(field)", reason: "unknown field (known: \(perSecond), burst)")
        }
        guard let rate = object[perSecond]?.number, rate > 0, rate <= 10_000_000 else {
            throw ConfigurationError(source: source, key: "\(key).\(perSecond)", reason: "required: a number of \(unit) per second above 0")
        }
        var burst: Double?
        if let value = object["burst"] {
            guard let number = value.number, number >= 1, number <= 100_000_000 else {
                throw ConfigurationError(source: source, key: "\(key).burst", reason: "expected a number of \(unit), at least 1")
            }
            burst = number
        }
        return AppendRate(eventsPerSecond: rate, burst: burst)
    }

    static func policies(_ value: JSONValue, source: String) throws(ConfigurationError) -> [NamespacePolicy] {
        guard case .array(let items) = value else {
            throw ConfigurationError(source: source, key: "namespaces", reason: "expected an array of objects")
        }
        let known = ["prefix", "require_signatures", "authors", "payload_bytes_max", "retention"]
        var policies = [NamespacePolicy]()
        for (index, item) in items.enumerated() {
            func fail(_ field: String, _ reason: String) -> ConfigurationError {
                ConfigurationError(source: source, key: "namespaces[\(index)]\(field.isEmpty ? "" : ".")\(field)", reason: reason)
            }
            guard case .object(let object) = item else { throw fail("", "expected an object") }
            for field in object.keys.sorted() where !known.contains(field) {
                throw fail(field, "unknown field (known: \(known.joined(separator: ", ")))")
            }
            guard case .string(let prefix)? = object["prefix"] else { throw fail("prefix", "required: a namespace prefix") }
            var policy = NamespacePolicy(prefix: prefix)
            if let value = object["require_signatures"] {
                guard case .bool(let flag) = value else { throw fail("require_signatures", "expected true or false") }
                policy.requireSignatures = flag
            }
            if let value = object["authors"] {
                guard let texts = value.strings else { throw fail("authors", "expected an array of public keys") }
                var keys = Set<PublicKey>()
                for text in texts {
                    guard let key = try? PublicKey(hex: text) else { throw fail("authors", "\"\(text)\" is not a public key (64 hex digits)") }
                    keys.insert(key)
                }
                policy.allowedAuthors = keys
            }
            if let value = object["payload_bytes_max"] {
                guard let bytes = value.integer, (0...EventLimits.payloadBytesCeiling).contains(bytes) else {
                    throw fail("payload_bytes_max", "expected an integer from 0 to \(EventLimits.payloadBytesCeiling)")
                }
                policy.payloadBytesMax = bytes
            }
            if let value = object["retention"] {
                guard case .object(let retention) = value else { throw fail("retention", "expected an object") }
                var result = Retention()
                for (field, amount) in retention.sorted(by: { $0.key < $1.key }) {
                    guard let number = amount.integer, number > 0 else { throw fail("retention.\(field)", "expected a positive integer") }
                    switch field {
                    case "max_age_seconds": result.ageMillisecondsMax = UInt64(number) * 1000
                    case "max_count": result.eventCountMax = UInt64(number)
                    case "max_bytes": result.byteCountMax = UInt64(number)
                    default: throw fail("retention.\(field)", "unknown field (known: max_age_seconds, max_count, max_bytes)")
                    }
                }
                policy.retention = result
            }
            policies.append(policy)
        }
        return policies
    }

    /// Settings that are wrong together rather than alone.
    public func validate() throws(ConfigurationError) {
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw ConfigurationError(source: "configuration", key: "tls_certificate, tls_key", reason: "give both the certificate and its key, or neither")
        }
        if peerTLS, tlsCertificate == nil || tlsTrustRoots == nil {
            throw ConfigurationError(source: "configuration", key: "peer_tls", reason: "needs tls_certificate and tls_key (to serve) and tls_trust_roots (to verify the peers it dials)")
        }
    }

    /// The policy for a namespace: the longest matching prefix, or nil.
    public func policy(for namespace: Namespace) -> NamespacePolicy? {
        policies.filter { namespace.name.hasPrefix($0.prefix) }.max { $0.prefix.count < $1.prefix.count }
    }
}

extension RelayConfiguration.Address {
    /// HOST:PORT, with an IPv6 host in brackets (`[::1]:7400`).
    public init(parsing text: String) throws(InputReason) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw InputReason("expected HOST:PORT with a port from 0 to 65535, got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw InputReason("the host of \"\(text)\" is empty") }
        self.init(host: host, port: port)
    }
}

/// Why a piece of text could not be used.
public struct InputReason: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// A JSON value as written, so that a configuration file's `true`, `1` and
/// `"1"` stay distinct and each error can say what was found.
enum JSONValue: Decodable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let integer = try? container.decode(Int.self) {
            self = .number(String(integer))
        } else if let number = try? container.decode(Double.self) {
            self = .number(String(number))
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let items = try? container.decode([JSONValue].self) {
            self = .array(items)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    var scalarText: String? {
        switch self {
        case .bool(let flag): flag ? "true" : "false"
        case .number(let text), .string(let text): text
        case .null, .array, .object: nil
        }
    }

    var integer: Int? {
        if case .number(let text) = self { return Int(text) }
        return nil
    }

    var number: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    var strings: [String]? {
        guard case .array(let items) = self else { return nil }
        var result = [String]()
        for item in items {
            guard case .string(let text) = item else { return nil }
            result.append(text)
        }
        return result
    }
}
