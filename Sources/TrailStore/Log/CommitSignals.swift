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
        /// Per watcher (`watchChanges`), the namespaces grown since it last took them.
        var changes: [UInt64: Set<Namespace>] = [:]
        var nextToken: UInt64 = 0
        var closed = false
    }

    private let state = Locked(State())

    func notify(namespace: Namespace, lastPosition: UInt64) {
        notify(CollectionOfOne((namespace, lastPosition)))
    }

    /// Records the namespaces a group grew and wakes their waiters, under one lock.
    func notify(_ grown: some Sequence<(Namespace, UInt64)>) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            var ready = [CheckedContinuation<Void, Never>]()
            // The tokens first: inserting while iterating the dictionary's keys would copy it.
            let watchers = Array(state.changes.keys)
            for (namespace, lastPosition) in grown {
                state.last[namespace] = max(state.last[namespace] ?? 0, lastPosition)
                state.generation += 1
                for token in watchers { state.changes[token]?.insert(namespace) }
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

    /// Moves the generation without a commit and wakes the waiters on any namespace.
    func bump() {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.generation += 1
            defer { state.anyNamespace = [:] }
            return state.anyNamespace.values.map(\.continuation)
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
            return state.byNamespace.values.flatMap { $0.values.map(\.continuation) } + state.anyNamespace.values.map(\.continuation)
        }
        all.forEach { $0.resume() }
    }

    var generation: UInt64 { state.withLock { $0.generation } }

    /// Starts recording, for the caller, which namespaces grow; returns its token.
    func watchChanges() -> UInt64 {
        state.withLock { state in
            state.nextToken += 1
            state.changes[state.nextToken] = []
            return state.nextToken
        }
    }

    /// The namespaces grown since the watcher last asked, and forgets them.
    func takeChanges(_ token: UInt64) -> Set<Namespace> {
        state.withLock { state in
            guard let changed = state.changes[token], !changed.isEmpty else { return [] }
            state.changes[token] = []
            return changed
        }
    }

    func unwatchChanges(_ token: UInt64) {
        _ = state.withLock { $0.changes.removeValue(forKey: token) }
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
