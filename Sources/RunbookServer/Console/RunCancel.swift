import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

extension RunAPI {
    /// `POST /runs/ID/cancel` (operator): `{"undo": true|false}` (default true). A run this server
    /// drives is stopped at once; one driven by another process or replica gets a request in the
    /// store, which its owner takes within a second. 200 once `run.cancelled` is on record, 409 when
    /// the run has finished, 404 for an unknown run, 202 when no owner took the request within
    /// `wait` seconds (it stays for it).
    public func cancel(id: String, body: Data, by name: String, wait: Double = 5) -> (Int, String) {
        var undo = true
        if body.contains(where: { ![0x20, 0x0a, 0x0d, 0x09].contains($0) }) {
            guard let obj = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                return Self.error(400, "body must be empty or a JSON object like {\"undo\": true}")
            }
            if let unknown = obj.keys.sorted().first(where: { $0 != "undo" }) { return Self.error(400, "unknown field \"\(unknown)\": the body takes undo") }
            if let u = obj["undo"] {
                guard let b = Self.bool(u) else { return Self.error(400, "\"undo\" must be true or false") }
                undo = b
            }
        }
        let runID: String
        do { runID = try store.resolveRunID(id) } catch { return Self.error(404, "\(error)") }
        let done = { (Int(200), "{\"run\":\(JSONText.string(runID)),\"by\":\(JSONText.string(name)),\"status\":\"cancelled\",\"undo\":\(undo)}") }
        let finished = Self.error(409, "run \(runID) has finished: nothing to cancel")
        guard let record = try? store.run(runID) else { return Self.error(404, "no run '\(runID)'") }
        guard record.outcome == nil else { return finished }
        if let session = launcher.session(runID) {
            return session.cancel(by: name, undo: undo) ? done() : finished
        }
        do { try store.requestCancel(runID: runID, CancelRequest(by: name, undo: undo)) } catch {
            return Self.error(503, "could not record the cancel request: \(error)")
        }
        let deadline = Date().addingTimeInterval(wait)
        while Date() < deadline {
            let events = store.timeline(runID)
            if events.contains(where: { $0.event == "run.cancelled" && $0.by == name }) { return done() }
            if events.contains(where: { $0.event == "run.finished" }) {
                try? store.clearCancelRequest(runID: runID)
                return finished
            }
            usleep(50_000)
        }
        return (202, "{\"run\":\(JSONText.string(runID)),\"by\":\(JSONText.string(name)),\"status\":\"requested\",\"undo\":\(undo),\"message\":\"no owner took the request yet; it stays for the run's owner\"}")
    }
}
