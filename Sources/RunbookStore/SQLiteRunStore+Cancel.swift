import Foundation
import RunbookStoreContract

/// Cancel requests as flag files, `runs/ID.cancel` (one JSON object), beside the run's timeline: a
/// `runbook run` in another terminal sees one with a `stat`, no database read.
extension SQLiteRunStore: CancelRequests {
    func cancelPath(_ runID: String) -> String { "\(directory)/runs/\(runID).cancel" }

    public func requestCancel(runID: String, _ request: CancelRequest) throws {
        let body: [String: Any] = ["by": request.by, "undo": request.undo]
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        let path = cancelPath(runID)
        guard FileManager.default.createFile(atPath: path + ".tmp", contents: data), rename(path + ".tmp", path) == 0 else {
            throw StoreError(path: path, operation: "write", errno: errno)
        }
    }

    public func pendingCancels(among runIDs: [String]) throws -> [String: CancelRequest] {
        var found: [String: CancelRequest] = [:]
        for id in runIDs {
            let path = cancelPath(id)
            guard access(path, F_OK) == 0, let data = FileManager.default.contents(atPath: path) else { continue }
            let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            found[id] = CancelRequest(by: obj["by"] as? String ?? "unknown", undo: obj["undo"] as? Bool ?? true)
        }
        return found
    }

    public func clearCancelRequest(runID: String) throws {
        let path = cancelPath(runID)
        if unlink(path) != 0, errno != ENOENT { throw StoreError(path: path, operation: "remove", errno: errno) }
    }
}
