// Writes the seed corpora of the fuzz targets (Fuzz/Corpus/<target>): valid
// inputs of every shape, so that fuzzing starts from deep inside each
// decoder. Run by `Tools/fuzz --seeds`; the output is committed.
import Foundation

let root = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Fuzz/Corpus"
func write(_ target: String, _ name: String, _ bytes: [UInt8]) {
    try! FileManager.default.createDirectory(atPath: "\(root)/\(target)", withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: "\(root)/\(target)/\(name)", contents: Data(bytes))
}

let key = try! SigningKey(seed: [UInt8](repeating: 7, count: 32))
let relay = try! SigningKey(seed: [UInt8](repeating: 9, count: 32)).publicKey
let namespace = try! Namespace("auction/task-7")
let task = try! Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1_790_000_000_000, logical: 0),
                      type: "task", payload: Array(#"{"task":"paint"}"#.utf8))
let bid = try! Event(namespace: namespace, author: key.publicKey, timestamp: HybridTimestamp(physicalMilliseconds: 1_790_000_000_100, logical: 3),
                     parents: [task.id], type: "bid", payload: Array(#"{"stake":40}"#.utf8)).signed(by: key)
let binary = try! Event(namespace: try! Namespace("doc/x"), timestamp: HybridTimestamp(rawValue: 42),
                        parents: [task.id, bid.id], type: "edit", payload: (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) })
for (name, event) in [("task", task), ("signed-bid", bid), ("binary", binary)] { write("event", name, event.encoded) }

let records = [Segment.Record(origin: relay, originSeq: 1, event: task), Segment.Record(origin: relay, originSeq: 2, event: bid)]
let segment = try! Segment(namespace: namespace, firstPosition: 1, records: records)
write("segment", "zstd", segment.encoded())
write("segment", "plain", segment.encoded(compress: false))
write("segment", "alias", try! Segment(namespace: namespace, firstPosition: 2, records: [records[0]], holdsAliases: true).encoded())
write("segment", "empty", try! Segment(namespace: namespace, records: []).encoded(compress: false))

var vector = VersionVector()
vector.advance(origin: relay, to: 12)
let frames: [(String, Frame)] = [
    ("hello", .hello(Frame.Hello(relay: relay, origin: relay, incarnation: 2, nonce: [UInt8](repeating: 5, count: Frame.nonceByteCount),
                                 frameBytesMax: 1 << 20, prefixes: ["doc/", "auction/"]))),
    ("proof", .proof(key.sign([1, 2, 3]))),
    ("want", .want(namespace, vector)),
    ("ready", .ready),
    ("segment", .segment(segment.encoded())),
    ("credit", .credit(8)),
    ("ack", .ack(namespace, vector)),
    ("fetch", .fetch([task.id, bid.id])),
    ("fetched", .fetched(records)),
    ("error", .error(ProtocolError(.badSegment, "checksum"))),
    ("presence", .presence(PresenceBoard.Snapshot(origin: relay, version: 7, leaseMilliseconds: 3000, entries: [
        PresenceBoard.Entry(namespace: namespace, participant: "agent-1", joinedMilliseconds: 1_700_000_000_000)]))),
    ("prune", .prune(namespace, [relay])),
    ("graft", .graft(namespace, [relay], vector)),
]
for (name, frame) in frames { write("frame", name, frame.encoded()) }

write("cursor", "fast", Array(Cursor.position(relay: relay.fingerprint, position: 503).text.utf8))
write("cursor", "portable", Array(Cursor.vector(vector).text.utf8))

write("body", "one", Array(#"{"type":"bid","payload":"{\"stake\": 40}","parents":["\#(task.id.hex)"]}"#.utf8))
write("body", "batch", Array(#"{"events":[{"type":"a","payload_base64":"AAEC"},{"type":"b","payload":"x"}]}"#.utf8))
write("body", "signed", Array(#"{"type":"bid","author":"\#(key.publicKey.hex)","timestamp":"\#(bid.timestamp.rawValue)","parents":["\#(task.id.hex)"],"payload":"{\"stake\":40}","signature":"\#(bid.signature.map { Hex.encode($0.bytes) } ?? "")"}"#.utf8))
write("body", "bulk", BulkBody.encode([task, bid, binary]))
print("seed corpora written under \(root)")
