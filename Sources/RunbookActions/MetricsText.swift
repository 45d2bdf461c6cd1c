import Foundation
import RunbookCore

/// Finds a metric's value in Prometheus text exposition format.
public enum MetricsText {
    /// The first sample of `metric` whose labels include `labels`.
    public static func value(of metric: String, labels: [String: String] = [:], in text: String) -> Double? {
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix(metric), !line.hasPrefix("#") else { continue }
            let rest = line.dropFirst(metric.count)
            var sampleLabels: [String: String] = [:]
            var valuePart: Substring
            if rest.hasPrefix("{") {
                guard let close = rest.firstIndex(of: "}") else { continue }
                for pair in rest[rest.index(after: rest.startIndex)..<close].split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2 { sampleLabels[kv[0].trimmingCharacters(in: .whitespaces)] = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
                }
                valuePart = rest[rest.index(after: close)...]
            } else if rest.first == " " || rest.first == "\t" {
                valuePart = rest
            } else {
                continue
            }
            guard labels.allSatisfy({ sampleLabels[$0.key] == $0.value }) else { continue }
            if let token = valuePart.split(separator: " ").first, let v = Double(token) { return v }
        }
        return nil
    }
}
