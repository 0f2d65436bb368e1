import CoreMetrics
import Metrics
import Prometheus
import TrailCore
import TrailReplication
import TrailStore

/// The relay's metrics, exported at `/metrics` in Prometheus' text format.
/// Counters are swift-metrics counters backed by one Prometheus registry;
/// what is a state rather than a count (subscribers, pending, lag, RocksDB)
/// is read when scraped. Docs/OPERATIONS.md lists them and what to watch.
final class RelayMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    let appendedEvents: CoreMetrics.Counter
    let duplicateEvents: CoreMetrics.Counter
    let pendingEvents: CoreMetrics.Counter
    let refusedEvents: CoreMetrics.Counter
    let appendRequests: CoreMetrics.Counter
    /// Append requests refused by a client's `append_rate`.
    let rateLimited: CoreMetrics.Counter
    let readRateLimited: CoreMetrics.Counter
    let readRequests: CoreMetrics.Counter
    let readEvents: CoreMetrics.Counter
    let deliveredEvents: CoreMetrics.Counter
    let clientErrors: CoreMetrics.Counter
    /// Subscription messages sent from the shared fan-out, and read from the store for one subscriber.
    let sharedMessages: CoreMetrics.Counter
    let ownMessages: CoreMetrics.Counter
    let subscribers: CoreMetrics.Meter
    /// Times the relay handed free heap back to the system (`MemoryTrimmer`).
    let memoryTrims: CoreMetrics.Counter

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
        }
        appendedEvents = counter("trail_events_appended_total", [("outcome", "appended")])
        duplicateEvents = counter("trail_events_appended_total", [("outcome", "duplicate")])
        pendingEvents = counter("trail_events_appended_total", [("outcome", "pending")])
        refusedEvents = counter("trail_events_appended_total", [("outcome", "refused")])
        appendRequests = counter("trail_append_requests_total")
        rateLimited = counter("trail_append_rate_limited_total")
        readRateLimited = counter("trail_read_rate_limited_total")
        readRequests = counter("trail_read_requests_total")
        readEvents = counter("trail_read_events_total")
        deliveredEvents = counter("trail_subscription_events_total")
        clientErrors = counter("trail_client_errors_total")
        sharedMessages = counter("trail_subscription_messages_total", [("source", "fanout")])
        ownMessages = counter("trail_subscription_messages_total", [("source", "store")])
        subscribers = CoreMetrics.Meter(label: "trail_subscribers", factory: factory)
        memoryTrims = counter("trail_memory_trims_total")
    }

    func count(_ results: [AppendResult]) {
        var appended = 0, duplicate = 0, pending = 0, refused = 0
        for result in results {
            switch result.outcome {
            case .appended: appended += 1
            case .duplicate: duplicate += 1
            case .pending: pending += 1
            case .conflict, .trimmed, .headMoved: refused += 1
            }
        }
        if appended > 0 { appendedEvents.increment(by: appended) }
        if duplicate > 0 { duplicateEvents.increment(by: duplicate) }
        if pending > 0 { pendingEvents.increment(by: pending) }
        if refused > 0 { refusedEvents.increment(by: refused) }
    }

    /// The text of a scrape: the counters, then the state read now.
    func scrape(store: Store, replicator: Replicator, presence: Presence) -> [UInt8] {
        var out = [UInt8]()
        registry.emit(into: &out)
        var text = ""
        func gauge(_ name: String, _ help: String, _ samples: [(String, Double)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for (labels, value) in samples { text += "\(name)\(labels) \(value)\n" }
        }
        let namespaces = (try? store.namespaces()) ?? []
        gauge("trail_namespaces", "Namespaces holding events on this relay.", [("", Double(namespaces.count))])
        gauge("trail_events_stored", "Events in the logs (after retention).",
              [("", Double(namespaces.reduce(0) { $0 + $1.eventCount }))])
        gauge("trail_pending_events", "Events waiting for a parent or an origin predecessor.",
              [("", Double(namespaces.reduce(0) { $0 + $1.pendingCount }))])
        gauge("trail_participants", "Announced participants connected here, over all namespaces.",
              [("", Double(presence.participantCount))])
        let links = replicator.links
        gauge("trail_peer_links", "Peer links up.", [("", Double(links.count))])
        var lags = [(String, Double)]()
        var received = [(String, Double)]()
        var prunes = [(String, Double)]()
        var grafts = [(String, Double)]()
        for link in links {
            let label = "{peer=\"\(link.peer.hex.prefix(16))\",address=\"\(link.address)\"}"
            let lag = namespaces.reduce(UInt64(0)) { $0 + link.lag($1.namespace, local: $1.vector) }
            lags.append((label, Double(lag)))
            received.append((label, Double(link.eventsReceived)))
            prunes.append((label, Double(link.prunesSent)))
            grafts.append((label, Double(link.graftsSent)))
        }
        gauge("trail_peer_lag_events", "Events held here that the peer has not acknowledged.", lags)
        gauge("trail_peer_events_received", "Events received from the peer on this link.", received)
        gauge("trail_peer_prunes_sent", "PRUNEs sent on this link: origins this relay gets through another link.", prunes)
        gauge("trail_peer_grafts_sent", "GRAFTs sent on this link: pruned origins asked for again because their other path went quiet.", grafts)
        gauge("trail_disk_bytes", "Live SST bytes on disk (RocksDB's estimate).", [("", Double(store.diskByteCount))])
        for (property, name, help) in [
            ("rocksdb.cur-size-all-mem-tables", "trail_rocksdb_memtable_bytes", "Bytes in RocksDB memtables."),
            ("rocksdb.estimate-num-keys", "trail_rocksdb_keys", "RocksDB's estimate of keys, all column families."),
            ("rocksdb.estimate-pending-compaction-bytes", "trail_rocksdb_pending_compaction_bytes", "Bytes RocksDB expects to rewrite in compaction."),
            ("rocksdb.num-running-compactions", "trail_rocksdb_running_compactions", "Compactions running now."),
            ("rocksdb.background-errors", "trail_rocksdb_background_errors", "Background errors RocksDB recorded (nonzero: look at the log)."),
        ] {
            if let value = store.rocksDBProperty(property) { gauge(name, help, [("", Double(value))]) }
        }
        gauge("trail_heap_free_bytes", "Bytes free in the process's malloc arenas, trimmed or not (see trail_memory_trims_total).",
              [("", Double(MemoryTrimmer.freeHeapBytes))])
        if let value = store.rocksDBProperty("rocksdb.block-cache-usage", shared: true) {
            gauge("trail_rocksdb_block_cache_bytes", "Bytes in RocksDB's block cache (shared by all column families).", [("", Double(value))])
        }
        if let value = store.rocksDBProperty("rocksdb.estimate-table-readers-mem") {
            gauge("trail_rocksdb_table_readers_bytes", "Bytes RocksDB holds for open tables' indexes and filters (outside the block cache).", [("", Double(value))])
        }
        out.append(contentsOf: text.utf8)
        return out
    }
}
