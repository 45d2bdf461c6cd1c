import Dispatch
import Foundation
import RunbookCore

/// The HTTP flag-service provider: one request; undone only through the step's explicit `undo`.
enum HTTPFlagAction {
    static func run(_ c: FlagSpec, _ h: FlagHTTPSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let url = request.render(h.url)
        let method = h.method
        let key = c.key.map(request.render) ?? url
        let to: String
        switch c.setting {
        case .variant(let v)?: to = request.render(v)
        case .state(let s)?: to = s
        case nil: to = "set"
        }
        let change = AppliedChange(what: "flag \(key)", from: "?", to: to, location: url, simulated: request.dryRun)
        if request.dryRun {
            completion(StepResult(.wouldChange, "would \(method) \(url): \(change.summary)", change: change))
            return NothingToCancel()
        }
        let headers = h.headers.map { ($0.name, request.render($0.value)) }
        return HTTPProbe.send(method: method, url: url, headers: headers, body: h.body.map(request.render), timeout: request.step.timeout) { r in
            switch r {
            case .success(let a) where (200..<300).contains(a.status):
                completion(StepResult(.passed, "\(method) \(url): \(a.status)", change: change))
            case .success(let a): completion(StepResult(.failed, "\(method) \(url) answered \(a.status): \(a.body.prefix(200))"))
            case .failure(let f): completion(StepResult(.failed, f.message))
            }
        }
    }
}
