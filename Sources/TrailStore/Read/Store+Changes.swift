public import TrailCore

extension Store {
    /// Each namespace's last position, for the namespaces whose names start
    /// with one of `prefixes` (every namespace when empty). Read from memory:
    /// a replicator calls it whenever the store changes.
    public func heads(prefixes: [String] = []) -> [Namespace: UInt64] {
        var heads = [Namespace: UInt64]()
        for (namespace, entry) in namespaceRegistry.all
        where prefixes.isEmpty || prefixes.contains(where: { namespace.hasPrefix($0) }) {
            let last = writer(for: Int(entry.shard)).published.withLock { $0[entry.number]?.lastPosition } ?? 0
            if last > 0 { heads[namespace] = last }
        }
        return heads
    }

    /// Counts commits that grew a log; `waitForChange(after:)` waits for it to move.
    public var changeGeneration: UInt64 { signals.generation }

    /// Returns once any namespace's log grew after `generation`, the store
    /// closed, or the task was cancelled.
    public func waitForChange(after generation: UInt64) async {
        await signals.wait(afterGeneration: generation)
    }

    /// Returns once the namespace's log passed `position`, the store closed,
    /// or the task was cancelled.
    public func waitForCommit(in namespace: Namespace, after position: UInt64) async {
        await signals.wait(namespace: namespace, after: position)
    }
}
