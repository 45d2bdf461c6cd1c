import Foundation

extension RunStateMachine {
    /// The run's approval gates (SPEC §6.9), as the machine keeps them.
    struct GateBook: Sendable {
        /// The run's gate before its first change.
        var progress: GateProgress = .notReached
        /// Open gates by id.
        var open: [String: GateRequest] = [:]
        /// Who approved each gate so far.
        var approvers: [String: [String]] = [:]
        /// Deadlines of gates opened before a restart (a resumed run keeps its timeouts).
        var earlierDeadlines: [String: Date] = [:]
    }

    /// The change breaker's places (`serve --max-changes`), as the machine keeps them.
    struct BreakerPlaces: Sendable {
        /// Change steps the breaker let through (or an approval did).
        var cleared = Set<String>()
        /// The step a breaker gate holds.
        var pending: String?
        /// How many breaker gates the run opened.
        var gates = 0
        /// The change step whose place is being reserved (`reserveBreakerPlace` sent, no answer
        /// yet): nothing else starts meanwhile, so steps start in the same order as ever.
        var asking: String?
        /// Change steps holding a place: given back (`releaseBreakerPlace`) when the step ends
        /// without applying its change, or when the run ends.
        var held = Set<String>()
    }

    /// The `abort_if` alarms' state.
    struct AlarmState: Sendable {
        /// Whether alarms are being evaluated.
        var running = false
        /// Evaluations that errored or timed out in a row, per alarm (three abort the run).
        var errors: [String: Int] = [:]
        /// Evaluations in a row that could not tell that abort the run (fail closed).
        static let failClosedAfter = 3
    }
}
