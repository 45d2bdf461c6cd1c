import Foundation
import Testing
@testable import RunbookCore

struct StepGraphTests {
    @Test func ordersStepsAfterTheirNeedsAndPhases() throws {
        let rb = try load(minimalHeader + """
          - id: verify-it
            phase: verify
            check: { command: ["true"] }
          - id: second
            phase: mitigate
            needs: [first]
            wait: 1s
          - id: first
            phase: mitigate
            wait: 1s
          - id: look
            phase: detect
            check: { command: ["true"] }

        """)
        #expect(StepGraph(rb).order == ["look", "first", "second", "verify-it"])
    }

    @Test func mermaidHasASubgraphPerPhaseAndAnEdgePerNeed() throws {
        let rb = try RunbookLoader.load(path: repoRoot + "/runbooks/memory-leak.yaml")
        let m = StepGraph(rb).mermaid()
        #expect(m.hasPrefix("flowchart TD\n"))
        for phase in ["detect", "diagnose", "mitigate", "verify"] { #expect(m.contains("subgraph \(phase)[\"\(phase)\"]")) }
        #expect(m.contains("s_disable_image_resize --> s_restart_shop"))
        #expect(m.components(separatedBy: "subgraph").count - 1 == m.components(separatedBy: "\n  end").count - 1)
        #expect(!m.contains("{{ params"), "templates would break mermaid labels: \(m)")
    }
}
