// libFuzzer target: the segment decoder (Docs/FORMAT.md §4). A decoded
// segment must re-encode (uncompressed, or compressed) into bytes that
// decode to the same records.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSegment(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let segment = try? Segment(decoding: bytes, limits: EventLimits(payloadBytesMax: 1 << 20)) else { return 0 }
    for compress in [false, true] {
        let again = try? Segment(decoding: segment.encoded(compress: compress), limits: EventLimits(payloadBytesMax: 1 << 20))
        precondition(again?.records == segment.records && again?.holdsAliases == segment.holdsAliases, "a segment does not survive re-encoding")
    }
    return 0
}
