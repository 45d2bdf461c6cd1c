import Dispatch
import Foundation
import RunbookCore

/// The `notify` change: POST a Slack-compatible JSON message.
enum NotifyAction {
    static func run(_ c: NotifySpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let url = request.render(c.url)
        let text = c.text.map(request.render) ?? "runbook \(request.runbookName): step \(request.step.id)"
        if request.dryRun {
            completion(StepResult(.wouldChange, "would post to \(url): \(text)", change: AppliedChange(what: "notify \(url)", from: "", to: "", simulated: true)))
            return NothingToCancel()
        }
        let payload: [String: Any] = ["text": text, "run_id": request.runID, "runbook": request.runbookName, "step": request.step.id, "status": "running"]
        let body = String(decoding: (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
        let headers = c.headers.map { ($0.name, request.render($0.value)) }
        return HTTPProbe.send(method: "POST", url: url, headers: headers, body: body, timeout: request.step.timeout) { r in
            switch r {
            case .success(let a) where (200..<300).contains(a.status):
                completion(StepResult(.passed, "posted to \(url): \(a.status)", output: ["status": .number(Double(a.status))],
                                      change: AppliedChange(what: "notify \(url)", from: "", to: "")))
            case .success(let a):
                completion(StepResult(.failed, "notify \(url) answered \(a.status): \(a.body.prefix(200))"))
            case .failure(let f):
                completion(StepResult(.failed, "notify failed: \(f.message)"))
            }
        }
    }
}
