import Foundation
import Testing
import TrailAPI
import TrailCore

/// The relay writes events and outcomes with `JSONWriter`; what it writes must
/// read back as the same values through a standard JSON decoder.
@Suite struct JSONWriterTests {
    static func events() throws -> [EventOutput] {
        var generator = SplitMix64(seed: 7)
        let key = SigningKey.generate(using: &generator)
        let namespace = try Namespace("doc/\"quoted\"/ünï\\code")
        let texts = ["plain", "line\nbreak\ttab\r\u{8}\u{c}", "quote \" backslash \\ slash /", "\u{1}\u{1f} control", "emoji 🦜 and ✓", ""]
        var outputs = [EventOutput]()
        for (index, text) in texts.enumerated() {
            let event = try Event(
                namespace: namespace, author: index % 2 == 0 ? key.publicKey : nil, timestamp: HybridTimestamp(rawValue: UInt64(index) << 40 | 7),
                parents: index > 0 ? [EventID(bytes: [UInt8](repeating: UInt8(index), count: 32))] : [], type: "type \"q\" \\ \(index)",
                payload: Array(text.utf8))
            outputs.append(EventOutput(event: index % 2 == 0 ? event.signed(by: key) : event, position: UInt64(index + 1),
                                       origin: key.publicKey, originSeq: UInt64(index) * 1_000_000_007))
        }
        let binary = try Event(namespace: namespace, timestamp: .zero, type: "bin", payload: [0xFF, 0xFE, 0x00, 0x80])
        outputs.append(EventOutput(event: binary, position: UInt64.max, origin: key.publicKey, originSeq: 1))
        return outputs
    }

    @Test func eventsReadBackAsTheSameValues() throws {
        for output in try Self.events() {
            var writer = JSONWriter()
            writer.write(output)
            let decoded = try JSONDecoder().decode(EventOutput.self, from: Data(writer.bytes))
            #expect(decoded == output)
            #expect(try decoded.event().id.hex == output.id)
        }
    }

    @Test func pagesAndOutcomesReadBackAsTheSameValues() throws {
        let page = PageOutput(events: try Self.events(), cursor: "AQEg", portableCursor: "AQIB", lastPosition: 42)
        var writer = JSONWriter()
        writer.write(page)
        let decoded = try JSONDecoder().decode(PageOutput.self, from: Data(writer.bytes))
        #expect(decoded.events == page.events && decoded.cursor == "AQEg" && decoded.portableCursor == "AQIB" && decoded.lastPosition == 42)

        let outcomes = [
            AppendOutcome(outcome: "appended", id: "ab", position: 1, origin: "cd", originSeq: 9, durability: "replicated:2"),
            AppendOutcome(outcome: "conflict", id: "ef", existing: "01"),
            AppendOutcome(outcome: "pending", id: "00", durability: "buffered"),
        ]
        var batch = JSONWriter()
        batch.write(AppendBatchResponse(results: outcomes))
        #expect(try JSONDecoder().decode(AppendBatchResponse.self, from: Data(batch.bytes)).results == outcomes)
        // Keys sorted, as JSONEncoder with .sortedKeys writes them.
        var one = JSONWriter()
        one.write(outcomes[0])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(String(decoding: one.bytes, as: UTF8.self) == String(decoding: try encoder.encode(outcomes[0]), as: UTF8.self))
    }
}
