import Foundation

/// The postmortem's account of `across:` steps: per step, the hosts changed, failed and undone.
extension Postmortem {
    static func hostsSection(_ events: [TimelineEvent]) -> String {
        let hostEvents = events.filter { $0.target != nil }
        guard !hostEvents.isEmpty else { return "" }
        var steps: [String] = []
        for e in hostEvents where !steps.contains(e.step ?? "") { steps.append(e.step ?? "") }
        var md = "\nHosts:\n\n"
        for step in steps {
            let mine = hostEvents.filter { $0.step == step }
            func hosts(_ keep: (TimelineEvent) -> Bool) -> [String] { Inventory.unique(mine.filter(keep).compactMap(\.target)) }
            let changed = hosts { $0.event == "change.applied" }
            let failed = hosts { $0.event == "host.finished" && StepStatus(rawValue: $0.status ?? "")?.isFailure == true }
            let undone = hosts { $0.event == "undo.finished" && $0.status == StepStatus.passed.rawValue }
            let planned = hosts { $0.event == "host.planned" }
            var parts: [String] = []
            if !planned.isEmpty { parts.append("would act on \(planned.count): \(planned.joined(separator: ", "))") }
            parts.append("changed \(changed.count)\(changed.isEmpty ? "" : ": " + changed.joined(separator: ", "))")
            let failedText = failed.map { h in
                "\(h) (\(mine.last { $0.target == h && $0.event == "host.finished" }?.status ?? "failed"))"
            }
            parts.append("failed \(failed.count)\(failed.isEmpty ? "" : ": " + failedText.joined(separator: ", "))")
            parts.append("undone \(undone.count)\(undone.isEmpty ? "" : ": " + undone.joined(separator: ", "))")
            md += "- `\(step)`: " + parts.joined(separator: "; ") + "\n"
        }
        return md
    }
}
