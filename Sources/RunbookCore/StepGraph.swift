/// The runbook's steps as a graph, built once when the steps are set (at load): the index of each
/// id, the `needs` edges both ways, ancestors, a topological order and the cycles. Validation
/// (`GraphValidator`), rendering (`GraphRenderer`) and the run state machine all read this one.
public struct StepGraph: Sendable {
    /// Position of each step id in the runbook's steps (its first definition).
    public let index: [String: Int]
    /// The ids each step needs, as written.
    public let needs: [String: [String]]
    /// How many distinct ids each step needs.
    public let needCount: [String: Int]
    /// The steps that need each step, in file order, each once.
    public let dependents: [String: [String]]
    /// Step ids in an order where every step comes after its needs and its earlier phases
    /// (cycles broken where they close).
    public let order: [String]
    /// Each cycle of `needs` once, named from the step where it closes: `[a, b, a]`.
    public let cycles: [[String]]

    /// Builds the graph of `steps` (in file order).
    public init(_ steps: [Step]) {
        var index: [String: Int] = [:]
        var needs: [String: [String]] = [:]
        var needCount: [String: Int] = [:]
        var dependents: [String: [String]] = [:]
        for (i, s) in steps.enumerated() where index[s.id] == nil {
            index[s.id] = i
            needs[s.id] = s.needs
            let distinct = Set(s.needs)
            needCount[s.id] = distinct.count
            for n in s.needs where distinct.contains(n) && !(dependents[n]?.last == s.id) { dependents[n, default: []].append(s.id) }
        }
        self.index = index
        self.needs = needs
        self.needCount = needCount
        self.dependents = dependents
        self.order = Self.topologicalOrder(steps, index: index)
        self.cycles = Self.findCycles(steps, index: index)
    }

    /// Every step `id` needs, directly or through other steps (not `id` itself).
    public func ancestors(of id: String) -> Set<String> {
        var out = Set<String>()
        var queue = needs[id] ?? []
        while let n = queue.popLast() {
            guard n != id, index[n] != nil, out.insert(n).inserted else { continue }
            queue += needs[n] ?? []
        }
        return out
    }

    static func topologicalOrder(_ steps: [Step], index: [String: Int]) -> [String] {
        var order: [String] = []
        var done = Set<String>()
        func visit(_ id: String, _ path: Set<String>) {
            guard !done.contains(id), !path.contains(id), let i = index[id] else { return }
            for n in steps[i].needs { visit(n, path.union([id])) }
            if done.insert(id).inserted { order.append(id) }
        }
        for phase in Phase.allCases {
            for s in steps where s.phase == phase { visit(s.id, []) }
        }
        return order
    }

    /// Depth-first from each step in file order; a need on the current path closes a cycle.
    static func findCycles(_ steps: [Step], index: [String: Int]) -> [[String]] {
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var stack: [String] = []
        var reported = Set<Set<String>>()
        var cycles: [[String]] = []
        func visit(_ id: String) {
            state[id] = 1
            stack.append(id)
            for need in index[id].map({ steps[$0].needs }) ?? [] where index[need] != nil && need != id {
                if state[need] == 1 {
                    let cycle = Array(stack[stack.lastIndex(of: need)!...]) + [need]
                    if reported.insert(Set(cycle)).inserted { cycles.append(cycle) }
                } else if state[need] == nil {
                    visit(need)
                }
            }
            stack.removeLast()
            state[id] = 2
        }
        for step in steps where state[step.id] == nil && !step.id.isEmpty {
            visit(step.id)
        }
        return cycles
    }
}
