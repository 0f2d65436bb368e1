// libFuzzer target: the cursor text parser (Docs/FORMAT.md §2). A parsed
// cursor's own text must parse back to the same cursor.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCursor(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    guard let cursor = try? Cursor(text: text) else { return 0 }
    precondition((try? Cursor(text: cursor.text)) == cursor, "a cursor's text does not parse back to it")
    return 0
}
