import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

/// The hooks' logic, without HTTP: each call returns a status code and a JSON body.
public struct RunAPI: Sendable {
    public let runbooks: [Runbook]
    public let launcher: RunLauncher
    public let store: any RunDatabase

    public init(runbooks: [Runbook], launcher: RunLauncher, store: any RunDatabase) {
        self.runbooks = runbooks
        self.launcher = launcher
        self.store = store
    }

    static func error(_ status: Int, _ message: String) -> (Int, String) {
        (status, "{\"error\":\(JSONText.string(message))}")
    }

    /// `POST /hooks/alertmanager`: every firing alert against every runbook's triggers, decided and
    /// recorded in one transaction; resolved alerts close their runs' alert on the timeline. The
    /// answer lists each decision; `summary` is one line for the server's log.
    public func alertmanager(_ body: Data, by caller: String? = nil) -> (Int, String) {
        alertmanagerWithSummary(body, by: caller).answer
    }

    public func alertmanagerWithSummary(_ body: Data, by caller: String?) -> (answer: (Int, String), summary: String?) {
        let payload: AlertPayload
        do { payload = try AlertPayload.decode(body) } catch {
            return (Self.error(400, "malformed Alertmanager payload: \(error)"), nil)
        }
        var requests: [RunLauncher.LaunchRequest] = []
        var resolved: [String] = []
        let now = Date()
        launcher.countAlerts(payload.alerts.count)
        for alert in payload.alerts {
            let fingerprint = alert.fingerprint ?? Self.fingerprint(alert.labels)
            if !alert.isFiring {
                let ids: [String]
                do { ids = try store.resolve(fingerprint: fingerprint, at: now) } catch {
                    return (Self.error(503, "could not record the resolved alert, send again: \(error)"), "alertmanager payload: resolved alert not recorded: \(error)")
                }
                // Refused runs have no timeline of their own (their row tells it).
                for id in ids where (try? store.run(id))?.outcome != RunOutcome.refused.rawValue {
                    var e = TimelineEvent(time: now, run: id, event: "alert.resolved")
                    e.message = "alert \(alert.labels["alertname"] ?? "?") (\(fingerprint)) resolved\(alert.endsAt.map { " at \($0)" } ?? "")"
                    (try? store.timelineSink(runID: id, health: nil))?.record(e)
                }
                resolved += ids
                continue
            }
            for rb in runbooks {
                guard let trigger = rb.trigger(for: alert) else { continue }
                var request = RunLauncher.LaunchRequest(
                    runbook: rb, given: trigger.params(from: alert), trigger: "alert:\(alert.labels["alertname"] ?? "?")",
                    fingerprint: fingerprint, requireAuto: true, autoConfirm: true, by: caller)
                request.alert = AlertValues(labels: alert.labels, annotations: alert.annotations ?? [:])
                requests.append(request)
            }
        }
        let decisions = requests.isEmpty ? [] : launcher.launchAll(requests)
        // Nothing could be recorded (the database is down): a 5xx, so that Alertmanager sends it again.
        if let why = decisions.lazy.compactMap(\.storeFailure).first {
            return (Self.error(503, "could not record the runs, send again: \(why)"), "alertmanager payload: \(payload.alerts.count) alert(s) not recorded: \(why)")
        }
        var counts: [String: Int] = [:]
        for d in decisions {
            switch d {
            case .started: counts["started", default: 0] += 1
            case .duplicate: counts["duplicate", default: 0] += 1
            case .refused(_, let g, _, _): counts["refused by \(g)", default: 0] += 1
            }
        }
        let summary = "alertmanager payload: \(payload.alerts.count) alert(s), \(resolved.count) run(s) resolved"
            + (counts.isEmpty ? "" : "; " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        let json = "{\"runs\":[\(RunLauncher.Decision.json(decisions))],\"resolved\":[\(resolved.map(JSONText.string).joined(separator: ","))]}"
        return ((202, json), summary)
    }

    /// A stable fingerprint when the sender gives none (Grafana may not): the sorted labels.
    static func fingerprint(_ labels: [String: String]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) {
            for b in "\(k)=\(v);".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        return String(h, radix: 16)
    }

    /// `POST /hooks/run`: `{"runbook": NAME, "params": {K: string | number | bool}, "confirm": bool}`, a
    /// manual run over HTTP. Only declared params, of those JSON types; anything else is a 400 with
    /// the reason. Guards apply. `confirm: true` steps run only when the request says `"confirm": true`
    /// and `mayConfirm` (an operator's or admin's token); otherwise they are declined.
    public func run(_ body: Data, by caller: String? = nil, mayConfirm: Bool = true, mode: RunMode = .live) -> (Int, String) {
        guard let obj = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            return Self.error(400, "body must be a JSON object like {\"runbook\": \"memory-leak\", \"params\": {}, \"confirm\": false}")
        }
        if let unknown = obj.keys.sorted().first(where: { !["runbook", "params", "confirm"].contains($0) }) {
            return Self.error(400, "unknown field \"\(unknown)\": the body takes runbook, params and confirm")
        }
        guard let name = obj["runbook"] as? String else { return Self.error(400, "\"runbook\" must be a runbook name (a string)") }
        guard let rb = runbooks.first(where: { $0.name == name }) else {
            return Self.error(400, "no runbook named '\(Escape.text(name))'; there are: \(runbooks.map(\.name).joined(separator: ", "))")
        }
        var confirm = false
        if let c = obj["confirm"] {
            guard let b = Self.bool(c) else { return Self.error(400, "\"confirm\" must be true or false") }
            confirm = b
        }
        var params: [String: String] = [:]
        if let p = obj["params"] {
            guard let dict = p as? [String: Any] else { return Self.error(400, "\"params\" must be an object of string, number or bool values") }
            for (k, v) in dict.sorted(by: { $0.key < $1.key }) {
                guard rb.param(k) != nil else {
                    return Self.error(400, "runbook \(rb.name) has no param '\(Escape.text(k))'; it takes: \(rb.params.map(\.name).joined(separator: ", "))")
                }
                guard let text = Self.scalarText(v) else {
                    return Self.error(400, "param '\(k)' must be a string, number or bool, not \(Self.jsonType(v))")
                }
                params[k] = text
            }
        }
        do { _ = try RunInputs.resolve(rb, given: params) } catch {
            return Self.error(400, "\(error)")
        }
        var request = RunLauncher.LaunchRequest(runbook: rb, given: params, trigger: "api", fingerprint: nil, requireAuto: false,
                                                autoConfirm: confirm && mayConfirm, by: caller)
        request.mode = mode
        let d = launcher.launchAll([request])[0]
        if let why = d.storeFailure { return Self.error(503, "could not record the run: \(why)") }
        return (202, "{\"runs\":[\(d.json)]}")
    }

