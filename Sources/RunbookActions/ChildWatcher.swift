import CRunbookSys
import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract

#if canImport(Glibc)
import Glibc
#endif

/// Owns every child process's pidfd and pipe ends on one thread of its own with its own epoll
/// instance. Dispatch never watches a child descriptor: libdispatch's epoll bookkeeping has a
/// use-after-free when many read sources come and go (swift-corelibs-libdispatch issue 949).
///
/// One thread serves every child, so a thousand waiting children cost one thread. Results are
/// handed to each child's queue with `queue.async`. Timers (the KILL after the grace period) stay
/// on Dispatch, which is safe: timer sources do not use epoll registrations.
public final class ChildWatcher: @unchecked Sendable {
    /// The process-wide watcher.
    public static let shared = ChildWatcher()

    /// Time between TERM and KILL when a step's process tree is stopped.
    public static let killGrace: Double = 2

    /// The environment variable every child gets, with a value unique to it. Descendants inherit it,
    /// so ones that left the process group (setsid daemons) are still found at the deadline.
    public static let cookieVariable = "RUNBOOK_STEP_COOKIE"

    // `children`, `byPID`, `nextID`, `owedKills`, `subreaper` and `started` are guarded by `lock`.
    // A child's buffers and descriptors are touched only on the watcher thread.
    private let lock = NSCondition()
    private let epfd: Int32
    private let wakeFD: Int32
    private var children: [UInt64: WatchedChild] = [:]
    private var byPID: Set<pid_t> = []
    private var nextID: UInt64 = 1
    private var owedKills = 0
    private var subreaper = false
    private var started = false
    private let timers = DispatchQueue(label: "runbook.child-kill", attributes: .concurrent)
    /// Spawns waiting for a slot, oldest first (guarded by `lock`).
    private var waiting: [PendingSpawn] = []
    private var live = 0

    /// Most children alive at once; further spawns wait their turn (each child holds three
    /// descriptors, so an unbounded number would run out of them). Set before the first spawn.
    public var maxRunning: Int {
        get { lock.withLock { cap } }
        set { lock.withLock { cap = max(1, newValue) } }
    }
    private var cap: Int

    init() {
        // Raise the soft descriptor limit to the hard one: children, pipes and sockets all count.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = min(limit.rlim_max, 1 << 20)
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let byDescriptors = Int(min(limit.rlim_cur, 1 << 20)) / 8
        cap = max(8, min(max(64, 16 * ProcessInfo.processInfo.activeProcessorCount), byDescriptors))
        epfd = crb_epoll_create()
        wakeFD = crb_eventfd()
        if epfd >= 0, wakeFD >= 0 { _ = crb_epoll_add(epfd, wakeFD, 0) }
    }

    /// Makes this process a child subreaper: descendants orphaned by a step's command become its
    /// children, are reaped here, and can be killed with their step. Call once, early.
    public func becomeSubreaper() {
        guard crb_set_child_subreaper() == 0 else { return }
        lock.withLock { subreaper = true }
        wake()
    }

    /// Starts `argv` (no shell) as the leader of a new process group and watches it; when
    /// `maxRunning` children are alive, it starts as soon as one ends.
    func spawn(argv: [String], environment: [String: String], cwd: String?, queue: DispatchQueue,
               completion: @escaping @Sendable (ProcessResult) -> Void) -> any Cancellable {
        let pending = PendingSpawn(argv: argv, environment: environment, cwd: cwd, queue: queue, completion: completion, watcher: self)
        let now = lock.withLock { () -> Bool in
            if live < cap, waiting.isEmpty {
                live += 1
                return true
            }
            waiting.append(pending)
            return false
        }
        if now { start(pending) }
        return pending
    }

    /// Starts waiting spawns while there is room.
    private func startWaiting() {
        while let next = lock.withLock({ () -> PendingSpawn? in
            guard live < cap, !waiting.isEmpty else { return nil }
            live += 1
            return waiting.removeFirst()
        }) {
            start(next)
        }
    }

    /// A waiting spawn was cancelled (its step timed out or the run stopped): it never starts.
    func withdraw(_ pending: PendingSpawn) -> Bool {
        lock.withLock {
            guard let i = waiting.firstIndex(where: { $0 === pending }) else { return false }
            waiting.remove(at: i)
            return true
        }
    }

    /// A slot is free again (a child ended, or a spawn failed).
    private func release() {
        lock.withLock { live -= 1 }
        startWaiting()
    }

    /// Starts a spawn on the spawner thread (children are bound to it, `SpawnerThread`); the caller
    /// goes on at once.
    private func start(_ pending: PendingSpawn) {
        SpawnerThread.shared.async { [self] in launchOnSpawner(pending) }
    }

