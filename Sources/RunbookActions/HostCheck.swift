import Foundation
import NIOCore
import NIOPosix
import RunbookCore

/// The `host` check: disk, memory and load against limits.
enum HostCheck {
    static func run(_ c: HostCheckSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        var output: [String: Value] = [:]
        var parts: [String] = [], problems: [String] = [], unreadable: [String] = []
        func judge(_ name: String, _ value: Double?, _ limits: HostCheckSpec.Limits?, unit: String, why: String? = nil) {
            guard let limits else { return }
            guard let value else { unreadable.append("cannot read \(name)\(why.map { ": \($0)" } ?? "")"); return }
            output[name] = .number(value)
            parts.append("\(name) \(value)\(unit)")
            if let m = limits.max, value > m { problems.append("\(name) \(value)\(unit) over \(m)\(unit)") }
            if let m = limits.min, value < m { problems.append("\(name) \(value)\(unit) under \(m)\(unit)") }
        }
        if let d = c.disk {
            let path = request.render(d.path)
            var fs = statvfs()
            let why = statvfs(path, &fs) == 0 ? nil : "\(path): \(String(cString: strerror(errno))) (errno \(errno))"
            judge("disk_used_percent", ProcFS.diskUsedPercent(path), d.used, unit: "%", why: why)
            if ProcFS.diskUsedPercent(path) != nil { parts[parts.count - 1] += " (\(path))" }
        }
        judge("memory_used_percent", c.memory != nil ? ProcFS.memoryUsedPercent() : nil, c.memory, unit: "%")
        judge("load1", c.load != nil ? ProcFS.load1() : nil, c.load, unit: "")
        let text = parts.joined(separator: ", ")
        if !unreadable.isEmpty {
            // Could not measure: not the same as within limits.
            completion(StepResult(.errored, (unreadable + problems).joined(separator: "; "), output: output))
            return NothingToCancel()
        }
        completion(StepResult(problems.isEmpty ? .passed : .failed, problems.isEmpty ? text : problems.joined(separator: "; "), output: output))
        return NothingToCancel()
    }
}
