// libFuzzer target: the canonical event decoder (Docs/FORMAT.md §1) on
// untrusted bytes. Any input must decode or throw a DecodeError; a decoded
// event must re-encode to the same bytes and hash to the same id.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEvent(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let event = try? Event(decoding: bytes, limits: EventLimits(payloadBytesMax: 1 << 20)) else { return 0 }
    let encoded = event.encoded
    precondition(encoded.elementsEqual(bytes), "a decoded event re-encodes to other bytes")
    precondition((try? Event(decoding: encoded))?.id == event.id, "a re-decoded event has another id")
    return 0
}
