import Foundation
import RunbookCore

/// The `metric_trend` check: samples every `every` over `window`, fits a slope. A leak grows
/// steadily (high r²); a one-off spike does not, so `min_slope` also wants a good fit.
enum MetricTrendCheck {
    static func run(_ c: MetricTrendSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let url = request.render(c.url)
        let metric = c.metric.map(request.render)
        let query = c.query.map(request.render)
        let labels = Dictionary(c.labels.map { ($0.name, request.render($0.value)) }, uniquingKeysWith: { a, _ in a })
        let window = c.window
        let every = max(0.05, c.every)
        let minSlope = c.minSlope, maxSlope = c.maxSlope
        let minR2 = c.minR2
        let count = max(2, Int((window / every).rounded(.down)) + 1)
        let op = StepOperation(completion: completion)
        let sampler = TrendSampler(op: op, count: count)
        let scheduler = request.scheduler
        let sampleTimeout = min(every, 5)

        @Sendable func take(_ i: Int) {
            guard !op.isCancelled else { return }
            let at = Date()
            let done: @Sendable (Double?, String?) -> Void = { value, problem in
                sampler.record(i: i, t: at, value: value, problem: problem)
                if let hopeless = sampler.hopeless(needed: max(2, count / 2)) {
                    // A dead endpoint is said at once, not after the whole window.
                    op.finish(StepResult(.errored, hopeless))
                } else if i + 1 < count {
                    let next = max(0, every - Date().timeIntervalSince(at))
                    op.track(scheduler.schedule(after: next) { take(i + 1) })
                } else {
                    op.finish(evaluate(sampler.points, problems: sampler.problems, count: count, minSlope: minSlope, maxSlope: maxSlope, minR2: minR2))
                }
            }
            if let query {
                op.track(PrometheusCheck.query(server: url, query: query, timeout: sampleTimeout) { r in
                    switch r {
                    case .success(let v): done(v.first, v.isEmpty ? "no data" : nil)
                    case .failure(let f): done(nil, f.message)
                    }
                })
            } else {
                op.track(HTTPProbe.send(url: url, timeout: sampleTimeout) { r in
                    switch r {
                    case .success(let a):
                        let v = MetricsText.value(of: metric ?? "", labels: labels, in: a.body)
                        done(v, v == nil ? "no sample of \(metric ?? "?") at \(url)" : nil)
                    case .failure(let f): done(nil, f.message)
                    }
                })
            }
        }
        take(0)
        return op
    }

    static func evaluate(_ points: [(t: Double, v: Double)], problems: [String], count: Int, minSlope: Double?, maxSlope: Double?, minR2: Double) -> StepResult {
        guard points.count >= max(2, count / 2), let fit = TrendFit.fit(points) else {
            return StepResult(.errored, "only \(points.count) of \(count) samples: \(problems.last ?? "no data")")
        }
        let output: [String: Value] = [
            "slope_bytes_per_s": .number(fit.slope.rounded()), "r2": .number((fit.r2 * 1000).rounded() / 1000),
            "samples": .number(Double(fit.samples)), "first": .number(points.first!.v), "last": .number(points.last!.v),
        ]
        let text = "slope \(Quantity.formatSize(fit.slope))/s over \(fit.samples) samples (r²=\(String(format: "%.2f", fit.r2)))"
        var problemsFound: [String] = []
        if let minSlope {
            if fit.slope < minSlope { problemsFound.append("below \(Quantity.formatSize(minSlope))/s") }
            else if fit.r2 < minR2 { problemsFound.append("not a steady trend (r² under \(minR2)): a spike, not growth") }
        }
        if let maxSlope, fit.slope > maxSlope { problemsFound.append("above \(Quantity.formatSize(maxSlope))/s") }
        return StepResult(problemsFound.isEmpty ? .passed : .failed, problemsFound.isEmpty ? text : text + ": " + problemsFound.joined(separator: "; "), output: output)
    }
}

/// Samples collected so far; written from whichever thread a probe answers on.
final class TrendSampler: @unchecked Sendable {
    // `collected` and `errors` are guarded by `lock`.
    private let lock = NSLock()
    private var collected: [(t: Double, v: Double)] = []
    private var errors: [String] = []
    private var origin: Date?
    let op: StepOperation
    let count: Int

    init(op: StepOperation, count: Int) {
        self.op = op
        self.count = count
    }

    func record(i: Int, t: Date, value: Double?, problem: String?) {
        lock.withLock {
            if origin == nil { origin = t }
            if let value { collected.append((t.timeIntervalSince(origin!), value)) }
            if let problem { errors.append(problem) }
        }
    }

    /// Why the check can no longer pass, once that is certain: too many samples failed to leave
    /// `needed` good ones, or the first three all failed (nothing answers; a retry may try again).
    func hopeless(needed: Int) -> String? {
        lock.withLock {
            let failed = errors.count
            if collected.isEmpty, failed >= 3 { return "the first \(failed) samples failed: \(errors.last ?? "")" }
            if failed > count - needed { return "only \(collected.count) of \(count) samples can be taken (\(failed) failed): \(errors.last ?? "")" }
            return nil
        }
    }

    var points: [(t: Double, v: Double)] { lock.withLock { collected } }
    var problems: [String] { lock.withLock { errors } }
}
