import Foundation
import HTTPTypes
import Hummingbird
import TrailAPI
import TrailCore
import TrailStore

/// A refused request: its status and the JSON body of Docs/API.md, which
/// names the field at fault and the reason.
struct APIError: HTTPResponseError, Sendable {
    let status: HTTPResponse.Status
    let body: ErrorBody
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, field: String? = nil, _ message: String) {
        self.status = status
        body = ErrorBody(status: status.code, code: code, field: field, message: message)
    }

    init(_ error: InputError) {
        self.init(.badRequest, "bad_field", field: error.field, error.reason)
    }

    /// What a store error means to a client.
    init(_ error: StoreError, cursorField: String = "after") {
        switch error {
        case .invalidEvent(let detail):
            let field = detail.contains("sign") ? "signature" : nil
            self.init(.badRequest, "invalid_event", field: field, detail)
        case .trimmed:
            self.init(.gone, "trimmed", field: cursorField, error.description)
        case .cursorFromOtherRelay:
            self.init(
                .badRequest, "bad_cursor", field: cursorField,
                "\(error.description); use the portable cursor to resume on another relay")
        case .cursorBeyondLog, .invalidCursor:
            self.init(.badRequest, "bad_cursor", field: cursorField, error.description)
        case .unknownNamespace:
            self.init(.notFound, "unknown_namespace", field: "namespace", error.description)
        case .pendingFull, .overloaded:
            self.init(.serviceUnavailable, "overloaded", error.description)
            headers[.retryAfter] = "1"
        case .diskFull:
            self.init(HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "disk_full", error.description)
            headers[.retryAfter] = "10"
        case .closed, .readOnly:
            self.init(.serviceUnavailable, "unavailable", error.description)
        case .rocksDB, .corrupt, .incompatibleDirectory:
            self.init(.internalServerError, "storage", error.description)
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = jsonResponse(body, status: status)
        for field in headers { response.headers.append(field) }
        return response
    }
}

let jsonEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
    return encoder
}()

extension HTTPFields {
    /// The first value of a field. `self[name]` joins every value of the
    /// name into a new string; the request fields Trail reads occur once.
    func firstValue(_ name: HTTPField.Name) -> String? {
        first { $0.name == name }?.value
    }
}

/// The headers of every JSON answer, built once.
let jsonHeaders: HTTPFields = [.contentType: "application/json; charset=utf-8"]

/// A JSON response; encoding our own Codable types does not fail.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? jsonEncoder.encode(value)) ?? Data("{}".utf8)
    var buffer = ByteBuffer()
    buffer.writeBytes(data)
    buffer.writeInteger(UInt8(ascii: "\n"))
    return Response(
        status: status, headers: jsonHeaders, body: .init(byteBuffer: buffer))
}

/// A JSON response from bytes written by `JSONWriter`.
func jsonResponse(written writer: JSONWriter, status: HTTPResponse.Status = .ok) -> Response {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(writer.bytes.count + 1)
    buffer.writeBytes(writer.bytes)
    buffer.writeInteger(UInt8(ascii: "\n"))
    return Response(
        status: status, headers: jsonHeaders, body: .init(byteBuffer: buffer))
}
