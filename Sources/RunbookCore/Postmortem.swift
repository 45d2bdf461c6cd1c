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
        let phaseOf = phases(events, runbook)

        var md = "# Postmortem draft\(drill ? " (DRILL: a rehearsal, not an incident)" : ""): \(title)\n\n"
        md += "Runbook `\(started.runbook ?? "?")`, run `\(started.run)`, \(triggerPhrase(started)), "
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
        let symptom = steps.filter { phaseOf($0) == .detect && $0.status == StepStatus.passed.rawValue }
        if !symptom.isEmpty {
            md += "- **Symptom confirmed**: " + symptom.map { "\($0.step ?? ""): \($0.message ?? "")" }.joined(separator: "; ") + ".\n"
        }
        md += "- **Root cause (from the diagnosis)**: \(rootCauseSentence(steps, step, phaseOf, runbookKnown: runbook != nil))\n\n"

        md += "## Timeline\n\nAll times UTC.\n\n"
        for e in events {
            guard let line = timelineLine(e, step(e.step)) else { continue }
            md += "- \(time(e.time)) - \(line)\n"
        }
        md += "\n## Root Cause and Resolution\n\n"
        md += rootCauseSentence(steps, step, phaseOf, runbookKnown: runbook != nil) + "\n\n"
        if !changes.isEmpty {
            md += "What was changed:\n\n"
            for c in changes { md += "- \(c.message ?? c.what ?? "?") (step `\(c.step ?? "?")`)\n" }
        } else if !wouldChanges.isEmpty {
            md += "What would have been changed (nothing was):\n\n"
            for c in wouldChanges {
                let text = c.message.map { $0.hasPrefix("would change ") ? String($0.dropFirst(13)) : $0 } ?? c.what ?? ""
                md += "- \(text) (step `\(c.step ?? "?")`)\n"
            }
        } else {
            md += "Nothing was changed.\n"
        }
        let undos = events.filter { $0.event == "undo.finished" }
        if !undos.isEmpty {
            md += "\nUndone after the run stopped:\n\n"
            for u in undos { md += "- \(u.step ?? "?"): \(u.status ?? "") - \(u.message ?? "")\n" }
        }
        md += hostsSection(events)
        let left = RunbookChangesLeft.texts(events)
        if !changes.isEmpty {
            md += left.isEmpty ? "\nNo change is left in place: everything was undone.\n"
                : "\nLeft in place at the end:\n\n" + left.map { "- \($0)\n" }.joined()
        }
        let outputs = steps.filter { $0.stdout != nil && $0.status != StepStatus.skipped.rawValue }
        if !outputs.isEmpty {
            md += "\nCommand output (capped at 1 KiB a step):\n"
            for s in outputs {
                let text = s.stdout ?? ""
                let capped = text.utf8.count > 1024 ? String(decoding: text.utf8.prefix(1024), as: UTF8.self) + "\n[... cut]" : text
                md += "\n`\(s.step ?? "?")`:\n\n```\n\(capped.trimmingCharacters(in: .newlines).replacingOccurrences(of: "```", with: "` ` `"))\n```\n"
            }
        }
        let verified = steps.filter { phaseOf($0) == .verify }
        if !verified.isEmpty {
            md += "\nVerification: " + verified.map { "\($0.step ?? "") \($0.status ?? "")\($0.message.map { " (\($0))" } ?? "")" }.joined(separator: "; ") + ".\n"
        }

        md += "\n## Corrective and Preventative Measures\n\n"
        for m in measures(events, steps, changes, step) { md += "- [ ] \(m)\n" }
        // Outside text never reaches the Markdown raw: control characters are escaped (newlines and tabs stay).
        return Escape.text(md, keepNewlines: true)
    }

    /// The diagnosis as facts: each check, its result and its key output. A passing check "rules
    /// something out" only when its step says what (`rules_out:`); `finding:` says what a pass found.
    static func rootCauseSentence(_ steps: [TimelineEvent], _ step: (String?) -> Step?, _ phaseOf: (TimelineEvent) -> Phase?,
                                  runbookKnown: Bool) -> String {
        let diagnosis = steps.filter { phaseOf($0) == .diagnose && $0.status != StepStatus.skipped.rawValue }
        var parts: [String] = []
        for d in diagnosis {
            let s = step(d.step)
            var fact = "`\(d.step ?? "?")` \(d.status ?? "?")"
            if let key = keyOutput(d) { fact += " (\(key))" }
            if d.status == StepStatus.passed.rawValue {
                if let r = s?.rulesOut { fact += ": rules out \(r)" }
                if let f = s?.finding { fact += ": found \(f)" }
            } else if let m = d.message {
                fact += ": \(m)"
            }
            parts.append(fact)
        }
        let fixed = steps.filter { phaseOf($0) == .mitigate && ($0.status == StepStatus.passed.rawValue || $0.status == StepStatus.wouldChange.rawValue) }
        var text = parts.isEmpty ? "_no diagnosis ran; for humans to establish._" : "Diagnosis: " + parts.joined(separator: "; ") + "."
        if !fixed.isEmpty { text += " The response that followed: \(fixed.compactMap(\.step).joined(separator: ", "))." }
        if !parts.isEmpty, !runbookKnown {
            text += " (The runbook was not found in the runbooks folder, so what each check rules out is not shown: pass `--runbooks DIR`.)"
        }
        return text + (parts.isEmpty ? "" : " _The cause is for humans to confirm._")
    }

    /// Each step's phase: from the timeline itself (`step.finished` carries it), else from the runbook,
    /// so a postmortem drafted without the runbook at hand still knows what was a diagnosis.
    static func phases(_ events: [TimelineEvent], _ runbook: Runbook?) -> (TimelineEvent) -> Phase? {
        var recorded: [String: Phase] = [:]
        for e in events { if let id = e.step, let p = e.phase.flatMap(Phase.init(rawValue:)) { recorded[id] = p } }
        return { e in
            guard let id = e.step else { return nil }
            return recorded[id] ?? runbook?.step(id)?.phase
        }
    }

    /// "triggered manually by alice", "triggered by alert AppMemoryHigh", "started through the API by bob".
    static func triggerPhrase(_ started: TimelineEvent) -> String {
        let by = started.by.map { " by \($0)" } ?? ""
        switch started.trigger ?? "" {
        case "manual": return "triggered manually\(by)"
        case "api": return "started through the API\(by)"
        case let t where t.hasPrefix("alert:"): return "triggered by alert \(t.dropFirst(6))"
        case "drill": return "rehearsed in a drill"
        case "": return "trigger unknown"
        case let t: return "triggered by \(t)\(by)"
        }
    }

    /// The most telling output of a step, `name=value`.
    static func keyOutput(_ e: TimelineEvent) -> String? {
        guard let o = e.output, !o.isEmpty else { return nil }
        let preferred = ["value", "status", "disk_used_percent", "memory_used_percent", "slope_bytes_per_s", "latency_ms", "exit_code", "rss_bytes", "cpu_percent", "load1"]
        guard let k = preferred.first(where: { o[$0] != nil }) ?? o.keys.sorted().first(where: { $0 != "stdout" && $0 != "duration_ms" }) else { return nil }
        return "\(k)=\(o[k]!.description)"
    }

    static func timelineLine(_ e: TimelineEvent, _ step: Step?) -> String? {
        let what = step?.description.isEmpty == false ? " (\(step!.description.trimmingCharacters(in: .whitespacesAndNewlines)))" : ""
        switch e.event {
        case "run.started": return "Run started (\(e.trigger ?? "?")): \(e.message ?? e.runbook ?? "")"
        case "step.finished":
            guard e.status != StepStatus.skipped.rawValue else { return nil }
            return "\(e.phase ?? "") `\(e.step ?? "")` \(e.status ?? "")\(what)\(e.message.map { ": \($0)" } ?? "")"
        case "step.retrying": return "`\(e.step ?? "")` attempt \(e.attempt ?? 0) \(e.status ?? "failed"), retrying: \(e.message ?? "")"
        case "change.applied": return "Changed \(e.message ?? e.what ?? "")"
        case "undo.finished": return "Undo of `\(e.step ?? "")` \(e.status ?? ""): \(e.message ?? "")"
        case "guard.refused": return "Refused by guard \(e.guardName ?? ""): \(e.message ?? "")"
        case "alert.resolved": return "Alert resolved"
        case "alarm.fired": return "Alarm `\(e.step ?? "")` fired: \(e.message ?? "")"
        case "guard.overridden": return "Guard \(e.guardName ?? "") overridden: \(e.message ?? "")"
        case "approval.requested": return "Waited for approval (gate `\(e.gate ?? "")`): \(e.message ?? "")"
        case "approval.granted": return "Approved by \(e.by ?? "?") (gate `\(e.gate ?? "")`)\(e.message.map { ": \($0)" } ?? "")"
        case "approval.denied": return "Denied by \(e.by ?? "?") (gate `\(e.gate ?? "")`)"
        case "approval.timed_out": return "Approval timed out (gate `\(e.gate ?? "")`): \(e.message ?? "")"
        case "run.resumed", "run.taken_over": return e.message.map { "Run \(e.event == "run.resumed" ? "resumed" : "taken over"): \($0)" }
        case "run.finished": return "Run finished: \(e.outcome ?? "")\(e.message.map { " (\($0))" } ?? "")"
        default: return nil
        }
    }

    static func measures(_ events: [TimelineEvent], _ steps: [TimelineEvent], _ changes: [TimelineEvent], _ step: (String?) -> Step?) -> [String] {
        var out: [String] = []
        // Follow-ups from the final state of the changes, not from what was once done.
        let left = RunbookChangesLeft.texts(events)
        for c in changes where c.what?.hasPrefix("flag ") == true {
            let stillLeft = left.contains { $0 == (c.message ?? "") }
            if stillLeft {
                out.append("Fix the code behind `\(c.what!.dropFirst(5))` (left \(c.to ?? "off")) and decide when it is safe to turn it back on; add a test that would have caught it.")
            } else {
                out.append("`\(c.what!.dropFirst(5))` was changed and then restored: the mitigation did not hold; find what else is behind the symptom.")
            }
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
        let name = events.first(where: { $0.runbook != nil })?.runbook ?? "RUNBOOK"
        out.append("Review the runbook with what this run taught (rehearse the change with `runbook drill \(name) --replay \(events.first?.run ?? "RUN_ID")`).")
        return out
    }
}

/// Changes applied and not undone, from a timeline (a passed `undo.finished` of the same step undoes
/// the latest change of that step).
public enum RunbookChangesLeft {
    public static func texts(_ events: [TimelineEvent]) -> [String] {
        var applied: [(step: String?, target: String?, text: String)] = []
        for e in events {
            if e.event == "change.applied" { applied.append((e.step, e.target, e.message ?? "\(e.what ?? "?"): \(e.from ?? "?") -> \(e.to ?? "?")")) }
            if e.event == "undo.finished", e.status == StepStatus.passed.rawValue,
               let i = applied.lastIndex(where: { $0.step == e.step && $0.target == e.target }) { applied.remove(at: i) }
        }
        return applied.map(\.text)
    }
}
