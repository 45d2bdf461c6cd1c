import Foundation

/// Generates the JSON Schema (draft 2020-12) of the runbook format from `RunbookGrammar`,
/// so editors with a YAML language server complete and check runbooks.
public enum RunbookJSONSchema {
    static let durationPattern = "^\\s*([0-9.]+(ms|s|m|min|h|d))+\\s*$"
    static let sizePattern = "^\\s*[0-9.]+\\s*([KMGT]i?B?|B)?\\s*$"
    static let ratePattern = "^\\s*[0-9.]+\\s*([KMGT]i?B?|B)?\\s*/\\s*(s|sec|m|min|h)\\s*$"

    /// The schema as pretty, key-sorted JSON text.
    public static func text() -> String {
        var root = schema(for: .object(RunbookGrammar.runbook))
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        root["$id"] = "https://runbook.dev/schema/runbook.schema.json"
        root["title"] = "runbook"
        let data = try! JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func schema(for shape: Shape) -> [String: Any] {
        switch shape {
        case .text, .regex: return ["type": "string"]
        case .bool: return ["type": "boolean"]
        case .integer: return ["type": "integer"]
        case .number: return ["type": "number"]
        case .percent: return ["anyOf": [["type": "number"], ["type": "string", "pattern": "^\\s*[0-9.]+\\s*%\\s*$"]]]
        case .duration: return ["type": "string", "pattern": durationPattern]
        case .size: return ["type": "string", "pattern": sizePattern]
        case .rate: return ["type": "string", "pattern": ratePattern]
        case .choice(let c): return ["type": "string", "enum": c]
        case .list(let s): return ["type": "array", "items": schema(for: s)]
        case .dictionary(let s): return ["type": "object", "additionalProperties": schema(for: s)]
        case .scalar: return ["type": ["string", "number", "boolean", "null"]]
        case .either(let shapes): return ["anyOf": shapes.map(schema(for:))]
        case .command:
            return ["anyOf": [["type": "array", "items": ["type": "string"], "minItems": 1], schema(for: .object(RunbookGrammar.commandObject))]]
        case .object(let o):
            var props: [String: Any] = [:]
            for f in o.fields {
                var s = schema(for: f.shape)
                var doc = f.doc
                // Actions and checks say what they report (steps.ID.output.NAME).
                let key = o.exactlyOne == RunbookGrammar.checkKinds ? "check." + f.name
                    : o.exactlyOne == RunbookGrammar.actionKinds && f.name != "check" ? f.name : nil
                if let key, let entry = ActionReference.entries.first(where: { $0.key == key }) {
                    doc += (doc.isEmpty ? "" : ". ") + "Outputs: " + ActionReference.outputList(entry)
                }
                if !doc.isEmpty { s["description"] = doc }
                props[f.name] = s
            }
            var out: [String: Any] = ["type": "object", "properties": props, "additionalProperties": false]
            let required = o.fields.filter(\.required).map(\.name)
            if !required.isEmpty { out["required"] = required }
            if !o.doc.isEmpty { out["description"] = o.doc }
            if !o.exactlyOne.isEmpty { out["oneOf"] = o.exactlyOne.map { ["required": [$0]] } }
            if !o.atLeastOne.isEmpty { out["anyOf"] = o.atLeastOne.map { ["required": [$0]] } }
            return out
        }
    }
}
