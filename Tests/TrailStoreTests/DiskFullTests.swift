import Foundation
import Testing
import TrailCore
import TrailStore

/// A filesystem of its own for one test: a tmpfs of a fixed size, mounted
/// by the test (needs root, as CI runs) and unmounted when it ends.
final class SmallFilesystem {
    let path: String

    init(megabytes: Int) async throws {
        path = NSTemporaryDirectory() + "trail-small-fs-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let (status, _, error) = try await runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path])
        guard status == 0 else { throw MountFailed(detail: error) }
    }

    /// Runs `body` on a fresh filesystem and always unmounts it (lazily: a store left open cannot keep it busy).
    static func with(megabytes: Int, _ body: (SmallFilesystem) async throws -> Void) async throws {
        let filesystem = try await SmallFilesystem(megabytes: megabytes)
        do { try await body(filesystem) } catch {
            await filesystem.unmount()
            throw error
        }
        await filesystem.unmount()
    }

    func unmount() async {
        _ = try? await runCommand("/bin/umount", ["-l", path])
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A file of `megabytes` that takes space until removed.
    func ballast(megabytes: Int) throws -> String {
        let file = path + "/ballast"
        let chunk = Data(count: 1 << 20)
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        for _ in 0..<megabytes { try handle.write(contentsOf: chunk) }
        try handle.close()
        return file
    }

    struct MountFailed: Error { let detail: String }

    /// Whether this machine lets a test mount a tmpfs (root, and not forbidden by a container).
    static let available: Bool = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount")
}

/// Disk full: appends are refused with a clear error before RocksDB meets the
/// full disk, nothing acknowledged is lost, reads go on, and appends resume
/// on their own when space returns.
@Suite(.enabled(if: SmallFilesystem.available, "mounting a tmpfs needs root"))
struct DiskFullTests {
    func bigEvent(_ index: Int, _ generator: inout SeededGenerator) throws -> Event {
        // Random bytes: zstd cannot shrink them, so they take their size on disk.
        let words = (0..<(32 << 10)).map { _ in generator.next() }
        let payload = words.withUnsafeBytes { Array($0) }
        return try Event(namespace: Namespace("disk/full"),
                         timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                         type: "blob", payload: payload)
    }

    @Test func appendsAreRefusedUnderTheReserveAndResumeWhenSpaceReturns() async throws {
        try await SmallFilesystem.with(megabytes: 256) { filesystem in
            let ballast = try filesystem.ballast(megabytes: 64)
            var configuration = StoreConfiguration()
            configuration.writeBufferBytes = StoreConfiguration.writeBufferBytesMin
            configuration.diskReserveBytes = 48 << 20
            let directory = filesystem.path + "/data"
            var store = try Store(directory: directory, configuration: configuration)
            defer { store.close() }
            var generator = SeededGenerator(seed: 5)
            var acknowledged = [EventID]()
            var refusal: (any Error)?
            for index in 0..<2000 {
                do {
                    let result = try await store.append(try bigEvent(index, &generator))
                    acknowledged.append(result.id)
                } catch {
                    refusal = error
                    break
                }
            }
            let error = try #require(refusal as? StoreError, "the disk never filled: \(acknowledged.count) appends")
            guard case .diskFull(let refusedDirectory, _, let reserve) = error else {
                Issue.record("expected diskFull, got \(error)")
                return
            }
            #expect(refusedDirectory == directory && reserve == 48 << 20)
            #expect("\(error)".contains("nearly full") && "\(error)".contains(directory))
            #expect(acknowledged.count > 20, "only \(acknowledged.count) appends before the reserve")
            // Still refused, and what was acknowledged is all there and sound.
            let refused = try bigEvent(5000, &generator)
            await #expect(throws: StoreError.self) { try await store.append(refused) }
            #expect(try store.readAll("disk/full").map(\.id) == acknowledged)
            #expect(try store.check(Namespace("disk/full")).isEmpty)

            // Space returns: appends resume without a restart.
            try FileManager.default.removeItem(atPath: ballast)
            try await Task.sleep(for: .milliseconds(300))
            let after = try await store.append(try bigEvent(6000, &generator))
            acknowledged.append(after.id)
            #expect(after.placement?.position == UInt64(acknowledged.count))

            // And everything survives a reopen.
            store.close()
            store = try Store(directory: directory, configuration: configuration)
            #expect(try store.readAll("disk/full").map(\.id) == acknowledged)
            #expect(try store.check(Namespace("disk/full")).isEmpty)
        }
    }
}
