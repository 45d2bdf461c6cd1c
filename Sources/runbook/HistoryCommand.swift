import ArgumentParser
import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStore
import RunbookStoreContract

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Past runs: id, runbook, trigger, outcome, start, duration (--json: the fields of GET /runs).")
    @Flag(help: "One JSON object a line.") var json = false
    @Option(help: "Most runs shown.") var limit = 50
    @Flag(help: "Show drills and dry runs too (hidden by default).") var all = false
    @Option(help: "Show only runs of this kind: live, drill or dry-run (repeatable).") var kind: [RunKind] = []
    @OptionGroup var state: StateOptions

    func validate() throws {
        if all && !kind.isEmpty { throw ValidationError("--all and --kind ask for different things; give one of them") }
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    /// The kinds shown: live runs unless `--all` or `--kind` say otherwise.
    var kinds: Set<RunKind> { all ? Set(RunKind.allCases) : kind.isEmpty ? [.live] : Set(kind) }

    func run() throws {
        let store = try state.openStore()
        let runs = try store.runs(limit: limit, kinds: kinds)
        let awaiting = (try? store.runsAwaitingApproval()) ?? []
        let summaries = runs.map { RunSummary($0, awaiting: awaiting.contains($0.id)) }
        if json {
            for r in summaries { print(r.jsonLine()) }
            return
        }
        let rows = runs.map { r in
            [r.id, r.runbook + (r.drill ? " [drill]" : r.dryRun ? " [dry run]" : ""), r.trigger, r.outcome ?? RunSummary(r, awaiting: awaiting.contains(r.id)).status.rawValue,
             TimelineEvent.timestamp(r.started), r.durationMs.map { Quantity.formatDuration(Double($0) / 1000) } ?? "-"]
        }
        StandardStreams.out(Table.render(header: ["ID", "RUNBOOK", "TRIGGER", "OUTCOME", "START", "DURATION"], rows: rows.map { $0.map { Escape.text($0) } }))
        if !all && kind.isEmpty, let hidden = try? store.runs(limit: 1, kinds: [.drill, .dryRun]), !hidden.isEmpty {
            StandardStreams.err("(drills and dry runs are hidden; --all shows them, --kind drill|dry-run|live picks)")
        }
    }
}

extension RunKind: ExpressibleByArgument {}