    private func launchOnSpawner(_ pending: PendingSpawn) {
        switch launch(pending) {
        case .success(let child):
            pending.started(child)
        case .failure(let f) where f.code == ETXTBSY && pending.attempts < 20:
            // "Text file busy": another process (often a child forked elsewhere while the program was
            // being written) still holds the program open for writing. It passes; try again shortly.
            pending.attempts += 1
            timers.asyncAfter(deadline: .now() + .milliseconds(25 * pending.attempts)) { [self] in start(pending) }
        case .failure(let f):
            pending.queue.async { pending.completion(ProcessResult(stdout: "", stderr: "", truncated: false, duration: 0, spawnError: f.message)) }
            release()
        }
    }

    /// Why a program could not be started.
    struct SpawnFailure: Error {
        var code: Int32
        var message: String
    }

    /// The spawn itself.
    private func launch(_ p: PendingSpawn) -> Result<WatchedChild, SpawnFailure> {
        let (argv, environment, cwd, queue, completion) = (p.argv, p.environment, p.cwd, p.queue, p.completion)
        let startedAt = Date()
        func fail(_ why: String, _ code: Int32 = 0) -> Result<WatchedChild, SpawnFailure> {
            .failure(SpawnFailure(code: code, message: why))
        }
        guard let program = argv.first, !program.isEmpty else { return fail("empty argv") }
        guard epfd >= 0 else { return fail("cannot watch processes: epoll_create1 failed") }
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard crb_pipe_cloexec(&outPipe) == 0 else { return fail("pipe: \(String(cString: strerror(errno)))") }
        guard crb_pipe_cloexec(&errPipe) == 0 else {
            let why = String(cString: strerror(errno))
            close(outPipe[0]); close(outPipe[1])
            return fail("pipe: \(why)")
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        // Spawning and registering happen under the lock, so the orphan reaper never takes a child's
        // exit status before the child is known.
        lock.lock()
        let id = nextID
        nextID += 1
        let cookie = "\(getpid())-\(id)"
        env[Self.cookieVariable] = cookie
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        let (outEnd, errEnd) = (outPipe[1], errPipe[1])
        // On the spawner thread (`start`): the child's PR_SET_PDEATHSIG follows the thread that made it.
        var pid: pid_t = 0
        let rc = ProcessRunner.withCStrings(argv) { cArgv in
            ProcessRunner.withCStrings(envStrings) { cEnv in
                crb_spawn_bound(&pid, program, cArgv, cEnv, cwd, outEnd, errEnd)
            }
        }
        close(outPipe[1])
        close(errPipe[1])
        if rc != 0 {
            lock.unlock()
            close(outPipe[0]); close(errPipe[0])
            return fail(rc == ENOENT ? "program not found: \(program)" : "cannot start \(program): \(String(cString: strerror(rc)))", rc)
        }
        let child = WatchedChild(id: id, pid: pid, cookie: cookie, queue: queue, started: startedAt, completion: completion, watcher: self)
        for fd in [outPipe[0], errPipe[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        child.outFD = outPipe[0]
        child.errFD = errPipe[0]
        child.pidfd = crb_pidfd_open(pid)
        children[id] = child
        byPID.insert(pid)
        _ = crb_epoll_add(epfd, child.outFD, id << 2 | 1)
        _ = crb_epoll_add(epfd, child.errFD, id << 2 | 2)
        if child.pidfd >= 0 { _ = crb_epoll_add(epfd, child.pidfd, id << 2 | 3) }
        let startThread = !started
        started = true
        lock.unlock()
        if startThread {
            let t = Thread { [self] in loop() }
            t.name = "runbook.child-watcher"
            t.start()
        }
        return .success(child)
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// The watcher thread: waits on every child descriptor at once.
    private func loop() {
        var tokens = [UInt64](repeating: 0, count: 256)
        while true {
            let (poll, reapOrphans) = lock.withLock { (children.values.contains { $0.pidfd < 0 && !$0.ended }, subreaper) }
            let timeout: Int32 = poll ? 20 : reapOrphans ? 500 : -1
            let n = crb_epoll_wait(epfd, &tokens, 256, timeout)
            if n < 0 { continue }
            for i in 0..<Int(n) {
                let token = tokens[i]
                if token == 0 {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                guard let child = lock.withLock({ children[token >> 2] }) else { continue }
                switch token & 3 {
                case 1: child.drain(stdout: true, epfd: epfd)
                case 2: child.drain(stdout: false, epfd: epfd)
                default: checkExit(child)
                }
            }
            if poll {
                for child in lock.withLock({ children.values.filter { $0.pidfd < 0 && !$0.ended } }) { checkExit(child) }
            }
            if reapOrphans { reapUnknownChildren() }
        }
    }

    /// The leader ended: read how (without reaping when a KILL is still owed to its group), take
    /// what its pipes hold now, close every descriptor and report.
    private func checkExit(_ child: WatchedChild) {
        guard !child.ended else { return }
        var code: Int32 = 0, sig: Int32 = 0
        let peek = crb_peek_exit(child.pid, &code, &sig)
        let stolen = peek < 0 && errno == ECHILD
        guard peek == 1 || stolen else { return }
        child.ended = true
        if child.pidfd >= 0 {
            _ = crb_epoll_del(epfd, child.pidfd)
            close(child.pidfd)
            child.pidfd = -1
        }
        // A daemon started by the command may keep the pipes open: take what is there, do not wait for EOF.
        child.drain(stdout: true, epfd: epfd)
        child.drain(stdout: false, epfd: epfd)
        child.closePipes(epfd: epfd)
        let keepZombie = lock.withLock { () -> Bool in
            children[child.id] = nil
            // While a KILL is owed to the group, the unreaped leader keeps its id from being reused.
            if child.killOwed { return true }
            if !stolen { byPID.remove(child.pid) }
            return false
        }
        if !keepZombie, !stolen {
            var status: Int32 = 0
            _ = waitpid(child.pid, &status, WNOHANG)
        }
        child.report(exitCode: stolen ? nil : sig == 0 ? code : nil, signal: stolen || sig == 0 ? nil : sig,
                     spawnError: stolen ? "exit status lost: the process was reaped elsewhere" : nil)
        release()
    }

    /// Reaps orphans this subreaper inherited (descendants whose parent exited), never a known child.
    private func reapUnknownChildren() {
        for _ in 0..<256 {
            let reaped = lock.withLock { () -> Bool in
                let pid = crb_any_exited_child()
                guard pid > 0, !byPID.contains(pid) else { return false }
                var status: Int32 = 0
                return waitpid(pid, &status, WNOHANG) == pid
            }
            if !reaped { return }
        }
    }

    /// TERM to the child's process group and marked descendants now; KILL after the grace period,
    /// whether or not the leader has exited by then.
    func stop(_ child: WatchedChild) {
        let proceed = lock.withLock { () -> Bool in
            guard !child.killOwed, !child.reported else { return false }
            child.killOwed = true
            owedKills += 1
            return true
        }
        guard proceed else { return }
        kill(-child.pid, SIGTERM)
        let cookie = child.cookie
        timers.async { ProcessTree.signalMarked(cookie: cookie, SIGTERM) }
        timers.asyncAfter(deadline: .now() + Self.killGrace) { [self] in
            kill(-child.pid, SIGKILL)
            ProcessTree.signalMarked(cookie: cookie, SIGKILL)
            lock.withLock {
                // The leader may have ended already and been kept as a zombie for this moment.
                if child.ended {
                    var status: Int32 = 0
                    _ = waitpid(child.pid, &status, WNOHANG)
                    byPID.remove(child.pid)
                }
                child.killOwed = false
                owedKills -= 1
                lock.broadcast()
            }
        }
    }

    /// Signals owed: stopped process trees whose KILL has not been sent yet.
    public var owedKillCount: Int { lock.withLock { owedKills } }

    /// Blocks until every owed KILL has been sent (at most `timeout` seconds), then sends any still
    /// owed at once: a loaded machine's late timer must not let a process tree outlive its engine.
    /// Call before exiting. Returns whether they were all sent on time.
    @discardableResult
    public func waitForOwedKills(timeout: Double = 10) -> Bool {
        StoreThreads.assertNotInTask("waiting for owed KILLs to be sent")
        let deadline = Date().addingTimeInterval(timeout)
        let onTime = lock.withLock { () -> Bool in
            while owedKills > 0 {
                if !lock.wait(until: deadline) { return owedKills == 0 }
            }
            return true
        }
        if onTime { return true }
        // Each owed leader is kept unreaped until its KILL (`stop`), so its group id is still its own.
        let owed = lock.withLock { children.values.filter { $0.killOwed } }
        for c in owed {
            kill(-c.pid, SIGKILL)
            ProcessTree.signalMarked(cookie: c.cookie, SIGKILL)
        }
        return false
    }

    /// KILL every watched process group and marked descendant now (a second Ctrl-C).
    public func killEverything() {
        let all = lock.withLock { Array(children.values) }
        for c in all {
            kill(-c.pid, SIGKILL)
            ProcessTree.signalMarked(cookie: c.cookie, SIGKILL)
        }
    }

    /// A child's result is on its way to its queue: nothing is owed to it any more.
    func markReported(_ child: WatchedChild) {
        lock.withLock { child.reported = true }
    }
}
