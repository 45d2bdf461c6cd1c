import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract

/// The folder of a process's SSH control sockets, under the state folder (issue 22, decision 6),
/// and closing the masters in it when `runbook run` ends, so nothing it started outlives it.
public enum SSHControlFolder {
    /// Makes `STATE/ssh/NAME` and returns the path to use in `ControlPath`. A socket path must fit
    /// in 108 bytes with ssh's 40-character `%C` and its temporary suffix: when the folder's path is
    /// too long, a short link in the temporary folder points at it (the sockets stay in it).
    public static func prepare(stateDirectory: String, name: String) -> String? {
        let dir = stateDirectory + "/ssh/" + name
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { return nil }
        if dir.utf8.count + 1 + 40 + 17 < 104 { return dir }
        let link = "/tmp/rb-ssh-\(getpid())-\(String(UInt32.random(in: 0...0xffff), radix: 16))"
        do { try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: dir) } catch { return nil }
        return link
    }

    /// Asks every master in `path` to exit (`ssh -O exit`), waits for them, and removes the folder
    /// (and its link). Blocks the caller: call it from a thread of its own, never a task.
    public static func closeAll(_ path: String, settings: SSHSettings) {
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? path
        let sockets = ((try? FileManager.default.contentsOfDirectory(atPath: real)) ?? []).map { real + "/" + $0 }
        let group = DispatchGroup()
        let queue = DispatchQueue(label: "runbook.ssh-close")
        for socket in sockets {
            group.enter()
            var argv = [settings.program]
            if let f = settings.configFile { argv += ["-F", f] }
            argv += ["-o", "ControlPath=\(socket)", "-O", "exit", "runbook-control"]
            _ = ProcessRunner.run(argv: argv, queue: queue) { _ in group.leave() }
        }
        StoreThreads.assertNotInTask("closing ssh control masters")
        _ = group.wait(timeout: .now() + 10)
        if real != path { try? FileManager.default.removeItem(atPath: path) }
        try? FileManager.default.removeItem(atPath: real)
    }
}
