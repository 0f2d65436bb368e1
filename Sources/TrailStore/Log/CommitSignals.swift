import TrailCore

/// Wakes subscribers when a namespace's log grows, so that following the live
/// tail needs no polling. The writer publishes a namespace's new state first
/// and signals second; a waiter that registers late sees the newer position
/// and returns at once.
final class CommitSignals: Sendable {
    private struct Waiter {
        /// A position of its namespace, or for a waiter on any namespace a generation.
        let after: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var last: [Namespace: UInt64] = [:]
        /// Counts notifications: a replicator waits for any namespace to grow.
        var generation: UInt64 = 0
        /// Waiters on one namespace, by namespace and token: a commit looks only
        /// at its own namespaces' waiters, not at every subscriber of the store.
        var byNamespace: [Namespace: [UInt64: Waiter]] = [:]
        /// Waiters on any namespace, by token.
        var anyNamespace: [UInt64: Waiter] = [:]
        var cancelled: Set<UInt64> = []
        /// The watchers (`watchChanges`), by token.
        var watches: [UInt64: Watch] = [:]
        var nextToken: UInt64 = 0
        var closed = false

        /// Removes and returns the watcher's suspended wait, if any.
        mutating func takeWaiter(of token: UInt64) -> CheckedContinuation<Void, Never>? {
            guard let waiter = watches[token]?.waiter else { return nil }
            watches[token]?.waiter = nil
            return waiter
        }
    }

    /// A watcher: the namespaces grown since it last took them, less those
    /// where only events of origins it ignores entered.
    private struct Watch {
        var changed: Set<Namespace> = []
        var ignoring: Set<RelayID> = []
        /// Woken without a change (`bump`): the next wait returns at once.
        var poked = false
        var waiter: CheckedContinuation<Void, Never>?
        var cancelled = false
    }

    private let state = Locked(State())

    func notify(namespace: Namespace, lastPosition: UInt64) {
        notify(CollectionOfOne((namespace, lastPosition, Set<RelayID>?.none)))
    }

