import ArgumentParser
import Foundation
import RunbookCore
import RunbookStore
import RunbookStoreContract

struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "timeline", abstract: "A past run's timeline.")
    @Argument(help: "Run id: the whole id, a unique prefix of it or of its final hex part, or 'last'.", completion: Completions.runIDs) var runID: String
    @Flag(help: "JSON Lines.") var json = false
    @OptionGroup var state: StateOptions

    func run() throws {
        let (store, events) = try state.timeline(of: runID)
        if let r = try store.run(events.first?.run ?? runID), r.drill, !json { StandardStreams.out("DRILL: a rehearsal, not an incident\n") }
        let human = HumanTimeline(isTerminal: isatty(1) == 1)
        for e in events {
            if json { StandardStreams.out(e.jsonLine() + "\n") } else { human.record(e) }
        }
    }
}
