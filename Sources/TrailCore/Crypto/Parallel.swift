import Dispatch
import Foundation

/// Work split over every core.
public enum Parallel {
    /// The cores to split over, read once: `activeProcessorCount` reads the
    /// process's CPU affinity on every call (4% of a relay's CPU when asked
    /// once per segment on the ten-relay scale run).
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// `transform(index)` for every index in `0..<count`, in chunks on every
    /// core (serially when `count` is below `serialBelow`); results in index order.
    public static func map<T>(_ count: Int, serialBelow: Int = 64, _ transform: (Int) -> T) -> [T] {
        guard count >= serialBelow, cores > 1 else { return (0..<count).map(transform) }
        let chunkCount = cores * 4
        let chunk = (count + chunkCount - 1) / chunkCount
        return withoutActuallyEscaping(transform) { transform in
            let work = UnsafeTransfer(transform)
            return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                let output = UnsafeTransfer(buffer)
                DispatchQueue.concurrentPerform(iterations: chunkCount) { part in
                    let start = part * chunk
                    guard start < count else { return }
                    for index in start..<min(start + chunk, count) {
                        (output.value.baseAddress! + index).initialize(to: work.value(index))
                    }
                }
                initialized = count
            }
        }
    }
}

/// Hands a value to worker threads that touch disjoint parts of it.
private struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension Event {
    /// The signature status of each event, verified on every core
    /// (Ed25519 verification dominates a signed log's checks). Unsigned
    /// events cost nothing.
    public static func signatureStatuses(_ events: [Event]) -> [SignatureStatus] {
        let signed = events.reduce(0) { $0 + ($1.signature == nil ? 0 : 1) }
        return Parallel.map(events.count, serialBelow: signed >= 8 ? 64 : .max) { events[$0].signatureStatus }
    }
}
