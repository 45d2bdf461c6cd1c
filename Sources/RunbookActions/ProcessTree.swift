import Foundation
import RunbookStoreContract

#if canImport(Glibc)
import Glibc
#endif

/// Finds a step's descendants by the cookie in their environment, wherever they went.
enum ProcessTree {
    /// Sends `sig` to every process (not this one) whose environment holds `RUNBOOK_STEP_COOKIE=cookie`.
    static func signalMarked(cookie: String, _ sig: Int32) {
        ProcessScan.forEachProcess(withEnvironmentEntry: "\(ChildWatcher.cookieVariable)=\(cookie)") { kill($0, sig) }
    }
}
