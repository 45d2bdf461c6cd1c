// libFuzzer target for the parsers that take outside input: the Alertmanager payload decoder, the
// template parser and the expression parser (and what a decoded alert feeds: trigger matching and
// param rendering). Built and run by Tests/Fuzz/run.sh; not part of the SwiftPM build.
import Foundation
import RunbookCore

/// A trigger that renders labels into params, as bundled runbooks do.
let runbook: Runbook? = try? RunbookLoader.load(text: """
    runbook: fuzz
    params:
      service: { default: shop, pattern: "^[a-z0-9-]+$" }
      instance: { default: x }
    triggers:
      - alert: { alertname: "=~App.*", severity: "!~info" }
        params: { service: "{{ alert.labels.service }}", instance: "{{ alert.labels.instance }}:{{ alert.annotations.port }}" }
    steps:
      - id: a
        phase: detect
        check: { command: ["true"] }
    """, file: "fuzz.yaml")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // The first byte picks the parser, so one corpus serves all three.
    guard let selector = bytes.first else { return 0 }
    let rest = bytes.dropFirst()
    let text = String(decoding: rest, as: UTF8.self)
    switch selector % 3 {
    case 0:
        if let payload = try? AlertPayload.decode(Data(rest)), let runbook {
            for alert in payload.alerts {
                if let trigger = runbook.trigger(for: alert) {
                    _ = try? RunInputs.resolve(runbook, given: trigger.params(from: alert))
                }
            }
        }
    case 1:
        if let t = try? Template(parsing: text) {
            _ = t.render { _ in .string("v") }
        }
    default:
        if let e = try? Expression.parse(text) {
            _ = e.evaluate { _ in .number(1) }
        }
    }
    return 0
}
