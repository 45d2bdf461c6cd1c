import Foundation
import RunbookCore

#if canImport(Glibc)
import Glibc
#endif

/// What is left of a run's commands after its owner died or was fenced, found and killed on this
/// machine before anyone else writes how the run ended (SPEC §7.2, ECOSYSTEM "Children that must
/// die with the engine").
///
/// Every command a step runs carries `RUNBOOK_STEP=<run id>/<step id>` in its environment (the live
/// executor sets it; a restart's daemon is meant to outlive its script and is not marked), and so
/// do its descendants: a grandchild left in the step's process group, or one that left it with
/// `setsid`. That cookie, derived from the run's row and its timeline's `step.started`, proves a
/// process is the step's. Whoever finalises or takes over a run whose owner is gone first kills
/// every process of the steps its timeline shows running (started, not finished; an undo started,
/// not finished), and the groups they lead, then writes the record, so "left in place" is what
/// really is. Daemons that finished steps left behind are changes in place and are not touched.
/// (On another machine a dead owner's direct children die by `PR_SET_PDEATHSIG`, and a fenced
/// owner kills its own.)
public enum RunLeftovers {
    /// The environment variable that marks a step's processes.
    public static let variable = "RUNBOOK_STEP"

    /// The value of `variable` for a step of a run.
    public static func mark(runID: String, step: String) -> String { "\(runID)/\(step)" }

    /// Steps the timeline shows running: started and not finished, or an undo started and not finished.
    public static func stepsInFlight(_ events: [TimelineEvent]) -> Set<String> {
        var running = Set<String>(), undoing = Set<String>()
        for e in events {
            guard let s = e.step else { continue }
            switch e.event {
            case "step.started": running.insert(s)
            case "step.finished": running.remove(s)
            case "undo.started": undoing.insert(s)
            case "undo.finished", "undo.failed": undoing.remove(s)
            default: break
            }
        }
        return running.union(undoing)
    }

    /// Sends SIGKILL to every process (not this one) of the steps `events` shows running, and to
    /// the process groups they lead. Returns how many processes were marked.
    @discardableResult
    public static func kill(runID: String, events: [TimelineEvent]) -> Int {
        kill(runID: runID, events: events, mayHaveProcesses: { _ in true })
    }

    /// `kill`, only for the running steps `mayHaveProcesses` says may have left processes (each
    /// step costs a scan of every process's environment; a takeover does it for hundreds of runs).
    @discardableResult
    public static func kill(runID: String, events: [TimelineEvent], mayHaveProcesses: (String) -> Bool) -> Int {
        stepsInFlight(events).filter(mayHaveProcesses).reduce(0) { $0 + kill(mark: mark(runID: runID, step: $1)) }
    }

    /// Sends SIGKILL to every process marked `mark` and to the groups they lead.
    static func kill(mark: String) -> Int {
        var killed = 0
        ProcessScan.forEachProcess(withEnvironmentEntry: "\(variable)=\(mark)") { pid in
            killed += 1
            // A marked group leader: its whole group goes, marked or not (a child that cleared its environment).
            if getpgid(pid) == pid { Glibc.kill(-pid, SIGKILL) }
            Glibc.kill(pid, SIGKILL)
        }
        return killed
    }
}

/// Finds processes by an entry of their environment (`/proc/PID/environ`).
public enum ProcessScan {
    /// Calls `body` with the pid of every process but this one whose environment holds exactly
    /// `entry` (`NAME=VALUE`).
    public static func forEachProcess(withEnvironmentEntry entry: String, _ body: (pid_t) -> Void) {
        let needle = [0] + Array(entry.utf8) + [0]
        guard let dir = opendir("/proc") else { return }
        defer { closedir(dir) }
        let me = getpid()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while let item = readdir(dir) {
            let name = withUnsafePointer(to: item.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            guard let pid = Int32(name), pid != me, pid > 1 else { continue }
            let fd = open("/proc/\(pid)/environ", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            // Every entry ends with NUL; a leading NUL lets the first entry match too.
            var data: [UInt8] = [0]
            while data.count < 1 << 20 {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                data.append(contentsOf: buffer[0..<n])
            }
            close(fd)
            if contains(data, needle) { body(pid) }
        }
    }

    static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count else { return false }
        return hay.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                let first = n[0], last = h.count - n.count
                var i = 0
                while i <= last {
                    if h[i] == first, memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 { return true }
                    i += 1
                }
                return false
            }
        }
    }
}
