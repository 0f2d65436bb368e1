import NIOCore
import NIOPosix

extension Relay {
    /// Makes NIO's event loop threads (`MultiThreadedEventLoopGroup.singleton`,
    /// which the HTTP server and the peer links use) Swift Concurrency's
    /// global executor, so that a task reading a frame or answering a request
    /// runs on the thread that did the I/O instead of hopping to the
    /// cooperative pool and back. Measured on the ten-relay scale run (two
    /// cores): see Docs/PERFORMANCE.md. Call once, first thing in the process
    /// (`trail serve` does); returns false when the runtime offers no hook.
    /// Nothing run as a task may then block for long: it would hold up I/O.
    @discardableResult
    public static func runTasksOnEventLoops() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
