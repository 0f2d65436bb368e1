import Foundation
import TrailCore
public import Logging

/// One line per log record on standard error, as text —
/// `2026-11-28T07:00:00Z info trail.serve : key=value message` — or as one
/// JSON object — `{"time", "level", "label", "message", "source", …metadata}`
/// — for log collectors (`log_format: json`).
///
/// Metadata is formatted only when a record is written: a relay's request
/// loggers get metadata set on every request (Hummingbird's request id),
/// and swift-log's `StreamLogHandler` formats it on every set.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable { case text, json }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: Format

    public init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let output = Locked(())

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let time = ISO8601DateFormatter.string(
            from: Date(), timeZone: .gmt, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        let line: Data
        switch format {
        case .text:
            let pairs = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = Data("\(time) \(event.level) \(label) :\(pairs.isEmpty ? "" : " " + pairs) \(event.message)\n".utf8)
        case .json:
            var object: [String: String] = [
                "time": time, "level": event.level.rawValue, "label": label, "message": event.message.description, "source": event.source,
            ]
            for (key, value) in fields where object[key] == nil { object[key] = value.description }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = data + Data("\n".utf8)
        }
        Self.output.withLock { _ in FileHandle.standardError.write(line) }
    }
}
