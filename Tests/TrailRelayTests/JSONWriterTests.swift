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

/// The append body's reader: strict JSON, precise field paths, no traps.
@Suite struct JSONReaderTests {
    func parse(_ text: String) throws(InputError) -> AppendBody {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { buffer in Result { () throws(InputError) in try AppendBody.parse(buffer) } }.get()
    }

    @Test func readsEventsWithEveryEscape() throws {
        guard case .one(let input) = try parse(#" {"type":"t","payload":"a\"b\\c\/d\n\u00e9\ud83e\udd9c","parents":[]} "#) else {
            Issue.record("expected one event")
            return
        }
        #expect(input.type == "t")
        #expect(input.payload == "a\"b\\c/d\né🦜")
        #expect(input.parents == [])
        guard case .batch(let inputs) = try parse(#"{"events":[{"type":"a"},{"type":"b","payload_base64":"AA=="}]}"#) else {
            Issue.record("expected a batch")
            return
        }
        #expect(inputs.map(\.type) == ["a", "b"])
    }

    @Test func refusesBadBodiesNamingWhere() {
        let cases: [(String, String)] = [
            (#"{"type":"t""#, "body"),
            (#"{"type":"t"} x"#, "body"),
            (#"{"type":"t","type":"u"}"#, "body"),
            (#"{"type":"\ud800"}"#, "body"),
            (#"{"type":"a\u0001"}"#.replacingOccurrences(of: "\\u0001", with: "\u{1}"), "body"),
            (#"{"type":01}"#, "body"),
            (String(repeating: "[", count: 100), "body"),
            (#"[]"#, "body"),
            (#"{"type":5}"#, "type"),
            (#"{"type":"t","parents":[1]}"#, "parents[0]"),
            (#"{"events":[{"type":"a"},{"tipe":"b"}]}"#, "events[1].tipe"),
            (#"{"events":{},"type":"x"}"#, "type"),
        ]
        for (text, field) in cases {
            #expect(throws: InputError.self, "\(text)") { _ = try parse(text) }
            do { _ = try parse(text) } catch { #expect(error.field == field, "\(text): \(error)") }
        }
    }

    /// Random mutations of valid bodies: the reader answers (a value or an error) and never traps.
    @Test func survivesMutations() {
        var generator = SplitMix64(seed: 99)
        let seeds = [#"{"type":"msg","payload":"h\u00e9llo","parents":["ab"]}"#, #"{"events":[{"type":"a"},{"type":"b","payload":"x"}]}"#]
        for round in 0..<5000 {
            var bytes = Array(seeds[round % 2].utf8)
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let at = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.remove(at: at)
                default: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: at)
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            _ = bytes.withUnsafeBytes { buffer in Result { () throws(InputError) in try AppendBody.parse(buffer) } }
        }
    }

    /// A subscriber reads each message with `StreamMessage.parse`, without
    /// Foundation: it must read what the relay writes (events from
    /// `JSONWriter`, notices from `JSONEncoder`) as the same values, and name
    /// the field of a message it cannot read.
    @Test func subscriptionMessagesReadBackAsTheSameValues() throws {
        let events = try JSONWriterTests.events()
        var message = Array(#"{"cursor":"AQEg","events":["#.utf8)
        for (index, output) in events.enumerated() {
            var writer = JSONWriter()
            writer.write(output)
            if index > 0 { message.append(UInt8(ascii: ",")) }
            message += writer.bytes
        }
        message += Array(#"],"kind":"events","portable_cursor":"AQIB","later_field":[1,{"x":null}]}"#.utf8)
        let read = try message.withUnsafeBytes { try StreamMessage.parse($0) }
        #expect(read.kind == "events" && read.cursor == "AQEg" && read.portableCursor == "AQIB")
        #expect(read.events == events)

        let who = ParticipantOutput(id: "agent-7", relay: "ab12", joinedMs: 1_700_000_000_123)
        for notice in [
            StreamMessage(kind: "participants", participants: [who, ParticipantOutput(id: "b", relay: "cd", joinedMs: 0)]),
            StreamMessage(kind: "joined", participant: who),
            StreamMessage(kind: "error", error: ErrorBody(status: 410, code: "trimmed", field: "after", message: "trimmed through 9").error),
        ] {
            let bytes = [UInt8](try JSONEncoder().encode(notice))
            let read = try bytes.withUnsafeBytes { try StreamMessage.parse($0) }
            #expect(read.kind == notice.kind && read.participants == notice.participants && read.participant == notice.participant)
            #expect(read.error?.status == notice.error?.status && read.error?.code == notice.error?.code)
            #expect(read.error?.field == notice.error?.field && read.error?.message == notice.error?.message)
        }

        for (bad, field) in [
            (#"{"kind":"events","events":[{"id":"ab"}]}"#, "events[0].namespace"),
            (#"{"kind":"events","events":[{"id":"ab","namespace":"n","origin":"o","type":"t","timestamp":"1","position":-1,"origin_seq":1,"time_ms":1}]}"#, "events[0].position"),
            (#"{"events":[]}"#, "kind"),
            (#"{"kind":"joined","participant":{"id":"a"}}"#, "participant"),
            (#"{"kind":"events""#, "body"),
        ] {
            #expect(throws: InputError.self) { try Array(bad.utf8).withUnsafeBytes { try StreamMessage.parse($0) } }
            do {
                _ = try Array(bad.utf8).withUnsafeBytes { try StreamMessage.parse($0) }
            } catch {
                #expect((error as? InputError)?.field == field, "\(bad)")
            }
        }
    }
}
