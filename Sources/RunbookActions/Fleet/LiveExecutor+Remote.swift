import Dispatch
import Foundation
import RunbookCore

/// Where a step's processes run: here, or, for one host of an `across:` step, on that host over
/// SSH (the local `ssh` client is the watched child, so timeouts and interrupts stop it as any
/// other; the remote side stops itself at the host's deadline).
extension LiveExecutor {
    /// Starts `argv` for `request`: locally, or on `request.target` through `ssh`.
    func spawn(_ argv: [String], environment: [String: String] = [:], cwd: String? = nil, _ request: StepRequest,
               completion: @escaping @Sendable (ProcessResult) -> Void) -> any Cancellable {
        guard let target = request.target else {
            return ProcessRunner.run(argv: argv, environment: environment, cwd: cwd, queue: workQueue, completion: completion)
        }
        let remote = SSHCommand.remote(argv, env: environment.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, cwd: cwd,
                                       timeout: request.step.timeout)
        let local = SSHCommand.argv(target, remote: remote, settings: ssh, stepTimeout: request.step.timeout)
        return ProcessRunner.run(argv: local, queue: workQueue) { r in
            var r = r
            // ssh's own failure (refused, silent, unknown host key): the host was never reached.
            if let why = SSHCommand.unreachable(exitCode: r.exitCode, stderr: r.stderr) { r.spawnError = "\(target.host): \(why)" }
            completion(r)
        }
    }
}
