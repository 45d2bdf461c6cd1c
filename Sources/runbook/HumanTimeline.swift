import Dispatch
import Foundation
import RunbookCore

/// Renders events as a human timeline: wall-clock time, phase, step, status, duration, message.
/// On a terminal, steps running for more than a second get a spinner line with their elapsed time.
final class HumanTimeline: TimelineSink, @unchecked Sendable {
    // `running`, `statusShown` and `frame` are guarded by `lock`; events and the ticker both write.
    let fd: Int32
    let colour: Bool
    let live: Bool
    private let lock = NSLock()
    private var running: [(step: String, since: Date)] = []
    private var statusShown = false
    private var frame = 0
    private var ticker: (any DispatchSourceTimer)?

    init(fd: Int32 = 1, isTerminal: Bool) {
        self.fd = fd
        self.colour = isTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        self.live = isTerminal
        if isTerminal {
            let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "runbook.spinner"))
            t.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
            t.setEventHandler { [weak self] in self?.tick() }
            t.resume()
            ticker = t
        }
    }

    deinit { ticker?.cancel() }

    /// Redraws the status line: a spinner and each long-running step with its elapsed time.
    func tick() {
        lock.withLock {
            let now = Date()
            let long = running.filter { now.timeIntervalSince($0.since) >= 1 }
            guard !long.isEmpty else {
                if statusShown { StandardStreams.write(fd, "\r\u{1B}[K"); statusShown = false }
                return
            }
            let spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
            frame = (frame + 1) % spinner.count
            let items = long.prefix(4).map { "\($0.step) \(Quantity.formatDuration(now.timeIntervalSince($0.since).rounded(.down)))" }
            let more = long.count > 4 ? " +\(long.count - 4) more" : ""
            StandardStreams.write(fd, "\r\u{1B}[K\(spinner[frame]) running: \(items.joined(separator: ", "))\(more)")
            statusShown = true
        }
    }

    func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }

    static func clock(_ d: Date) -> String {
        let ts = TimelineEvent.timestamp(d)
        return String(ts.dropFirst(11).prefix(8))
    }

    /// `restart-shop: 12/40 done, 1 failed, 4 running`, from a host event's counts.
    static func fleetProgress(_ e: TimelineEvent) -> String? {
        guard let out = e.output, case .number(let total)? = out["total"], case .number(let done)? = out["done"] else { return nil }
        var failed = 0.0, running = 0.0
        if case .number(let f)? = out["failed"] { failed = f }
        if case .number(let r)? = out["running"] { running = r }
        return "\(e.step ?? ""): \(Int(done))/\(Int(total)) done, \(Int(failed)) failed, \(Int(running)) running"
    }

    static func line(_ e: TimelineEvent) -> String? {
        let time = clock(e.time)
        let phase = (e.phase ?? "").padding(toLength: 9, withPad: " ", startingAt: 0)
        let step = (e.step ?? "").padding(toLength: 22, withPad: " ", startingAt: 0)
        let duration = e.durationMs.map { Quantity.formatDuration(Double($0) / 1000) } ?? ""
        switch e.event {
        case "run.started":
            // The start message already ends "(dry run)" or "(drill)"; the tag is added only when it does not.
            let message = e.message ?? ""
            let tag = e.drill == true ? (message.hasSuffix("(drill)") ? "" : " [DRILL]")
                : e.dryRun == true ? (message.hasSuffix("(dry run)") ? "" : " [dry run]") : ""
            return "\(time)  run \(e.run) started: \(e.runbook ?? "") \(e.message.map { "- \($0)" } ?? "")\(tag)"
        case "step.started":
            return "\(time)  \(phase) \(step) started"
        case "step.finished":
            return "\(time)  \(phase) \(step) \((e.status ?? "").padding(toLength: 12, withPad: " ", startingAt: 0)) \(duration.padding(toLength: 7, withPad: " ", startingAt: 0)) \(e.message ?? "")"
        case "step.retrying":
            return "\(time)  \(phase) \(step) retrying     attempt \(e.attempt ?? 0) \(e.status ?? "failed"); next in \(Quantity.formatDuration(Double(e.delayMs ?? 0) / 1000)): \(e.message ?? "")"
        case "change.applied":
            return "\(time)  \(phase) \(step) changed      \(e.message ?? "")"
        case "host.started":
            return nil
        case "host.finished", "host.planned":
            return "\(time)  \(phase) \(step) \((e.status ?? "").padding(toLength: 12, withPad: " ", startingAt: 0)) \(duration.padding(toLength: 7, withPad: " ", startingAt: 0)) \(e.target ?? ""): \(e.message ?? "")"
                + (fleetProgress(e).map { "  [\($0)]" } ?? "")
        case "undo.started":
            return "\(time)  undo      \(step) \(e.message ?? "")"
        case "undo.finished":
            return "\(time)  undo      \(step) \(e.status ?? "") \(e.message ?? "")"
        case "approval.requested":
            return "\(time)  APPROVAL  \((e.gate ?? "").padding(toLength: 22, withPad: " ", startingAt: 0)) awaiting-approval: \(e.message ?? "")"
        case "approval.granted", "approval.denied", "approval.timed_out":
            return "\(time)  APPROVAL  \((e.gate ?? "").padding(toLength: 22, withPad: " ", startingAt: 0)) \((e.status ?? "").padding(toLength: 12, withPad: " ", startingAt: 0)) \(e.message ?? "")"
        case "alarm.fired":
            return "\(time)  ALARM     \(step) \(e.message ?? "")"
        case "guard.overridden":
            return "\(time)  OVERRIDE of guard \(e.guardName ?? ""): \(e.message ?? "")"
        case "guard.refused":
            return "\(time)  refused by guard \(e.guardName ?? "")\(e.until.map { " until \(TimelineEvent.timestamp($0))" } ?? ""): \(e.message ?? "")"
        case "run.finished":
            return "\(time)  run \(e.run) finished: \(e.outcome ?? "") in \(duration)\(e.message.map { " (\($0))" } ?? "")"
        default:
            return "\(time)  \(e.event) \(e.message ?? "")"
        }
    }

    func record(_ e: TimelineEvent) {
        if live, let step = e.step {
            lock.withLock {
                if e.event == "step.started" { running.append((step, e.time)) }
                if e.event == "step.finished" { running.removeAll { $0.step == step } }
            }
        }
        // Outside text (labels, params, command output) never reaches the terminal raw.
        guard var text = Self.line(e).map({ Escape.text($0) }) else { return }
        if colour {
            switch e.status ?? e.outcome ?? "" {
            case "passed", "mitigated", "completed": text = paint(text, "32")
            case "failed", "timed-out", "errored", "interrupted", "aborted": text = paint(text, "31")
            case "would-change", "would-wait", "would-mitigate", "declined", "refused", "not-confirmed", "inconclusive": text = paint(text, "33")
            case "skipped": text = paint(text, "2")
            default: break
            }
        }
        lock.withLock {
            if statusShown { StandardStreams.write(fd, "\r\u{1B}[K"); statusShown = false }
            StandardStreams.write(fd, (text + "\n"))
        }
    }
}

/// Writes each event as one JSON line to stdout.
struct JSONLinesStdout: TimelineSink {
    func record(_ e: TimelineEvent) {
        StandardStreams.out(e.jsonLine() + "\n")
    }
}

/// Asks at the terminal, on a thread of its own so the run queue never blocks.
struct TerminalPrompter: ConfirmationPrompter {
    func confirm(step: Step, change: String, runID: String, answer: @escaping @Sendable (Bool) -> Void) {
        Thread.detachNewThread {
            // Exactly what will run, templates rendered, outside text escaped.
            let question = "\n  step '\(step.id)' asks for confirmation; it will: \(Escape.text(change))\n  Run it? [y/N] "
            StandardStreams.err(question)
            let reply = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            answer(reply == "y" || reply == "yes")
        }
    }
}
