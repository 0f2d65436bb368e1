// libFuzzer target: the client API's request bodies — the JSON append body
// (one event or a batch) and the binary bulk body (Docs/API.md). Every input
// is parsed or refused with an error; nothing traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBody(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? JSONReader.parse(bytes)
    if let body = try? AppendBody.parse(bytes) {
        let namespace = try! Namespace("fuzz/body")
        switch body {
        case .one(let input): _ = try? input.event(in: namespace, now: { HybridTimestamp(rawValue: 1) }, limits: .default, field: "body")
        case .batch(let inputs):
            for input in inputs { _ = try? input.event(in: namespace, now: { HybridTimestamp(rawValue: 1) }, limits: .default, field: "body") }
        }
    }
    if let events = try? BulkBody.decode(bytes, limits: .default) {
        precondition(BulkBody.encode(events).elementsEqual(bytes), "a bulk body does not re-encode to its bytes")
    }
    return 0
}
