/// A position in a runbook or scenario file, 1-based like compilers report it.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file as the user named it.
    public var file: String
    /// Line, starting at 1.
    public var line: Int
    /// Column, starting at 1, counted in Unicode scalars.
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem found while loading or validating a file.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    /// Where the offending node starts.
    public var location: SourceLocation
    /// What is wrong and, where it helps, what to do.
    public var message: String
    /// A warning does not stop the file from loading.
    public var isWarning = false

    public init(_ location: SourceLocation, _ message: String, warning: Bool = false) {
        self.location = location
        self.message = message
        self.isWarning = warning
    }

    /// Compiler style: `FILE:LINE:COLUMN: error: MESSAGE` (or `warning:`).
    public var description: String { "\(location): \(isWarning ? "warning" : "error"): \(message)" }
}

/// Thrown when a file cannot be turned into a runbook or scenario; carries every problem found.
public struct LoadError: Error, Sendable, CustomStringConvertible {
    /// All problems of the file, in file order.
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics.sorted {
            ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column)
        }
    }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Suggests the closest known name for a misspelt one.
package enum Suggest {
    /// Returns ` (did you mean 'x'?)` when a candidate is close enough, else an empty string.
    package static func hint(for word: String, among candidates: some Sequence<String>) -> String {
        guard let best = closest(to: word, among: candidates) else { return "" }
        return " (did you mean '\(best)'?)"
    }

    static func closest(to word: String, among candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        let limit = max(2, word.count / 3)
        for candidate in candidates {
            let d = distance(word, candidate)
            if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
        }
        if let best { return best.0 }
        // A shortened name (`used_percent` for `disk_used_percent`): the one candidate that contains it.
        guard word.count >= 4 else { return nil }
        let containing = candidates.filter { $0.contains(word) || (word.contains($0) && $0.count >= 4) }
        return containing.count == 1 ? containing[0] : nil
    }

    /// Levenshtein distance over characters.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
