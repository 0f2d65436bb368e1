import Testing
import TrailCore
@testable import TrailStore

/// Waiters are woken by their own namespace's commits (and any-namespace
/// waiters by any), never by another namespace's, and cancellation frees them.
@Suite struct CommitSignalsTests {
    @Test func aCommitWakesItsNamespacesWaitersAndTheAnyNamespaceOnes() async throws {
        let signals = CommitSignals()
        let (a, b) = (try Namespace("signals/a"), try Namespace("signals/b"))
        let woken = Locked<[String]>([])
        let waiters = [
            Task { await signals.wait(namespace: a, after: 0); woken.withLock { $0.append("a") } },
            Task { await signals.wait(namespace: b, after: 0); woken.withLock { $0.append("b") } },
            Task { await signals.wait(namespace: a, after: 5); woken.withLock { $0.append("a after 5") } },
            Task { await signals.wait(afterGeneration: 0); woken.withLock { $0.append("any") } },
        ]
        try await Task.sleep(for: .milliseconds(100))  // every waiter registered
        signals.notify(namespace: a, lastPosition: 3)
        try await waitUntil { woken.withLock { Set($0) } == ["a", "any"] }
        #expect(Set(woken.withLock { $0 }) == ["a", "any"], "b's waiter and a's waiter after 5 still wait")
        signals.notify([(b, UInt64(1)), (a, UInt64(6))])
        for waiter in waiters { await waiter.value }
        #expect(Set(woken.withLock { $0 }) == ["a", "b", "a after 5", "any"])
        // Positions already reached answer at once.
        await signals.wait(namespace: a, after: 5)
    }

    @Test func aCancelledWaiterReturnsAndIsForgotten() async throws {
        let signals = CommitSignals()
        let namespace = try Namespace("signals/cancel")
        let waiter = Task { await signals.wait(namespace: namespace, after: 0) }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await waiter.value
        signals.notify(namespace: namespace, lastPosition: 1)  // nothing left to resume: no double resume
        let closed = Task { await signals.wait(namespace: namespace, after: 10) }
        signals.close()
        await closed.value
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }
}
