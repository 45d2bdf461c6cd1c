import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

extension RunAPI {
    /// `GET /runs?runbook=&outcome=&status=&q=&limit=&before=RUN_ID`: one page of runs, newest first,
    /// filtered in the store's indexed query; `before` is the previous page's last run id.
    public func runs(query: [String: String]) -> (Int, String) {
        var q = RunListQuery()
        q.runbook = query["runbook"].flatMap { $0.isEmpty ? nil : $0 }
        q.outcome = query["outcome"].flatMap { $0.isEmpty ? nil : $0 }
        if let s = query["status"], !s.isEmpty {
            guard let status = RunListQuery.Status(rawValue: s) else {
                return Self.error(400, "status must be running, awaiting-approval or finished")
            }
            q.status = status
        }
        q.text = query["q"].flatMap { $0.isEmpty ? nil : $0 }
        q.before = query["before"].flatMap { $0.isEmpty ? nil : $0 }
        if let l = query["limit"] {
            guard let n = Int(l), (1...500).contains(n) else { return Self.error(400, "limit must be a number from 1 to 500") }
            q.limit = n
        }
        do {
            let page = try store.listRuns(q)
            let awaiting = (try? store.runsAwaitingApproval()) ?? []
            return (200, APIJSON.text(page.map { RunSummary($0, awaiting: awaiting.contains($0.id)) }))
        } catch {
            return Self.error(503, "could not read the runs: \(error)")
        }
    }
}
