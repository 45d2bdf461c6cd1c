import Foundation
import NIOCore
import NIOPosix
import RunbookCore

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
