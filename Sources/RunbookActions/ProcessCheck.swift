import Foundation
import NIOCore
import NIOPosix
import RunbookCore

/// The `process` check.
enum ProcessCheck {
    static func run(_ c: ProcessCheckSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let wantRunning = c.running
        var pid: Int32?
        var what: String
        switch c.target {
        case .pid(let p):
            let text = p.render(request.render)
            pid = Int32(text)
            what = "pid \(text)"
        case .pidfile(let file):
            let f = request.render(file)
            pid = ProcFS.pid(fromFile: f)
            what = "pidfile \(f)\(pid.map { " (pid \($0))" } ?? "")"
            if pid == nil, wantRunning {
                // No pid to look at: the check could not measure.
                let why = FileManager.default.fileExists(atPath: f) ? "holds no pid" : "does not exist"
                completion(StepResult(.errored, "pidfile \(f) \(why)", output: ["running": .bool(false)]))
                return NothingToCancel()
            }
        case .name(let name):
            let n = request.render(name)
            pid = ProcFS.pids(named: n).first
            what = "process \(n)\(pid.map { " (pid \($0))" } ?? "")"
        }
        let running = pid.map(ProcFS.isRunning) ?? false
        var output: [String: Value] = ["running": .bool(running)]
        if let pid { output["pid"] = .number(Double(pid)) }
        guard running, let pid else {
            completion(StepResult(wantRunning ? .failed : .passed, "\(what) is not running", output: output))
            return NothingToCancel()
        }
        if !wantRunning {
            completion(StepResult(.failed, "\(what) is running", output: output))
            return NothingToCancel()
        }
        let maxRSS = c.maxRSS, maxCPU = c.maxCPU
        let rss = ProcFS.rss(pid)
        if let rss { output["rss_bytes"] = .number(rss) }
        let ticks0 = ProcFS.cpuTicks(pid)
        let window = 0.5
        let (name, base) = (what, output)
        // CPU is a rate, so sample twice; the wait is a timer, not a sleeping thread.
        return request.scheduler.schedule(after: maxCPU == nil ? 0 : window) {
            var problems: [String] = []
            var output = base
            var text = "\(name) running"
            if let rss {
                text += ", RSS \(Quantity.formatSize(rss))"
                if let maxRSS, rss > maxRSS { problems.append("RSS over \(Quantity.formatSize(maxRSS))") }
            }
            if let maxCPU, let t0 = ticks0, let t1 = ProcFS.cpuTicks(pid) {
                let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
                let cpu = ((t1 - t0) / hz / window * 1000).rounded() / 10
                output["cpu_percent"] = .number(cpu)
                text += ", CPU \(cpu)%"
                if cpu > maxCPU { problems.append("CPU over \(maxCPU)%") }
            }
            completion(StepResult(problems.isEmpty ? .passed : .failed, problems.isEmpty ? text : text + ": " + problems.joined(separator: "; "), output: output))
        }
    }
}
