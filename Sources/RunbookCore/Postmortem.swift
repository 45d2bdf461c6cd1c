import Foundation

/// Drafts a postmortem in Markdown from a run's timeline, shaped like a real one: Issue Summary,
/// Timeline, Root Cause and Resolution, Corrective and Preventative Measures.
public enum Postmortem {
    /// - Parameters:
    ///   - events: the run's timeline, in order.
    ///   - runbook: the runbook as it is now, for titles and step descriptions (optional).
    public static func markdown(events: [TimelineEvent], runbook: Runbook?) -> String {
        guard let started = events.first(where: { $0.event == "run.started" }) ?? events.first else { return "" }
        let drill = started.drill == true
        let finished = events.last { $0.event == "run.finished" }
        let title = runbook?.title ?? started.runbook ?? "runbook"
        let steps = events.filter { $0.event == "step.finished" }
        let changes = events.filter { $0.event == "change.applied" }
        let wouldChanges = steps.filter { $0.status == StepStatus.wouldChange.rawValue }
        let outcome = finished?.outcome ?? "unfinished"
        func time(_ d: Date) -> String { String(TimelineEvent.timestamp(d).dropFirst(11).prefix(8)) }
        func step(_ id: String?) -> Step? { id.flatMap { runbook?.step($0) } }

        var md = "# Postmortem draft\(drill ? " (DRILL: a rehearsal, not an incident)" : ""): \(title)\n\n"
        md += "Runbook `\(started.runbook ?? "?")`, run `\(started.run)`, triggered by \(started.trigger ?? "?"), "
        md += "started \(TimelineEvent.timestamp(started.time)).\(started.dryRun == true && !drill ? " Dry run: nothing was changed." : "")\n\n"

        md += "## Issue Summary\n\n"
        if let f = finished {
            let seconds = f.time.timeIntervalSince(started.time)
            let label = outcome == RunOutcome.mitigated.rawValue ? "to verified mitigation" : "to the end of the run (\(outcome))"
            md += "- **Duration**: \(Quantity.formatDuration(seconds)) from run start \(label), \(time(started.time)) to \(time(f.time)) UTC.\n"
        } else {
            md += "- **Duration**: the run has not finished (or was cut off); last event at \(time(events.last!.time)) UTC.\n"
        }
        md += "- **Outcome**: \(outcome)\(finished?.message.map { " (\($0))" } ?? "").\n"
        md += "- **Impact**: _for humans to write: who was affected, for how long, and how badly (errors, latency, revenue)._\n"
        let symptom = steps.filter { step($0.step)?.phase == .detect && $0.status == StepStatus.passed.rawValue }
        if !symptom.isEmpty {
            md += "- **Symptom confirmed**: " + symptom.map { "\($0.step ?? ""): \($0.message ?? "")" }.joined(separator: "; ") + ".\n"
        }
        md += "- **Root cause (from the diagnosis)**: \(rootCauseSentence(steps, step))\n\n"

        md += "## Timeline\n\nAll times UTC.\n\n"
        for e in events {
            guard let line = timelineLine(e, step(e.step)) else { continue }
            md += "- \(time(e.time)) - \(line)\n"
        }
        md += "\n## Root Cause and Resolution\n\n"
        md += rootCauseSentence(steps, step) + "\n\n"
        if !changes.isEmpty {
            md += "What was changed:\n\n"
            for c in changes { md += "- \(c.what ?? "?"): \(c.from ?? "?") -> \(c.to ?? "?") (step `\(c.step ?? "?")`)\n" }
        } else if !wouldChanges.isEmpty {
            md += "What would have been changed (nothing was):\n\n"
            for c in wouldChanges { md += "- \(c.what.map { "\($0): \(c.from ?? "?") -> \(c.to ?? "?")" } ?? c.message ?? "") (step `\(c.step ?? "?")`)\n" }
        } else {
            md += "Nothing was changed.\n"
        }
        let undos = events.filter { $0.event == "undo.finished" }
        if !undos.isEmpty {
            md += "\nUndone after the run stopped:\n\n"
            for u in undos { md += "- \(u.step ?? "?"): \(u.status ?? "") - \(u.message ?? "")\n" }
        }
        let verified = steps.filter { step($0.step)?.phase == .verify }
        if !verified.isEmpty {
            md += "\nVerification: " + verified.map { "\($0.step ?? "") \($0.status ?? "")\($0.message.map { " (\($0))" } ?? "")" }.joined(separator: "; ") + ".\n"
        }

        md += "\n## Corrective and Preventative Measures\n\n"
        for m in measures(events, steps, changes, step) { md += "- [ ] \(m)\n" }
        // Outside text never reaches the Markdown raw: control characters are escaped (newlines and tabs stay).
        return Escape.text(md, keepNewlines: true)
    }