    /// Records the namespaces a group grew and wakes their waiters, under one
    /// lock. `origins` are those of the events that entered the namespace's
    /// log, when that is all that changed (nil: something else too, such as
    /// an alias or a trim): a watcher that ignores all of them is not told.
    func notify(_ grown: some Sequence<(Namespace, UInt64, Set<RelayID>?)>) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            var ready = [CheckedContinuation<Void, Never>]()
            // The tokens first: changing values while iterating the dictionary would copy it.
            let watchers = Array(state.watches.keys)
            for (namespace, lastPosition, origins) in grown {
                state.last[namespace] = max(state.last[namespace] ?? 0, lastPosition)
                state.generation += 1
                for token in watchers {
                    if let origins, let ignoring = state.watches[token]?.ignoring, !ignoring.isEmpty, origins.isSubset(of: ignoring) { continue }
                    state.watches[token]?.changed.insert(namespace)
                    if let waiter = state.takeWaiter(of: token) { ready.append(waiter) }
                }
                guard var waiting = state.byNamespace.removeValue(forKey: namespace) else { continue }
                for (token, waiter) in waiting where waiter.after < lastPosition {
                    waiting.removeValue(forKey: token)
                    ready.append(waiter.continuation)
                }
                if !waiting.isEmpty { state.byNamespace[namespace] = waiting }
            }
            let generation = state.generation
            for (token, waiter) in state.anyNamespace where waiter.after < generation {
                state.anyNamespace.removeValue(forKey: token)
                ready.append(waiter.continuation)
            }
            return ready
        }
        ready.forEach { $0.resume() }
    }

    /// Moves the generation without a commit and wakes the waiters on any
    /// namespace and every watcher.
    func bump() {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.generation += 1
            defer { state.anyNamespace = [:] }
            var ready = state.anyNamespace.values.map(\.continuation)
            for token in Array(state.watches.keys) {
                state.watches[token]?.poked = true
                if let waiter = state.takeWaiter(of: token) { ready.append(waiter) }
            }
            return ready
        }
        ready.forEach { $0.resume() }
    }

    /// Wakes every waiter; later waits return at once. Used when the store closes.
    func close() {
        let all: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.closed = true
            defer {
                state.byNamespace = [:]
                state.anyNamespace = [:]
            }
            var all = state.byNamespace.values.flatMap { $0.values.map(\.continuation) } + state.anyNamespace.values.map(\.continuation)
            for token in Array(state.watches.keys) {
                if let waiter = state.takeWaiter(of: token) { all.append(waiter) }
            }
            return all
        }
        all.forEach { $0.resume() }
    }

    var generation: UInt64 { state.withLock { $0.generation } }

    /// Whether anyone watches changes (`watchChanges`): a store without
    /// replicators need not work out which origins a commit entered.
    var isWatched: Bool { state.withLock { !$0.watches.isEmpty } }

    /// Starts recording, for the caller, which namespaces grow; returns its token.
    func watchChanges() -> UInt64 {
        state.withLock { state in
            state.nextToken += 1
            state.watches[state.nextToken] = Watch()
            return state.nextToken
        }
    }

    /// From now on, a commit that enters only events of these origins in a
    /// namespace does not count as a change of it for the watcher.
    func ignore(_ origins: Set<RelayID>, watcher token: UInt64) {
        state.withLock { $0.watches[token]?.ignoring = origins }
    }

    /// The namespaces grown since the watcher last asked, and forgets them.
    func takeChanges(_ token: UInt64) -> Set<Namespace> {
        state.withLock { state in
            state.watches[token]?.poked = false
            guard let changed = state.watches[token]?.changed, !changed.isEmpty else { return [] }
            state.watches[token]?.changed = []
            return changed
        }
    }

    func unwatchChanges(_ token: UInt64) {
        let waiter = state.withLock { $0.watches.removeValue(forKey: token)?.waiter }
        waiter?.resume()
    }

    /// Returns once the watcher has changes to take, was woken (`bump`), the
    /// store closed, or the task was cancelled.
    func waitForChanges(_ token: UInt64) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard let watch = state.watches[token], !state.closed, !watch.poked, watch.changed.isEmpty, !watch.cancelled else {
                        state.watches[token]?.cancelled = false
                        return true
                    }
                    state.watches[token]?.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.takeWaiter(of: token) else {
                    state.watches[token]?.cancelled = true
                    return nil
                }
                return waiter
            }
            waiter?.resume()
        }
    }

    /// Returns once `namespace` has a position above `position`, the store
    /// closed, or the task was cancelled.
    func wait(namespace: Namespace, after position: UInt64) async {
        await wait(namespace as Namespace?, after: position)
    }

    /// Returns once any namespace grew after `generation`, the store closed, or the task was cancelled.
    func wait(afterGeneration generation: UInt64) async {
        await wait(nil, after: generation)
    }

    private func wait(_ namespace: Namespace?, after position: UInt64) async {
        let token = state.withLock { state -> UInt64 in
            state.nextToken += 1
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    let reached = if let namespace { (state.last[namespace] ?? 0) > position } else { state.generation > position }
                    if state.closed || reached || state.cancelled.remove(token) != nil {
                        return true
                    }
                    let waiter = Waiter(after: position, continuation: continuation)
                    if let namespace { state.byNamespace[namespace, default: [:]][token] = waiter } else { state.anyNamespace[token] = waiter }
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                let waiter: Waiter?
                if let namespace {
                    waiter = state.byNamespace[namespace]?.removeValue(forKey: token)
                    if state.byNamespace[namespace]?.isEmpty == true { state.byNamespace[namespace] = nil }
                } else {
                    waiter = state.anyNamespace.removeValue(forKey: token)
                }
                if let waiter { return waiter.continuation }
                state.cancelled.insert(token)
                return nil
            }
            continuation?.resume()
        }
    }
}
