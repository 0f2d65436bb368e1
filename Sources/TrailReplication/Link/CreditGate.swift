import TrailCore

/// The sender's side of credit-based flow control: `acquire` takes one
/// credit, waiting while there are none; `grant` adds what the peer sent.
/// Cancellation ends a wait (the link is closing).
final class CreditGate: Sendable {
    private struct State {
        var available: UInt64 = 0
        var waiter: CheckedContinuation<Bool, Never>?
        var closed = false
    }

    private let state = Locked(State())

    func grant(_ count: UInt32) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.available += UInt64(count)
            guard state.available > 0, let waiter = state.waiter else { return nil }
            state.waiter = nil
            state.available -= 1
            return waiter
        }
        waiter?.resume(returning: true)
    }

    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: false)
    }

    /// Takes one credit; false when the gate closed or the task was cancelled.
    func acquire() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { state in
                    if state.closed || Task.isCancelled { return false }
                    if state.available > 0 {
                        state.available -= 1
                        return true
                    }
                    precondition(state.waiter == nil, "one sender per link")
                    state.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            close()
        }
    }
}
