import Foundation
import RunbookCore
import RunbookStore

/// The hooks' logic, without HTTP: each call returns a status code and a JSON body.
public struct AlertIntake: Sendable {
    public let runbooks: [Runbook]
    public let launcher: RunLauncher
    public let store: RunStore

    public init(runbooks: [Runbook], launcher: RunLauncher, store: RunStore) {
        self.runbooks = runbooks
        self.launcher = launcher
        self.store = store
    }

    static func error(_ status: Int, _ message: String) -> (Int, String) {
        (status, "{\"error\":\(JSONText.string(message))}")
    }

    /// `POST /hooks/alertmanager`: every firing alert against every runbook's triggers; resolved alerts
    /// close their runs' alert on the timeline.
    public func alertmanager(_ body: Data) -> (Int, String) {
        let payload: AlertPayload
        do { payload = try AlertPayload.decode(body) } catch {
            return Self.error(400, "malformed Alertmanager payload: \(error)")
        }
        var decisions: [String] = []
        var resolved: [String] = []
        let now = Date()
        for alert in payload.alerts {
            launcher.countAlert()
            let fingerprint = alert.fingerprint ?? Self.fingerprint(alert.labels)
            if !alert.isFiring {
                let ids = (try? store.resolve(fingerprint: fingerprint, at: now)) ?? []
                for id in ids {
                    var e = TimelineEvent(time: now, run: id, event: "alert.resolved")
                    e.message = "alert \(alert.labels["alertname"] ?? "?") (\(fingerprint)) resolved\(alert.endsAt.map { " at \($0)" } ?? "")"
                    (try? TimelineFileSink(path: store.timelinePath(id)))?.record(e)
                }
                resolved += ids
                continue
            }
            for rb in runbooks {
                guard let trigger = rb.trigger(for: alert) else { continue }
                let d = launcher.launch(rb, given: trigger.params(from: alert), trigger: "alert:\(alert.labels["alertname"] ?? "?")",
                                        fingerprint: fingerprint, requireAuto: true)
                decisions.append(d.json)
            }
        }
        return (202, "{\"runs\":[\(decisions.joined(separator: ","))],\"resolved\":[\(resolved.map(JSONText.string).joined(separator: ","))]}")
    }

    /// A stable fingerprint when the sender gives none (Grafana may not): the sorted labels.
    static func fingerprint(_ labels: [String: String]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) {
            for b in "\(k)=\(v);".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        return String(h, radix: 16)
    }

    /// `POST /hooks/run`: `{"runbook": NAME, "params": {...}}`.
    public func run(_ body: Data) -> (Int, String) {
        guard let obj = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            return Self.error(400, "body must be a JSON object like {\"runbook\": \"memory-leak\", \"params\": {}}")
        }
        guard let name = obj["runbook"] as? String else { return Self.error(400, "missing \"runbook\"") }
        guard let rb = runbooks.first(where: { $0.name == name }) else {
            return Self.error(400, "no runbook named '\(name)'; there are: \(runbooks.map(\.name).joined(separator: ", "))")
        }
        var params: [String: String] = [:]
        if let p = obj["params"] {
            guard let dict = p as? [String: Any] else { return Self.error(400, "\"params\" must be an object") }
            for (k, v) in dict { params[k] = (v as? String) ?? "\(v)" }
        }
        let d = launcher.launch(rb, given: params, trigger: "api", fingerprint: nil, requireAuto: false)
        return (202, "{\"runs\":[\(d.json)]}")
    }

    static func runJSON(_ r: RunRecord) -> String {
        "{\"id\":\(JSONText.string(r.id)),\"runbook\":\(JSONText.string(r.runbook)),\"trigger\":\(JSONText.string(r.trigger)),"
            + "\"fingerprint\":\(r.fingerprint.map(JSONText.string) ?? "null"),\"outcome\":\(r.outcome.map(JSONText.string) ?? "null"),"
            + "\"started\":\"\(TimelineEvent.timestamp(r.started))\",\"duration_ms\":\(r.durationMs.map(String.init) ?? "null")"
    }

    /// `GET /runs`: newest first.
    public func runs() -> (Int, String) {
        let all = (try? store.runs(limit: 500)) ?? []
        return (200, "[" + all.map { Self.runJSON($0) + "}" }.joined(separator: ",") + "]")
    }

    /// `GET /runs/ID`: the run and its timeline.
    public func run(id: String) -> (Int, String) {
        guard let r = try? store.run(id) else { return Self.error(404, "no run '\(id)'") }
        let events = store.timeline(id)
        return (200, Self.runJSON(r) + ",\"timeline\":[" + events.map { $0.jsonLine() }.joined(separator: ",") + "]}")
    }
}
