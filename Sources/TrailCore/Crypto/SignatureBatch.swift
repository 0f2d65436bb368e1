import Dispatch
import Foundation

extension Event {
    /// The signature status of each event, verified in parallel chunks on
    /// every core (Ed25519 verification dominates a signed log's checks).
    /// Unsigned events cost nothing.
    public static func signatureStatuses(_ events: [Event]) -> [SignatureStatus] {
        var statuses = [SignatureStatus](repeating: .unsigned, count: events.count)
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let signedCount = events.reduce(0) { $0 + ($1.signature == nil ? 0 : 1) }
        guard signedCount >= 2 * cores else {
            for index in events.indices where events[index].signature != nil { statuses[index] = events[index].signatureStatus }
            return statuses
        }
        let chunkCount = cores * 4
        let chunk = (events.count + chunkCount - 1) / chunkCount
        statuses.withUnsafeMutableBufferPointer { output in
            let output = UnsafeSendableBuffer(output)
            DispatchQueue.concurrentPerform(iterations: chunkCount) { part in
                let start = part * chunk
                guard start < events.count else { return }
                for index in start..<min(start + chunk, events.count) where events[index].signature != nil {
                    output.buffer[index] = events[index].signatureStatus
                }
            }
        }
        return statuses
    }
}

/// Disjoint slots of one buffer written from several threads at once.
private struct UnsafeSendableBuffer<Element>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Element>
    init(_ buffer: UnsafeMutableBufferPointer<Element>) { self.buffer = buffer }
}
