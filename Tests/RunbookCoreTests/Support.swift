import Foundation
import RunbookTestSupport
@testable import RunbookCore

/// Loads YAML text as a runbook and returns its diagnostics (empty when valid).
func diagnostics(_ yaml: String, file: String = "t.yaml") -> [Diagnostic] {
    do {
        _ = try RunbookLoader.load(text: yaml, file: file)
        return []
    } catch let e as LoadError {
        return e.diagnostics
    } catch {
        return [Diagnostic(SourceLocation(file: file, line: 0, column: 0), "unexpected error \(error)")]
    }
}

func load(_ yaml: String) throws -> Runbook { try RunbookLoader.load(text: yaml, file: "t.yaml") }

/// The repository root.
let repoRoot = TestPaths.repoRoot

let minimalHeader = """
runbook: t
params:
  service: { default: shop, pattern: "^[a-z]+$" }
steps:

"""
