import Foundation
import NIOCore
import NIOPosix
import RunbookCore

/// The `tcp` check: connect, measure, close.
enum TCPCheck {
    static func run(_ c: TCPCheckSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let host = request.render(c.host)
        // A templated port is checked here, after rendering; a literal one was checked at load.
        let portText = c.port.render(request.render)
        guard let port = Int(portText), (1...65535).contains(port) else {
            completion(StepResult(.failed, "port '\(portText)' is not a number from 1 to 65535"))
            return NothingToCancel()
        }
        let maxLatency = c.maxLatency
        let started = Date()
        let timeout = TimeAmount.milliseconds(Int64(request.step.timeout * 1000))
        let future = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(timeout).connect(host: host, port: port)
        future.whenComplete { result in
            let latency = Date().timeIntervalSince(started)
            switch result {
            case .success(let channel):
                channel.close(promise: nil)
                let output: [String: Value] = ["latency_ms": .number((latency * 1000).rounded())]
                if let maxLatency, latency > maxLatency {
                    completion(StepResult(.failed, "connected to \(host):\(port) in \(Quantity.formatDuration(latency)), over \(Quantity.formatDuration(maxLatency))", output: output))
                } else {
                    completion(StepResult(.passed, "connected to \(host):\(port) in \(Quantity.formatDuration(latency))", output: output))
                }
            case .failure(let e):
                completion(StepResult(.errored, "cannot connect to \(host):\(port): \(HTTPProbe.describe(e))"))
            }
        }
        return NothingToCancel()
    }
}

/// Facts read from /proc and statvfs.
public enum ProcFS {
    /// The pid in a pidfile, if the file holds one.
    public static func pid(fromFile path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// True when the process exists and is not a zombie.
    public static func isRunning(_ pid: Int32) -> Bool {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        guard let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    /// Pids whose `comm` is `name`.
    public static func pids(named name: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }.sorted()
    }

    /// Resident memory in bytes.
    public static func rss(_ pid: Int32) -> Double? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        let kb = line.split(separator: " ").compactMap { Double($0) }.first
        return kb.map { $0 * 1024 }
    }

    /// utime + stime in clock ticks.
    public static func cpuTicks(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
        return u + s
    }

    /// Percent of the filesystem holding `path` in use, as df computes it.
    public static func diskUsedPercent(_ path: String) -> Double? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        let used = Double(s.f_blocks - s.f_bfree), avail = Double(s.f_bavail)
        guard used + avail > 0 else { return nil }
        return (used / (used + avail) * 1000).rounded() / 10
    }

    /// Percent of memory in use (MemTotal - MemAvailable).
    public static func memoryUsedPercent() -> Double? {
        guard let s = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        func kb(_ key: String) -> Double? {
            s.split(separator: "\n").first { $0.hasPrefix(key + ":") }.flatMap { $0.split(separator: " ").compactMap { Double($0) }.first }
        }
        guard let total = kb("MemTotal"), let avail = kb("MemAvailable"), total > 0 else { return nil }
        return ((total - avail) / total * 1000).rounded() / 10
    }

    /// The 1-minute load average.
    public static func load1() -> Double? {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }
    }
}

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
