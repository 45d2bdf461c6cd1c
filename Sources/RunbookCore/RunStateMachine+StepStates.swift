import Foundation

extension RunStateMachine {
    /// Each step's state, and what is derived from it: how many attempts run (by what they
    /// occupy, for the caps), how many prompts and gates wait, how many retries are due. The
    /// counts change in one place, the setter, so they cannot drift from the states.
    struct StepStates: Sendable {
        private var states: [String: StepState] = [:]
        /// What each step's attempt occupies while it runs.
        private let resources: [String: Resource]
        /// Attempts running (processes, network checks, free), by what they occupy.
        private(set) var attempts: [Resource: Int] = [:]
        /// Steps waiting for a human at a `confirm` prompt.
        private(set) var prompts = 0
        /// Steps waiting at their approval gate.
        private(set) var gates = 0
        /// Steps waiting for a retry's delay.
        private(set) var retries = 0

        init(_ steps: [Step]) {
            resources = Dictionary(steps.map { ($0.id, RunStateMachine.resource(of: $0)) }, uniquingKeysWith: { a, _ in a })
            for s in steps { self[s.id] = .pending }
        }

        subscript(id: String) -> StepState? {
            get { states[id] }
            set {
                count(id, states[id], -1)
                states[id] = newValue
                count(id, newValue, 1)
            }
        }

        /// Attempts running, of any kind.
        var attemptsRunning: Int { attempts.values.reduce(0, +) }

        /// Attempts running, prompts and gates: what a stopping run waits for before it ends or undoes.
        var inFlight: Int { attemptsRunning + prompts + gates }

        private mutating func count(_ id: String, _ state: StepState?, _ delta: Int) {
            switch state {
            case .running: attempts[resources[id] ?? .free, default: 0] += delta
            case .awaitingConfirmation: prompts += delta
            case .awaitingApproval: gates += delta
            case .retryWait: retries += delta
            case .pending, .done, nil: break
            }
        }
    }
}