    /// A JSON bool, and only a bool (Foundation hands numbers and bools alike as NSNumber).
    static func bool(_ v: Any) -> Bool? {
        guard let n = v as? NSNumber, String(cString: n.objCType) == "c" else { return nil }
        return n.boolValue
    }

    /// The text of a string, number or bool; nil for null, arrays and objects.
    static func scalarText(_ v: Any) -> String? {
        if let s = v as? String { return s }
        if let b = bool(v) { return b ? "true" : "false" }
        if let n = v as? NSNumber {
            let d = n.doubleValue
            guard d.isFinite else { return nil }
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
            return "\(d)"
        }
        return nil
    }

    static func jsonType(_ v: Any) -> String {
        if v is NSNull { return "null" }
        if v is [Any] { return "an array" }
        if v is [String: Any] { return "an object" }
        return "\(type(of: v))"
    }

    /// `GET /runs`: newest first.
    public func runs() -> (Int, String) {
        let all: [RunRecord], awaiting: Set<String>
        do {
            all = try store.runs(limit: 500)
            awaiting = try store.runsAwaitingApproval()
        } catch { return Self.readFailed(error) }
        return (200, APIJSON.text(all.map { RunSummary($0, awaiting: awaiting.contains($0.id)) }))
    }

    /// `GET /runs/ID`: the run, the gates it waits at, and its timeline.
    public func run(id: String) -> (Int, String) {
        let found: RunRecord?
        do { found = try store.run(id) } catch { return Self.readFailed(error) }
        guard let r = found else { return Self.error(404, "no run '\(id)'") }
        let events = store.timeline(id)
        let gates = r.outcome == nil ? ((try? store.openGates(runID: id)) ?? []) : []
        // The timeline's lines exactly as the run's record holds them.
        let summary = APIJSON.text(RunSummary(r, awaiting: !gates.isEmpty))
        return (200, summary.dropLast() + ",\"awaiting\":" + APIJSON.text(gates)
            + ",\"timeline\":[" + events.map { $0.jsonLine() }.joined(separator: ",") + "]}")
    }

    /// `POST /runs/ID/approve` and `/deny` (operator): the caller's token name is the approver. With
    /// `--no-auth` every caller is anonymous, so the body may name one: `{"as": "alice"}`.
    public func answer(id: String, approve: Bool, body: Data, by caller: String, anonymous: Bool) -> (Int, String) {
        var name = caller
        if !body.isEmpty, body.contains(where: { ![0x20, 0x0a, 0x0d, 0x09].contains($0) }) {
            guard let obj = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                return Self.error(400, "body must be empty or a JSON object like {\"as\": \"alice\"}")
            }
            if let unknown = obj.keys.sorted().first(where: { $0 != "as" }) { return Self.error(400, "unknown field \"\(unknown)\": the body takes as") }
            if let given = obj["as"] {
                guard anonymous else { return Self.error(400, "\"as\" is for servers without tokens: the approver is the token's name (\(caller))") }
                guard let s = (given as? String).flatMap(ApprovalError.approverName) else {
                    return Self.error(400, "\"as\" must be a name of 1 to 100 printable characters")
                }
                name = s
            }
        }
        let runID: String
        do { runID = try store.resolveRunID(id) } catch let e as RunIDError { return Self.error(404, "\(e)") } catch { return storeUnavailable() ?? Self.readFailed(error) }
        do {
            let receipt = try store.answer(runID: runID, approve: approve, by: name, via: "http", now: Date())
            let gates = receipt.gates.map { "{\"gate\":\(JSONText.string($0.gate)),\"approvals\":\($0.approvals),\"needed\":\($0.needed)}" }
            let met = receipt.gates.allSatisfy { $0.approvals >= $0.needed }
            let status = !approve ? "denied" : met ? "approved" : "awaiting-approval"
            return (200, "{\"run\":\(JSONText.string(runID)),\"by\":\(JSONText.string(name)),\"status\":\"\(status)\",\"gates\":[\(gates.joined(separator: ","))]}")
        } catch let e as ApprovalError {
            return Self.error(409, e.description)
        } catch let e as StoreUnreachableError {
            return Self.unavailable(e)
        } catch {
            // The answer was not taken: the approver should send it again, as after any store failure.
            return storeUnavailable() ?? Self.readFailed(error)
        }
    }
}
