import Foundation

/// An Alertmanager webhook payload (version 4; Grafana sends the same shape).
public struct AlertPayload: Sendable, Decodable {
    public var version: String?
    public var groupKey: String?
    public var truncatedAlerts: Int?
    public var status: String?
    public var receiver: String?
    public var externalURL: String?
    public var alerts: [Alert]

    /// One alert of the group.
    public struct Alert: Sendable, Decodable {
        public var status: String
        public var labels: [String: String]
        public var annotations: [String: String]?
        public var startsAt: String?
        public var endsAt: String?
        public var generatorURL: String?
        public var fingerprint: String?

        public var isFiring: Bool { status == "firing" }
    }

    /// Decodes a payload: a well-formed one by `AlertPayloadScanner` (a storm of thousands of alerts
    /// costs a fraction of what `JSONDecoder` takes), anything else by `JSONDecoder`, which says
    /// what is wrong. Both give the same payload.
    /// - Throws: `PayloadError` saying what is missing or malformed.
    public static func decode(_ data: Data) throws -> AlertPayload {
        do {
            var payload = try AlertPayloadScanner.payload(data) ?? JSONDecoder().decode(AlertPayload.self, from: data)
            // Alertmanager sends the zero time (0001-01-01T00:00:00Z) for "no end yet": that is no end.
            for i in payload.alerts.indices where payload.alerts[i].endsAt?.hasPrefix("0001-01-01") == true {
                payload.alerts[i].endsAt = nil
            }
            return payload
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw PayloadError(message: "missing field '\(codingPathText(ctx.codingPath + [key]))'")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw PayloadError(message: "wrong type at '\(codingPathText(ctx.codingPath))'")
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw PayloadError(message: "null at '\(codingPathText(ctx.codingPath))'")
        } catch {
            throw PayloadError(message: "not an Alertmanager webhook payload (JSON with an alerts list)")
        }
    }
}

/// A coding path as a reader writes it: `alerts[0].status`.
func codingPathText(_ keys: [any CodingKey]) -> String {
    var out = ""
    for k in keys {
        if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
    }
    return out
}

/// A payload that cannot be used.
public struct PayloadError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension Trigger {
    /// True when every matcher holds for the labels (a missing label is the empty string, as in Alertmanager).
    public func matches(_ labels: [String: String]) -> Bool {
        matchers.allSatisfy { m in
            let v = labels[m.label] ?? ""
            switch m.op {
            case .equal: return v == m.value
            case .notEqual: return v != m.value
            case .matches: return RunbookBuilder.matches(m.value, v)
            case .notMatches: return !RunbookBuilder.matches(m.value, v)
            }
        }
    }

    /// The param values this trigger takes from an alert.
    public func params(from alert: AlertPayload.Alert) -> [String: String] {
        var out: [String: String] = [:]
        for (name, t) in params {
            out[name] = t.render { r in
                switch r {
                case .alertLabel(let l): alert.labels[l].map(Value.string)
                case .alertAnnotation(let a): alert.annotations?[a].map(Value.string)
                default: nil
                }
            }
        }
        return out
    }
}

extension Runbook {
    /// The first trigger that matches the alert, if any.
    public func trigger(for alert: AlertPayload.Alert) -> Trigger? {
        triggers.first { $0.matches(alert.labels) }
    }
}
