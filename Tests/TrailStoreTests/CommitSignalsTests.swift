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
        signals.notify([(b, UInt64(1), Set<RelayID>?.none), (a, UInt64(6), nil)])
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

    /// A push loop's watcher is not told of commits that entered only events
    /// of origins it ignores; it is told of any other commit, of one whose
    /// other changes are unknown (nil origins), and woken by `bump`.
    @Test func aWatcherIgnoresCommitsOfOnlyItsIgnoredOrigins() async throws {
        let signals = CommitSignals()
        let (a, b) = (try Namespace("signals/a"), try Namespace("signals/b"))
        var generator = SplitMix64(seed: 3)
        let (peer, other, mine) = (SigningKey.generate(using: &generator).publicKey, SigningKey.generate(using: &generator).publicKey,
                                   SigningKey.generate(using: &generator).publicKey)
        let watch = signals.watchChanges()
        signals.ignore([peer, other], watcher: watch)
        signals.notify([(a, UInt64(1), Set([peer])), (b, UInt64(1), Set([peer, other]))])
        #expect(signals.takeChanges(watch).isEmpty)
        let waiter = Task { await signals.waitForChanges(watch) }
        try await Task.sleep(for: .milliseconds(50))
        signals.notify([(a, UInt64(2), Set([other]))])
        try await Task.sleep(for: .milliseconds(50))
        signals.notify([(a, UInt64(3), Set([other, mine]))])  // one origin it pushes: a change
        await waiter.value
        #expect(signals.takeChanges(watch) == [a])
        signals.notify([(b, UInt64(2), nil)])  // an alias or a trim besides: always a change
        await signals.waitForChanges(watch)
        #expect(signals.takeChanges(watch) == [b])
        // bump wakes a watcher without changes; the wait after it returns at once until changes are taken.
        let bumped = Task { await signals.waitForChanges(watch) }
        try await Task.sleep(for: .milliseconds(50))
        signals.bump()
        await bumped.value
        await signals.waitForChanges(watch)
        #expect(signals.takeChanges(watch).isEmpty)
        // Cancelled and unwatched waits return.
        let cancelled = Task { await signals.waitForChanges(watch) }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        await cancelled.value
        let unwatched = Task { await signals.waitForChanges(watch) }
        try await Task.sleep(for: .milliseconds(50))
        signals.unwatchChanges(watch)
        await unwatched.value
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }
}
