import TrailCore

/// Wakes subscribers when a namespace's log grows, so that following the live
/// tail needs no polling. The writer publishes a namespace's new state first
/// and signals second; a waiter that registers late sees the newer position
/// and returns at once.
final class CommitSignals: Sendable {
    private struct Waiter {
        /// nil: any namespace; `after` is then a generation.
        let namespace: Namespace?
        let after: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var last: [Namespace: UInt64] = [:]
        /// Counts notifications: a replicator waits for any namespace to grow.
        var generation: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var cancelled: Set<UInt64> = []
        var nextToken: UInt64 = 0
        var closed = false
    }

    private let state = Locked(State())

    func notify(namespace: Namespace, lastPosition: UInt64) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.last[namespace] = max(state.last[namespace] ?? 0, lastPosition)
            state.generation += 1
            let generation = state.generation
            let tokens = state.waiters.filter { _, waiter in
                if let waiting = waiter.namespace { waiting == namespace && waiter.after < lastPosition } else { waiter.after < generation }
            }.map(\.key)
            return tokens.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        ready.forEach { $0.resume() }
    }

    /// Wakes every waiter; later waits return at once. Used when the store closes.
    func close() {
        let all: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.closed = true
            defer { state.waiters = [:] }
            return state.waiters.values.map(\.continuation)
        }
        all.forEach { $0.resume() }
    }

    var generation: UInt64 { state.withLock { $0.generation } }

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
                    state.waiters[token] = Waiter(namespace: namespace, after: position, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiters.removeValue(forKey: token) { return waiter.continuation }
                state.cancelled.insert(token)
                return nil
            }
            continuation?.resume()
        }
    }
}
