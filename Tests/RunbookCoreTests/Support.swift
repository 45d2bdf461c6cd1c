import Foundation
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

/// The repository root, found from this file's path.
let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}()

let minimalHeader = """
runbook: t
params:
  service: { default: shop, pattern: "^[a-z]+$" }
steps:

"""
