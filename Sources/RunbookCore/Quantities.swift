import Foundation

/// Parsing of the units a runbook uses: durations (`250ms`, `30s`, `10m`, `1h`),
/// sizes (`512KB`, base 1024) and rates (`1MB/s`, `10MB/min`).
public enum Quantity {
    /// Parses a duration into seconds. Accepts `ms`, `s`, `m`, `h`, `d` and compound forms like `1m30s`.
    public static func duration(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { return nil }
        var total = 0.0
        var rest = Substring(t)
        while !rest.isEmpty {
            let numberEnd = rest.firstIndex { !($0.isNumber || $0 == ".") } ?? rest.endIndex
            guard numberEnd != rest.startIndex, let value = Double(rest[rest.startIndex..<numberEnd]) else { return nil }
            rest = rest[numberEnd...]
            let unitEnd = rest.firstIndex { $0.isNumber || $0 == "." } ?? rest.endIndex
            let unit = rest[rest.startIndex..<unitEnd]
            rest = rest[unitEnd...]
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m", "min": total += value * 60
            case "h": total += value * 3600
            case "d": total += value * 86400
            default: return nil
            }
        }
        return total.isFinite ? total : nil
    }

    /// Parses a size into bytes (base 1024): `B`, `KB`, `MB`, `GB`, `TB` (also `KiB` forms).
    public static func size(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let numberEnd = t.firstIndex { !($0.isNumber || $0 == ".") } ?? t.endIndex
        guard numberEnd != t.startIndex, let value = Double(t[t.startIndex..<numberEnd]) else { return nil }
        let unit = t[numberEnd...].trimmingCharacters(in: .whitespaces).uppercased()
        let factor: Double
        switch unit {
        case "", "B": factor = 1
        case "KB", "KIB", "K": factor = 1024
        case "MB", "MIB", "M": factor = 1024 * 1024
        case "GB", "GIB", "G": factor = 1024 * 1024 * 1024
        case "TB", "TIB", "T": factor = 1024 * 1024 * 1024 * 1024
        default: return nil
        }
        return value * factor
    }

    /// Parses a rate into bytes per second: a size, `/`, and `s`, `min` or `h`.
    public static func rate(_ text: String) -> Double? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bytes = size(String(parts[0])) else { return nil }
        switch parts[1].trimmingCharacters(in: .whitespaces) {
        case "s", "sec": return bytes
        case "m", "min": return bytes / 60
        case "h": return bytes / 3600
        default: return nil
        }
    }

    /// Formats seconds for humans: `250ms`, `1.3s`, `2m05s`.
    public static func formatDuration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 {
            let tenths = (seconds * 10).rounded() / 10
            return tenths == tenths.rounded() ? "\(Int(tenths))s" : "\(tenths)s"
        }
        let total = Int(seconds.rounded())
        let (m, s) = (total / 60, total % 60)
        if m < 60 { return s == 0 ? "\(m)m" : "\(m)m\(s < 10 ? "0" : "")\(s)s" }
        return "\(m / 60)h\(m % 60 < 10 ? "0" : "")\(m % 60)m"
    }

    /// Formats a byte count base 1024 with one decimal: `2.4 MB`.
    public static func formatSize(_ bytes: Double) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = bytes, i = 0
        while abs(v) >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(Int(v)) B" : "\((v * 10).rounded() / 10) \(units[i])"
    }
}
