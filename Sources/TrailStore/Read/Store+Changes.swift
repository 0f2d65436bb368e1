public import TrailCore

extension Store {
    /// Each namespace's last position, for the namespaces whose names start
    /// with one of `prefixes` (every namespace when empty). Read from memory:
    /// a replicator calls it whenever the store changes.
    public func heads(prefixes: [String] = []) -> [Namespace: UInt64] {
        tips(prefixes: prefixes).mapValues(\.lastPosition)
    }

    /// What a namespace's log has grown to: its last position and how many
    /// aliases it holds (`Alias`), which fill origin slots without positions.
    public struct Tip: Sendable, Hashable {
        public let lastPosition: UInt64
        public let aliasCount: UInt64
    }

    /// Each non-empty namespace's tip, under `prefixes` (all when empty), read
    /// from memory in one pass.
    public func tips(prefixes: [String] = []) -> [Namespace: Tip] {
        tips(namespaceRegistry.all, prefixes: prefixes)
    }

    /// The tips of the given namespaces that are non-empty and under
    /// `prefixes` (all when empty): what a push loop looks at when it knows
    /// which namespaces grew (`takeChanges`), instead of every namespace.
    public func tips(of namespaces: Set<Namespace>, prefixes: [String] = []) -> [Namespace: Tip] {
        tips(namespaces.compactMap { namespace in namespaceRegistry.lookup(namespace).map { (namespace, $0) } }, prefixes: prefixes)
    }

    private func tips(_ entries: [(Namespace, NamespaceRegistry.Entry)], prefixes: [String]) -> [Namespace: Tip] {
        var tips = [Namespace: Tip]()
        for (namespace, entry) in entries where prefixes.isEmpty || prefixes.contains(where: { namespace.hasPrefix($0) }) {
            let tip = writer(for: Int(entry.shard)).published.withLock { published in
                published[entry.number].map { Tip(lastPosition: $0.lastPosition, aliasCount: $0.aliasCount) }
            }
            if let tip, tip.lastPosition > 0 { tips[namespace] = tip }
        }
        return tips
    }

    /// Starts recording which namespaces' logs grow, for one caller (a
    /// replicator's push loop): `takeChanges` hands them over. Stop with `unwatchChanges`.
    public func watchChanges() -> UInt64 { signals.watchChanges() }

    /// The namespaces whose logs grew since the watcher last took them.
    public func takeChanges(_ token: UInt64) -> Set<Namespace> { signals.takeChanges(token) }

    public func unwatchChanges(_ token: UInt64) { signals.unwatchChanges(token) }

    /// From now on, a commit that enters only events of `origins` in a
    /// namespace is not a change of it for this watcher: a push loop to a
    /// peer that takes those origins elsewhere is not woken by them.
    public func ignoreChanges(from origins: Set<RelayID>, watcher token: UInt64) {
        signals.ignore(origins, watcher: token)
    }

    /// Returns once the watcher has changes to take (`takeChanges`), the
    /// waiters were woken (`wakeChangeWaiters`), the store closed, or the
    /// task was cancelled.
    public func waitForChanges(_ token: UInt64) async {
        await signals.waitForChanges(token)
    }

    /// Counts commits that grew a log; `waitForChange(after:)` waits for it to move.
    public var changeGeneration: UInt64 { signals.generation }

    /// Returns once any namespace's log grew after `generation`, the store
    /// closed, or the task was cancelled.
    public func waitForChange(after generation: UInt64) async {
        await signals.wait(afterGeneration: generation)
    }

    /// Wakes whoever waits for any namespace to grow (`waitForChange`), as a
    /// commit would: a replicator whose peer now wants what it skipped before
    /// looks at its logs again.
    public func wakeChangeWaiters() {
        signals.bump()
    }

    /// Returns once the namespace's log passed `position`, the store closed,
    /// or the task was cancelled.
    public func waitForCommit(in namespace: Namespace, after position: UInt64) async {
        await signals.wait(namespace: namespace, after: position)
    }
}
