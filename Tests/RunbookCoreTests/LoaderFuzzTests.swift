import Foundation
import Testing
@testable import RunbookCore

/// The loader never crashes or hangs: thousands of mutated runbooks are each either valid or
/// rejected with an error located inside the file.
struct LoaderFuzzTests {
    /// A small deterministic generator, so a failure can be replayed from its seed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ text: String, _ rng: inout SplitMix) -> String {
        var lines = text.components(separatedBy: "\n")
        let pick = { (rng: inout SplitMix, n: Int) -> Int in n <= 0 ? 0 : Int.random(in: 0..<n, using: &rng) }
        switch Int.random(in: 0..<11, using: &rng) {
        case 0:
            if !lines.isEmpty { lines.remove(at: pick(&rng, lines.count)) }
        case 1:
            if !lines.isEmpty { let i = pick(&rng, lines.count); lines.insert(lines[i], at: pick(&rng, lines.count)) }
        case 2:
            if lines.count > 1 { lines.swapAt(pick(&rng, lines.count), pick(&rng, lines.count)) }
        case 3:
            // Swap a value's type: scalar to list, list to mapping, number to text.
            let i = pick(&rng, lines.count)
            if let colon = lines[i].firstIndex(of: ":") {
                let replacements = [" [1, 2]", " {a: b}", " 42", " true", " ~", " \"{{ params.nope }}\"", " -1s", " |"]
                lines[i] = String(lines[i][...colon]) + replacements[pick(&rng, replacements.count)]
            }
        case 4:
            var bytes = Array(text.utf8)
            for _ in 0..<(1 + pick(&rng, 8)) where !bytes.isEmpty { bytes[pick(&rng, bytes.count)] = UInt8.random(in: 0...255, using: &rng) }
            return String(decoding: bytes, as: UTF8.self)
        case 5:
            let depth = 20 + pick(&rng, 200)
            lines.insert("deep: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth), at: pick(&rng, lines.count))
        case 6:
            lines.insert("description: " + String(repeating: "x", count: 10_000 + pick(&rng, 200_000)), at: pick(&rng, lines.count))
        case 7:
            var bomb = "b0: &b0 [a, a, a, a, a, a, a, a]\n"
            for i in 1...(3 + pick(&rng, 6)) { bomb += "b\(i): &b\(i) [" + Array(repeating: "*b\(i - 1)", count: 8).joined(separator: ", ") + "]\n" }
            return bomb + text
        case 8:
            let i = pick(&rng, lines.count)
            lines[i] = String(repeating: " ", count: pick(&rng, 6)) + lines[i].trimmingCharacters(in: .whitespaces)
        case 9:
            lines.shuffle(using: &rng)
        default:
            let i = pick(&rng, lines.count)
            let tokens = ["needs: [x]", "when: steps.zz.passed &&", "  - id: dup", "phase: later", "retry: {attempts: 0}", "{{", "*undefined", "&anchor", "? complex", "timeout: 0s"]
            lines.insert(tokens[pick(&rng, tokens.count)], at: i)
        }
        return lines.joined(separator: "\n")
    }

    @Test func everyMutationIsValidOrALocatedError() async throws {
        let files = try RunbookCatalog.yamlFiles(in: repoRoot + "/runbooks")
        let sources = try files.map { try String(contentsOfFile: $0, encoding: .utf8) }
        var rng = SplitMix(state: 20_261_125)
        var valid = 0, rejected = 0
        let deadline = Date().addingTimeInterval(240)  // a hang guard, not a speed assertion
        for i in 0..<5000 {
            var text = sources[i % sources.count]
            for _ in 0..<(1 + Int.random(in: 0..<3, using: &rng)) { text = Self.mutate(text, &rng) }
            let lineCount = text.split(separator: "\n", omittingEmptySubsequences: false).count
            do {
                _ = try RunbookLoader.load(text: text, file: "m\(i).yaml")
                valid += 1
            } catch let e as LoadError {
                rejected += 1
                #expect(!e.diagnostics.isEmpty, "mutation \(i): empty error")
                for d in e.diagnostics {
                    #expect(d.location.file == "m\(i).yaml")
                    #expect(d.location.line >= 1 && d.location.line <= lineCount + 1, "mutation \(i): line \(d.location.line) of \(lineCount): \(d.message)")
                    #expect(d.location.column >= 1)
                    #expect(!d.message.isEmpty)
                }
            }
            #expect(Date() < deadline, "fuzzing stopped making progress at mutation \(i)")
            if Date() >= deadline { break }
        }
        #expect(valid + rejected == 5000)
        #expect(rejected > 2500)
    }
}
