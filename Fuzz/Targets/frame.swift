// libFuzzer target: the peer protocol's frame decoder (Docs/PROTOCOL.md).
// A decoded frame must encode back to bytes that decode to the same frame.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    guard let frame = try? Frame(decoding: bytes) else { return 0 }
    precondition((try? Frame(decoding: frame.encoded())) == frame, "a frame does not survive re-encoding")
    return 0
}
