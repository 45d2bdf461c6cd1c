import Foundation
import RunbookCore

/// A least-squares line through (time, value) samples.
public struct TrendFit: Sendable, Equatable {
    /// Units per second.
    public var slope: Double
    /// Coefficient of determination, 0...1 (1 for a perfect line; 0 when the values are flat).
    public var r2: Double
    public var samples: Int

    /// Fits `points`; needs at least two distinct times.
    public static func fit(_ points: [(t: Double, v: Double)]) -> TrendFit? {
        let n = Double(points.count)
        guard points.count >= 2 else { return nil }
        let mt = points.reduce(0) { $0 + $1.t } / n
        let mv = points.reduce(0) { $0 + $1.v } / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for p in points {
            sxy += (p.t - mt) * (p.v - mv)
            sxx += (p.t - mt) * (p.t - mt)
            syy += (p.v - mv) * (p.v - mv)
        }
        guard sxx > 0 else { return nil }
        let slope = sxy / sxx
        let r2 = syy == 0 ? 0 : (sxy * sxy) / (sxx * syy)
        return TrendFit(slope: slope, r2: r2, samples: points.count)
    }
}
