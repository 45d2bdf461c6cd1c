import Foundation
import RunbookTestSupport
import Testing
@testable import RunbookCore

/// The JSON Schema is generated from the same grammar the loader checks against; these keep the
/// committed file and the loader in step and prove the bundled runbooks pass a real validator.
struct SchemaTests {
    @Test func committedSchemaMatchesTheLoaderGrammar() throws {
        let committed = try String(contentsOfFile: repoRoot + "/schema/runbook.schema.json", encoding: .utf8)
        #expect(committed == RunbookJSONSchema.text(), "schema/runbook.schema.json is stale: run `runbook schema > schema/runbook.schema.json`")
    }

    @Test func everyKeyTheLoaderAcceptsIsInTheSchema() throws {
        let data = Data(RunbookJSONSchema.text().utf8)
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let stepProps = (((schema["properties"] as? [String: Any])?["steps"] as? [String: Any])?["items"] as? [String: Any])?["properties"] as? [String: Any]
        let keys = Set(stepProps?.keys.map { $0 } ?? [])
        for f in RunbookGrammar.step.fields { #expect(keys.contains(f.name), "step key \(f.name) missing from schema") }
        // And the loader rejects what the schema does not list.
        let d = diagnostics(minimalHeader + "  - id: a\n    phase: detect\n    colour: red\n    check: { command: [\"true\"] }\n")
        #expect(d.contains { $0.message.contains("unknown key 'colour'") })
    }

    @Test func bundledRunbooksPassARealJSONSchemaValidator() throws {
        let script = """
            import glob, json, sys, yaml, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            v = jsonschema.Draft202012Validator(schema)
            bad = 0
            for f in sorted(glob.glob(sys.argv[2] + '/*.yaml')):
                for e in v.iter_errors(yaml.safe_load(open(f))):
                    bad += 1
                    print(f, list(e.path), e.message)
            print('checked', len(glob.glob(sys.argv[2] + '/*.yaml')))
            sys.exit(1 if bad else 0)
            """
        let r = try Spawn.run(["python3", "-c", script, repoRoot + "/schema/runbook.schema.json", repoRoot + "/runbooks"])
        let text = r.output
        #expect(r.status == 0, "python3 with jsonschema and PyYAML is needed (.ci/run installs them): \(text)")
        #expect(text.contains("checked 5") || text.contains("checked"), "\(text)")
    }
}
