import Testing
@testable import RunbookCore

struct ExpressionTests {
    func eval(_ text: String, statuses: [String: StepStatus] = [:], outputs: [String: [String: Value]] = [:], params: [String: Value] = [:]) throws -> Bool {
        let e = try Expression.parse(text)
        let values = TemplateValues(params: params, statuses: statuses, outputs: outputs, runID: "r-1")
        return e.evaluate(values.lookup).truthy
    }

    @Test func stepStatesAndBooleanOperators() throws {
        let s: [String: StepStatus] = ["db": .passed, "net": .failed, "x": .skipped]
        #expect(try eval("steps.db.passed && steps.net.failed", statuses: s))
        #expect(try !eval("steps.db.passed && !steps.net.failed", statuses: s))
        #expect(try eval("steps.x.skipped || steps.db.failed", statuses: s))
        #expect(try eval("!(steps.db.failed || steps.net.passed)", statuses: s))
        #expect(try eval("steps.net.status == 'failed'", statuses: s))
    }

    @Test func comparesOutputsNumericallyAndParamsAsText() throws {
        let o: [String: [String: Value]] = ["m": ["slope": .number(2_400_000), "state": .string("up")]]
        #expect(try eval("steps.m.output.slope > 1000000", outputs: o))
        #expect(try eval("steps.m.output.slope >= 2400000 && steps.m.output.slope <= 2400000", outputs: o))
        #expect(try !eval("steps.m.output.slope < -1", outputs: o))
        #expect(try eval("steps.m.output.state == \"up\"", outputs: o))
        #expect(try eval("params.region != 'eu'", params: ["region": .string("us")]))
        #expect(try eval("params.n == 10", params: ["n": .string("10.0")]))
    }

    @Test func wouldChangeCountsAsPassed() throws {
        #expect(try eval("steps.f.passed", statuses: ["f": .wouldChange]))
    }

    @Test(arguments: [
        ("steps.a.passed &&", "expected a name"),
        ("(steps.a.passed", "'(' is never closed"),
        ("steps.a.passed & steps.b.passed", "write '&&'"),
        ("steps.a.pased", "did you mean 'passed'"),
        ("foo.bar", "unknown name 'foo.bar'"),
        ("'open", "string is never closed"),
    ])
    func rejectsBadExpressions(_ text: String, _ message: String) {
        #expect(throws: ExpressionError.self) { try Expression.parse(text) }
        do { _ = try Expression.parse(text) } catch { #expect(error.message.contains(message), "\(error.message)") }
    }

    @Test func templatesRenderReferences() throws {
        let t = try Template(parsing: "{{ params.base }}/x?run={{run.id}}&v={{ steps.a.output.v }}")
        let values = TemplateValues(params: ["base": .string("http://h")], outputs: ["a": ["v": .number(3)]], runID: "r-9")
        #expect(t.render(values.lookup) == "http://h/x?run=r-9&v=3")
        #expect(throws: TemplateError.self) { try Template(parsing: "{{ params.x ") }
    }
}
