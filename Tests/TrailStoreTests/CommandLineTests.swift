import Foundation
import Subprocess
import SystemPackage
import Testing
import TrailCore
import TrailStore

@Suite(.serialized) struct CommandLineTests {
    @Test func appendReadAndInspectRoundTrip() async throws {
        let directory = TemporaryDirectory("cli")
        let data = ["--data", directory.path]
        let (appendCode, appendOut, _) = try await runTrail(["append", "auction/task-7", "bid 40", "--type", "bid", "--json"] + data)
        #expect(appendCode == 0)
        #expect(appendOut.contains("\"outcome\":\"appended\""))
        #expect(appendOut.contains("\"position\":1"))
        let (stdinCode, _, _) = try await runTrail(["append", "auction/task-7", "--stdin"] + data, input: "bid 41")
        #expect(stdinCode == 0)
        let (readCode, readOut, readErr) = try await runTrail(["read", "auction/task-7"] + data)
        #expect(readCode == 0)
        #expect(readOut.contains("\"bid 40\"") && readOut.contains("\"bid 41\""))
        #expect(readErr.contains("cursor "))
        let (inspectCode, inspectOut, _) = try await runTrail(["inspect", "--verify"] + data)
        #expect(inspectCode == 0)
        #expect(inspectOut.contains("auction/task-7"))
        #expect(inspectOut.contains("verified: every invariant holds"))
    }

    @Test func retainTrimsToTheLimitAndReadersAreToldWhatIsGone() async throws {
        let directory = TemporaryDirectory("cli-retain")
        let data = ["--data", directory.path]
        for index in 0..<6 { _ = try await runTrail(["append", "metrics/cpu", "sample \(index)"] + data) }
        let (code, output, _) = try await runTrail(["retain", "metrics/cpu", "--max-count", "2"] + data)
        #expect(code == 0)
        #expect(output.contains("trimmed through 4"))
        let (readCode, _, readError) = try await runTrail(["read", "metrics/cpu"] + data)
        #expect(readCode != 0)
        #expect(readError.contains("trimmed through position 4"))
        let (zeroCode, _, zeroError) = try await runTrail(["retain", "metrics/cpu", "--max-count", "0"] + data)
        #expect(zeroCode != 0)
        #expect(zeroError.contains("--max-count"))
    }

    @Test func signedAppendWithAKeyFromKeygen() async throws {
        let directory = TemporaryDirectory("cli-key")
        let keyFile = directory.path + ".key"
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let (keygenCode, publicKey, _) = try await runTrail(["keygen", "--out", keyFile])
        #expect(keygenCode == 0)
        let author = publicKey.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(author.count == 64)
        let (code, _, _) = try await runTrail(["append", "rep/vouches", "vouch", "--key", keyFile, "--data", directory.path])
        #expect(code == 0)
        let (_, readOut, _) = try await runTrail(["read", "rep/vouches", "--json", "--author", author, "--data", directory.path])
        #expect(readOut.contains("\"author\":\"\(author)\""))
        #expect(readOut.contains("\"signature\""))
    }

    struct BadCommand: Sendable, CustomTestStringConvertible {
        let arguments: [String]
        let message: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let badCommands: [BadCommand] = [
        BadCommand(arguments: ["append", "bad//name", "x"], message: "namespace"),
        BadCommand(arguments: ["append", "ok/name"], message: "payload"),
        BadCommand(arguments: ["append", "ok/name", "x", "--parent", "nothex"], message: "--parent"),
        BadCommand(arguments: ["append", "ok/name", "x", "--key", "/nonexistent.key"], message: "--key"),
        BadCommand(arguments: ["append", "ok/name", "x", "--durability", "sometimes"], message: "durability"),
        BadCommand(arguments: ["read", "ok/name", "--after", "AAAA"], message: "cursor"),
        BadCommand(arguments: ["read", "ok/name", "--limit", "0"], message: "--limit"),
        BadCommand(arguments: ["read", "ok/name", "--author", "zz"], message: "--author"),
    ]

    @Test(arguments: badCommands)
    func badInputIsRefusedWithAMessageNamingItAndNothingIsWritten(_ command: BadCommand) async throws {
        let directory = TemporaryDirectory("cli-bad")
        _ = try await runTrail(["append", "ok/name", "kept", "--data", directory.path])
        let (code, _, error) = try await runTrail(command.arguments + ["--data", directory.path])
        #expect(code != 0)
        #expect(error.contains(command.message), "\(error)")
        let (_, readOut, _) = try await runTrail(["read", "ok/name", "--data", directory.path])
        #expect(readOut.split(separator: "\n").count == 1)
    }
}

@Suite(.serialized) struct EncodedAppendTests {
    static func frames(_ events: [Event]) -> [UInt8] {
        events.flatMap { event -> [UInt8] in
            let bytes = event.encoded
            var writer = ByteWriter()
            writer.write(UInt32(bytes.count))
            return writer.bytes + bytes
        }
    }

    @Test func encodedEventsFromAnotherProgramAreAppendedAndAcknowledged() async throws {
        let directory = TemporaryDirectory("cli-encoded")
        let events = try (0..<5).map { try makeEvent("interop/swift", $0) }
        // Frames are binary; pass them through a file rather than a String pipe.
        let path = directory.path + ".frames"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(Self.frames(events))))
        let (code, output, error) = try await runTrail(["append", "--encoded", "--file", path, "--json", "--data", directory.path])
        #expect(code == 0, "\(error)")
        let lines = output.split(separator: "\n")
        #expect(lines.count == 5)
        for (line, event) in zip(lines, events) { #expect(line.contains(event.id.hex)) }
    }

    @Test func aDamagedFrameStopsWithItsNumberAndKeepsWhatCameBefore() async throws {
        let directory = TemporaryDirectory("cli-encoded-bad")
        let events = try (0..<3).map { try makeEvent("interop/swift", $0) }
        var bytes = Self.frames(events)
        bytes[bytes.count - 10] ^= 0xFF  // inside the last event's payload length or payload
        bytes += [0, 0, 0, 9, 1]  // and a truncated frame after it
        let path = directory.path + ".frames"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let (code, _, error) = try await runTrail(["append", "--encoded", "--file", path, "--data", directory.path])
        #expect(code != 0)
        #expect(error.contains("event 2") || error.contains("input ends inside"), "\(error)")
        let (_, readOut, _) = try await runTrail(["read", "interop/swift", "--data", directory.path])
        #expect(readOut.split(separator: "\n").count >= 2)
    }
}
