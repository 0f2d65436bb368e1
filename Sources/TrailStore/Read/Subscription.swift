public import TrailCore

extension Store {
    /// The namespace's events after `cursor`: first the backlog, then each
    /// new event as its group commits, without polling. Memory is one page:
    /// the sequence reads the next page only when the consumer asks, so a slow
    /// consumer holds back nobody else. It ends when the store closes or the
    /// task is cancelled, and throws if the cursor is trimmed or invalid.
    public func subscribe(
        _ namespace: Namespace, after cursor: Cursor? = nil, filter: ReadFilter = .all, pageSize: Int = 1000
    ) -> Subscription {
        Subscription(store: self, namespace: namespace, cursor: cursor, filter: filter, pageSize: pageSize)
    }
}

public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = StoredEvent

    let store: Store
    let namespace: Namespace
    let cursor: Cursor?
    let filter: ReadFilter
    let pageSize: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, namespace: namespace, cursor: cursor, filter: filter, pageSize: pageSize)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: Store
        let namespace: Namespace
        var cursor: Cursor?
        let filter: ReadFilter
        let pageSize: Int
        var buffer: [StoredEvent] = []
        var index = 0

        init(store: Store, namespace: Namespace, cursor: Cursor?, filter: ReadFilter, pageSize: Int) {
            self.store = store
            self.namespace = namespace
            self.cursor = cursor
            self.filter = filter
            self.pageSize = pageSize
        }

        /// The cursor to resume from after the events returned so far.
        public var resumeCursor: Cursor? { index >= buffer.count ? cursor : nil }

        public mutating func next() async throws -> StoredEvent? {
            while true {
                if index < buffer.count {
                    defer { index += 1 }
                    return buffer[index]
                }
                if Task.isCancelled || store.closed { return nil }
                let page = try store.read(namespace, after: cursor, limit: pageSize, filter: filter)
                buffer = page.events
                index = 0
                cursor = nextCursor(after: page)
                if buffer.isEmpty, page.isAtEnd {
                    await store.signals.wait(namespace: namespace, after: page.lastPosition)
                }
            }
        }

        /// After a page, a portable cursor turns into a fast one only once the
        /// page reached the end of the log and this relay holds everything the
        /// vector names: then every seen event lies at or before the page's
        /// position. Until then the vector keeps filtering out seen events.
        private func nextCursor(after page: Page) -> Cursor {
            guard case .vector(let seen) = cursor,
                  case .vector(let portable) = page.portableCursor else { return page.cursor }
            let order = seen.compare(store.vector(of: namespace))
            let heldAll = order == .before || order == .equal
            return page.isAtEnd && heldAll ? page.cursor : .vector(portable)
        }
    }
}
