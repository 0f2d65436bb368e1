public import TrailCore
public import TrailStore

/// What `verify` found in one namespace.
public struct NamespaceVerification: Sendable {
    public let namespace: Namespace
    public let eventCount: UInt64
    public let violations: [Violation]
    public var isSound: Bool { violations.isEmpty }
}

/// Everything `verify` found.
public struct VerificationReport: Sendable {
    public let namespaces: [NamespaceVerification]
    /// Files (or lines) that did not decode: a bad checksum, a bad id, a truncated file.
    public let damaged: [SegmentSource.Damage]
    public var violationCount: Int { namespaces.reduce(damaged.count) { $0 + $1.violations.count } }
    public var isSound: Bool { violationCount == 0 }
}

/// Checks every invariant of `Docs/DESIGN.md` on a log from any source and
/// names each violation with its position and the rule broken:
///
/// - dense positions from the trim point on, and nothing held below it;
/// - each event's id is the hash of its bytes (a data directory's records
///   are re-hashed; segment and JSON-lines events are hashed as they decode);
/// - signatures verify, on every core;
/// - the causal invariant: every parent and every origin predecessor sits
///   at an earlier position;
/// - the vector the source claims equals the set it holds, and its counts;
/// - segment checksums (a segment that does not decode is reported, and the
///   rest are still checked);
/// - for a data directory, also the store's own indexes and pending events
///   (`Store.check`).
///
/// Memory: a data directory is checked in one pass with its id index on
/// disk; other sources keep one id and position per event of the namespace.
public struct Verifier: Sendable {
    public let source: any LogSource
    public var violationCountMax = 100

    public init(source: any LogSource) {
        self.source = source
    }

    /// Verifies every namespace under `prefix`, calling `progress` with the
    /// number of events checked so far as it goes.
    public func run(prefix: String = "", progress: (@Sendable (UInt64) -> Void)? = nil) async throws -> VerificationReport {
        var results = [NamespaceVerification]()
        var checked: UInt64 = 0
        let summaries = try await source.namespaces(prefix: prefix)
        if let directory = source as? DirectorySource {
            // One call: the store checks its id index for all of them in one scan.
            let found = try directory.store.check(summaries.map(\.namespace), violationCountMax: violationCountMax) {
                progress?($0)
            }
            for summary in summaries {
                results.append(NamespaceVerification(namespace: summary.namespace, eventCount: summary.eventCount,
                                                     violations: found[summary.namespace] ?? []))
            }
        } else {
            for summary in summaries {
                results.append(try await verifyStream(summary) { checked += $0; progress?(checked) })
            }
        }
        let damaged = (source as? SegmentSource)?.damaged ?? (source as? JSONLinesSource)?.damaged ?? []
        return VerificationReport(namespaces: results, damaged: damaged)
    }

    /// One pass over the namespace in log order.
    func verifyStream(_ summary: LogSummary, progress: (UInt64) -> Void) async throws -> NamespaceVerification {
        let namespace = summary.namespace
        var violations = [Violation]()
        func report(_ rule: Violation.Rule, _ position: UInt64?, _ detail: String) {
            if violations.count < violationCountMax {
                violations.append(Violation(namespace: namespace, rule: rule, position: position, detail: detail))
            }
        }
        let trimmed = summary.trimmedThrough
        var expected = trimmed + 1
        var positions = [EventID: UInt64]()
        var lastSeq = [RelayID: UInt64]()
        var count: UInt64 = 0
        // Aliases fill their slots between positions: each right after the one it entered at.
        var aliases = summary.aliases.sorted { $0.after < $1.after }[...]
        func fillAliases(through position: UInt64) {
            while let alias = aliases.first, alias.after <= position {
                aliases.removeFirst()
                let slot = "alias \(alias.origin.hex.prefix(8)) seq \(alias.originSeq)"
                if let previous = lastSeq[alias.origin], alias.originSeq != previous + 1 {
                    report(.originOrder, alias.after, "\(slot) follows seq \(previous)")
                } else if lastSeq[alias.origin] == nil, trimmed == 0, alias.originSeq != 1 {
                    report(.originOrder, alias.after, "\(slot) is the first of its origin; seq 1 is not before it")
                }
                lastSeq[alias.origin] = max(lastSeq[alias.origin] ?? 0, alias.originSeq)
                if let id = alias.id, positions[id] == nil, alias.after > trimmed {
                    report(.originIndex, alias.after, "\(slot) names event \(id.short), which is not before it")
                }
            }
        }
        try await source.forEachPage(namespace) { page in
            for (stored, status) in zip(page, Event.signatureStatuses(page.map(\.event))) {
                let position = stored.position
                fillAliases(through: position - 1)
                let event = stored.event
                if position <= trimmed {
                    report(.trimPoint, position, "position \(position) is held; the log is trimmed through \(trimmed)")
                } else if position != expected {
                    report(.densePositions, position, position > expected
                        ? "positions \(expected)...\(position - 1) are missing" : "expected position \(expected)")
                }
                expected = max(expected, position + 1)
                count += 1
                if event.namespace != namespace { report(.idIsHash, position, "event \(event.id.short) names namespace \(event.namespace)") }
                if status == .invalid || status == .signedWithoutAuthor {
                    report(.signature, position, "event \(event.id.short) signature does not verify against its author")
                }
                if let previous = lastSeq[stored.origin], stored.originSeq != previous + 1 {
                    report(.originOrder, position, "origin \(stored.origin.hex.prefix(8)) seq \(stored.originSeq) follows seq \(previous)")
                } else if lastSeq[stored.origin] == nil, trimmed == 0, stored.originSeq != 1 {
                    report(.originOrder, position, "the first event of origin \(stored.origin.hex.prefix(8)) has seq \(stored.originSeq); seq 1 is not before it")
                }
                lastSeq[stored.origin] = max(lastSeq[stored.origin] ?? 0, stored.originSeq)
                for parent in event.parents where positions[parent] == nil && trimmed == 0 {
                    report(.causalParents, position, "event \(event.id.short) has parent \(parent.short), which is not before it")
                }
                if let earlier = positions.updateValue(position, forKey: event.id) {
                    report(.idIndex, position, "event \(event.id.short) is also at position \(earlier)")
                }
            }
            progress(UInt64(page.count))
            return true
        }
        if expected != summary.lastPosition + 1, count > 0 {
            report(.densePositions, nil, "the log ends at \(expected - 1); the source says \(summary.lastPosition)")
        }
        fillAliases(through: .max)
        let held = VersionVector(lastSeq)
        if held != summary.vector {
            for origin in Set(held.origins + summary.vector.origins).sorted() where held[origin] != summary.vector[origin] {
                report(.vectorMatchesLog, nil, "vector says origin \(origin.hex.prefix(8)) → \(summary.vector[origin]); the log holds through \(held[origin])")
            }
        }
        if count != summary.eventCount {
            report(.counts, nil, "the log holds \(count) events; the source says \(summary.eventCount)")
        }
        return NamespaceVerification(namespace: namespace, eventCount: count, violations: violations)
    }
}
