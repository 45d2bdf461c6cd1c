import Testing
@testable import RunbookCore

/// The typed specs and the grammar (the source of the JSON Schema and docs/actions.md) name the same fields.
struct ActionSpecFieldsTests {
    /// The fields of a grammar object.
    static func grammarFields(_ shape: Shape) -> [String] {
        if case .object(let o) = shape { return o.fields.map(\.name) }
        if case .command = shape { return RunbookGrammar.commandObject.fields.map(\.name) }
        return []
    }

    static func object(_ shape: Shape?) -> ObjectShape? {
        if case .object(let o)? = shape { return o }
        return nil
    }

    /// Each grammar entry of `ActionReference` and the typed fields that decode it.
    static let pairs: [(String, Shape, [String])] = [
        ("check.http", .object(RunbookGrammar.http), HTTPCheckSpec.fieldNames),
        ("check.tcp", .object(RunbookGrammar.tcp), TCPCheckSpec.fieldNames),
        ("check.prometheus", .object(RunbookGrammar.prometheus), PrometheusCheckSpec.fieldNames),
        ("check.metric_trend", .object(RunbookGrammar.metricTrend), MetricTrendSpec.fieldNames),
        ("check.process", .object(RunbookGrammar.process), ProcessCheckSpec.fieldNames),
        ("check.host", .object(RunbookGrammar.host), HostCheckSpec.fieldNames),
        ("check.host.disk", RunbookGrammar.host.field("disk")!.shape, HostCheckSpec.Disk.fieldNames),
        ("check.host.memory", RunbookGrammar.host.field("memory")!.shape, HostCheckSpec.memoryFieldNames),
        ("check.host.load", RunbookGrammar.host.field("load")!.shape, HostCheckSpec.loadFieldNames),
        ("command", .command, CommandSpec.fieldNames),
        ("flag", .object(RunbookGrammar.flag), FlagSpec.fieldNames),
        ("flag.http", .object(RunbookGrammar.flagHTTP), FlagHTTPSpec.fieldNames),
        ("restart", .object(RunbookGrammar.restart), RestartSpec.fieldNames),
        ("notify", .object(RunbookGrammar.notify), NotifySpec.fieldNames),
        ("targets", .object(RunbookGrammar.targetSet), TargetSet.fieldNames),
        ("targets.prometheus", .object(RunbookGrammar.prometheusTargets), PrometheusTargets.fieldNames),
        ("across", .object(RunbookGrammar.across), AcrossSpec.fieldNames),
        ("across.canary", .object(RunbookGrammar.canary), AcrossSpec.Canary.fieldNames),
    ]

    @Test func everyGrammarFieldHasATypedFieldAndTheReverse() {
        for (key, shape, typed) in Self.pairs {
            let grammar = Self.grammarFields(shape)
            #expect(Set(grammar).subtracting(typed).isEmpty, "\(key): grammar fields with no typed field: \(Set(grammar).subtracting(typed).sorted())")
            #expect(Set(typed).subtracting(grammar).isEmpty, "\(key): typed fields the grammar lacks: \(Set(typed).subtracting(grammar).sorted())")
        }
    }

    /// A step's own keys (`Step.Field`) are the grammar's step fields less the action keys, which
    /// `ActionDecoder` reads; its retry's the grammar's retry fields.
    @Test func stepAndRetryKeysAreTheGrammars() {
        let stepGrammar = RunbookGrammar.step.fields.map(\.name).filter { !RunbookGrammar.actionKinds.contains($0) }
        #expect(Set(stepGrammar) == Set(Step.fieldNames), "step keys: grammar \(stepGrammar.sorted()), typed \(Step.fieldNames.sorted())")
        #expect(Set(RunbookGrammar.retry.fields.map(\.name)) == Set(RetryPolicy.fieldNames))
    }

    @Test func everyActionReferenceEntryHasATypedSpec() {
        let covered = Set(Self.pairs.map(\.0))
        for e in ActionReference.entries {
            if case .duration = e.shape { continue }  // wait: a duration, no fields
            let key = e.key == "check.command" ? "command" : e.key
            #expect(covered.contains(key), "\(e.key) has no typed spec in the test's table")
        }
        // Every check kind and action kind the grammar knows decodes to a kind the specs name.
        #expect(Set(RunbookGrammar.checkKinds) == Set(["http", "tcp", "prometheus", "metric_trend", "process", "host", "command"]))
        #expect(RunbookGrammar.actionKinds.allSatisfy { Action.Kind(rawValue: $0) != nil })
    }

    @Test func everyNestedObjectOfAnActionIsCovered() {
        // A new nested mapping in the grammar (like host.disk) needs its own row above.
        for (key, shape, _) in Self.pairs {
            guard let o = Self.object(shape) else { continue }
            for f in o.fields {
                guard Self.object(f.shape) != nil, f.name != "ready" else { continue }
                #expect(Self.pairs.contains { $0.0 == "\(key).\(f.name)" }, "\(key).\(f.name) is a mapping with no typed spec row")
            }
        }
    }
}
