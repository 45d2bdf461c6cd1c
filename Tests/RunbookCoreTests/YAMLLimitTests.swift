import Testing
@testable import RunbookCore

/// YAML is limited by what it expands to, in bytes as well as nodes.
@Suite struct YAMLLimitTests {
    @Test func aLargeValueRepeatedThroughAliasesIsRefusedByItsExpandedSize() {
        let big = String(repeating: "x", count: 1_000_000)
        var yaml = "runbook: bomb\nbig: &b \"\(big)\"\nmore:\n"
        for _ in 0..<200 { yaml += "  - *b\n" }
        let found = diagnostics(yaml)
        #expect(found.count == 1)
        #expect(found.first?.message.contains("more than 8 MiB of text") == true, "\(found)")
        // libyaml gives an alias the position of the node it names: the large value itself.
        #expect(found.first?.location.line == 2, "\(found)")
    }

    @Test func aLargeValueWithinTheLimitIsRead() throws {
        let chunk = String(repeating: "y", count: 900_000)
        // One big scalar well within both limits is read (and then judged by the grammar).
        let found = diagnostics("runbook: ok\ntitle: \"\(chunk)\"\nsteps: []\n")
        #expect(!found.contains { $0.message.contains("MiB of text") })
    }
}
