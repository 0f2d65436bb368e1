import Foundation
import Testing
import TrailRelay

/// The configuration file parser on its own (`RelayConfiguration.parse`),
/// which the config fuzz target drives: the seed corpus is a real
/// configuration, and bad files are errors that name the key at fault.
@Suite struct ConfigurationFileTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus/config")

    @Test func theFuzzSeedsAreValidConfigurations() throws {
        let full = try RelayConfiguration.parse(
            fileContents: try Data(contentsOf: Self.corpus.appendingPathComponent("full.json")), source: "full.json")
        #expect(full.tokens.count == 3 && full.tokens[2].key != nil && full.tokens[1].readRate != nil && full.policies.count == 3)
        #expect(full.durability == .synced && full.diskReserveBytes == 256 << 20 && full.peerRouting)
        for name in ["empty.json", "small.json"] {
            _ = try RelayConfiguration.parse(fileContents: try Data(contentsOf: Self.corpus.appendingPathComponent(name)), source: name)
        }
        // Every TLS setting, naming files this machine does not have: refused by name.
        let tls = try Data(contentsOf: Self.corpus.appendingPathComponent("tls.json"))
        #expect { try RelayConfiguration.parse(fileContents: tls, source: "tls.json") } throws: { "\($0)".contains("tls_certificate") }
    }

    @Test(arguments: [
        (#"{"listen": "nowhere"}"#, "listen"),
        (#"[1, 2]"#, "one JSON object"),
        (#"{"durability": "sometimes"}"#, "durability"),
        (#"{"disk_reserve_mb": -1}"#, "disk_reserve_mb"),
        (#"{"peer_routing": "sometimes"}"#, "peer_routing"),
        (#"{"tokens": [{"name": "x"}]}"#, "tokens"),
        (#"{"no_such": 1}"#, "unknown setting"),
        ("{\u{1}", "not valid JSON"),
    ])
    func aBadFileIsAnErrorThatNamesWhatIsWrong(text: String, named: String) {
        #expect { try RelayConfiguration.parse(fileContents: Data(text.utf8), source: "bad.json") } throws: { error in
            "\(error)".contains(named) && "\(error)".contains("bad.json")
        }
    }
}