    static func rootCauseSentence(_ steps: [TimelineEvent], _ step: (String?) -> Step?) -> String {
        let diagnosis = steps.filter { step($0.step)?.phase == .diagnose }
        let ruledOut = diagnosis.filter { $0.status == StepStatus.passed.rawValue }.compactMap(\.step)
        let suspects = diagnosis.filter { $0.status == StepStatus.failed.rawValue || $0.status == StepStatus.timedOut.rawValue }
        var parts: [String] = []
        if !ruledOut.isEmpty { parts.append("ruled out by passing checks: \(ruledOut.joined(separator: ", "))") }
        if !suspects.isEmpty { parts.append("suspect, by failing checks: " + suspects.map { "\($0.step ?? "") (\($0.message ?? ""))" }.joined(separator: ", ")) }
        let fixed = steps.filter { step($0.step)?.phase == .mitigate && ($0.status == StepStatus.passed.rawValue || $0.status == StepStatus.wouldChange.rawValue) }
        if !fixed.isEmpty { parts.append("the response that followed: \(fixed.compactMap(\.step).joined(separator: ", "))") }
        return parts.isEmpty ? "_no diagnosis ran; for humans to establish._" : parts.joined(separator: "; ") + ". _Confirm with humans._"
    }

    static func timelineLine(_ e: TimelineEvent, _ step: Step?) -> String? {
        let what = step?.description.isEmpty == false ? " (\(step!.description.trimmingCharacters(in: .whitespacesAndNewlines)))" : ""
        switch e.event {
        case "run.started": return "Run started (\(e.trigger ?? "?")): \(e.message ?? e.runbook ?? "")"
        case "step.finished":
            guard e.status != StepStatus.skipped.rawValue else { return nil }
            return "\(e.phase ?? "") `\(e.step ?? "")` \(e.status ?? "")\(what)\(e.message.map { ": \($0)" } ?? "")"
        case "step.retrying": return "`\(e.step ?? "")` attempt \(e.attempt ?? 0) \(e.status ?? "failed"), retrying: \(e.message ?? "")"
        case "change.applied": return "Changed \(e.what ?? ""): \(e.from ?? "") -> \(e.to ?? "")"
        case "undo.finished": return "Undo of `\(e.step ?? "")` \(e.status ?? ""): \(e.message ?? "")"
        case "guard.refused": return "Refused by guard \(e.guardName ?? ""): \(e.message ?? "")"
        case "alert.resolved": return "Alert resolved"
        case "run.finished": return "Run finished: \(e.outcome ?? "")\(e.message.map { " (\($0))" } ?? "")"
        default: return nil
        }
    }

    static func measures(_ events: [TimelineEvent], _ steps: [TimelineEvent], _ changes: [TimelineEvent], _ step: (String?) -> Step?) -> [String] {
        var out: [String] = []
        for c in changes where c.what?.hasPrefix("flag ") == true {
            out.append("Fix the code behind `\(c.what!.dropFirst(5))` (left \(c.to ?? "off")) and decide when it is safe to turn it back on; add a test that would have caught it.")
        }
        if changes.contains(where: { $0.what?.hasPrefix("restart ") == true }) {
            out.append("A restart was part of the fix: add an alert on the growth rate, not only the level, so the next one is caught before it hurts.")
        }
        for s in steps where s.status == StepStatus.failed.rawValue || s.status == StepStatus.timedOut.rawValue {
            out.append("`\(s.step ?? "")` \(s.status ?? "") (\(s.message ?? "")): find out why, and whether the runbook should handle it.")
        }
        var retried = Set<String>()
        for r in events where r.event == "step.retrying" { if let s = r.step, retried.insert(s).inserted { out.append("`\(s)` needed retries: is it flaky, or too impatient?") } }
        for s in steps {
            if let st = step(s.step), let ms = s.durationMs, Double(ms) > st.timeout * 1000 * 0.5, st.action.kind != .wait, st.action.checkKind != "metric_trend" {
                out.append("`\(s.step ?? "")` took \(Quantity.formatDuration(Double(ms) / 1000)), over half its \(Quantity.formatDuration(st.timeout)) timeout: make it faster or give it room.")
            }
        }
        if events.contains(where: { $0.event == "undo.finished" && $0.status != StepStatus.passed.rawValue }) {
            out.append("An undo did not complete: check the system by hand and fix the undo.")
        }
        out.append("Review the runbook with what this run taught (rehearse the change with `runbook drill --replay \(events.first?.run ?? "RUN_ID")`).")
        return out
    }
}
