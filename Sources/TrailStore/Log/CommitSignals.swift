import Synchronization
import TrailCore

/// Wakes subscribers when a namespace's log grows, so that following the live
/// tail needs no polling. The writer publishes a namespace's new state first
/// and signals second; a waiter that registers late sees the newer position
/// and returns at once.
final class CommitSignals: Sendable {
    private struct Waiter {
        let namespace: Namespace
        let after: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var last: [Namespace: UInt64] = [:]
        var waiters: [UInt64: Waiter] = [:]
        var cancelled: Set<UInt64> = []
        var nextToken: UInt64 = 0
        var closed = false
    }

    private let state = Mutex(State())

    func notify(namespace: Namespace, lastPosition: UInt64) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.last[namespace] = max(state.last[namespace] ?? 0, lastPosition)
            let tokens = state.waiters.filter { $0.value.namespace == namespace && $0.value.after < lastPosition }.map(\.key)
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

    /// Returns once `namespace` has a position above `position`, the store
    /// closed, or the task was cancelled.
    func wait(namespace: Namespace, after position: UInt64) async {
        let token = state.withLock { state -> UInt64 in
            state.nextToken += 1
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.closed || (state.last[namespace] ?? 0) > position || state.cancelled.remove(token) != nil {
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
