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
        #expect(rb.graph.order == ["look", "first", "second", "verify-it"])
    }

    @Test func mermaidHasASubgraphPerPhaseAndAnEdgePerNeed() throws {
        let rb = try RunbookLoader.load(path: repoRoot + "/runbooks/memory-leak.yaml")
        let m = GraphRenderer(rb).mermaid()
        #expect(m.hasPrefix("flowchart TD\n"))
        for phase in ["detect", "diagnose", "mitigate", "verify"] { #expect(m.contains("subgraph \(phase)[\"\(phase)\"]")) }
        #expect(m.contains("s_disable_image_resize --> s_restart_shop"))
        #expect(m.components(separatedBy: "subgraph").count - 1 == m.components(separatedBy: "\n  end").count - 1)
        #expect(!m.contains("{{ params"), "templates would break mermaid labels: \(m)")
    }

    @Test func indexesDependentsAndAncestorsOnceAtLoad() throws {
        let rb = try load(minimalHeader + """
          - id: a
            phase: diagnose
            check: { command: ["true"] }
          - id: b
            phase: diagnose
            needs: [a, a]
            check: { command: ["true"] }
          - id: c
            phase: diagnose
            needs: [b]
            check: { command: ["true"] }
          - id: d
            phase: diagnose
            needs: [a]
            check: { command: ["true"] }

        """)
        #expect(rb.graph.index == ["a": 0, "b": 1, "c": 2, "d": 3])
        #expect(rb.graph.dependents["a"] == ["b", "d"], "each dependent once, in file order")
        #expect(rb.graph.needCount["b"] == 1)
        #expect(rb.graph.ancestors(of: "c") == ["a", "b"])
        #expect(rb.graph.ancestors(of: "a").isEmpty)
        #expect(rb.graph.cycles.isEmpty)
    }

    @Test func namesEachCycleOnceFromWhereItCloses() {
        let steps = ["a": ["c"], "b": ["a"], "c": ["b"], "d": ["d"]].sorted { $0.key < $1.key }.map { id, needs in
            Step(id: id, phase: .diagnose, description: "", needs: needs, when: nil, timeout: 1, retry: RetryPolicy(), confirm: false,
                 continueOnFailure: false, action: Action(.wait(seconds: 1)), undo: nil, location: SourceLocation(file: "t", line: 1, column: 1))
        }
        let graph = StepGraph(steps)
        #expect(graph.cycles == [["a", "c", "b", "a"]], "a self-need is not a cycle here (validation names it)")
        #expect(Set(graph.order) == ["a", "b", "c", "d"], "the order still lists every step")
    }

    @Test func rendersTheSameTextGraphForTheBundledRunbook() throws {
        let rb = try RunbookLoader.load(path: repoRoot + "/runbooks/memory-leak.yaml")
        let text = GraphRenderer(rb).text()
        #expect(text.contains("  disable-image-resize: flag image-resize: ? -> off in "), "\(text)")
        #expect(GraphRenderer(rb).dot().hasPrefix("digraph \"memory-leak\" {"))
    }
}
