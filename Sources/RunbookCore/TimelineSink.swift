import Foundation

/// Receives a run's events in order, on the run queue.
public protocol TimelineSink: Sendable {
    func record(_ event: TimelineEvent)
    /// Several events at once, in order: the events one turn of the run emitted together. A
    /// durable sink writes them in one write (one transaction, one statement), all or none.
    func record(_ events: [TimelineEvent])
}

extension TimelineSink {
    public func record(_ events: [TimelineEvent]) {
        for e in events { record(e) }
    }
}

/// Keeps events in memory (drills, tests).
public final class TimelineCollector: TimelineSink, @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var stored: [TimelineEvent] = []

    public init() {}

    public func record(_ event: TimelineEvent) { lock.withLock { stored.append(event) } }

    public var events: [TimelineEvent] { lock.withLock { stored } }
}

/// Sends each event to several sinks.
public struct TimelineFanOut: TimelineSink {
    public var sinks: [any TimelineSink]
    public init(_ sinks: [any TimelineSink]) { self.sinks = sinks }
    public func record(_ event: TimelineEvent) { for s in sinks { s.record(event) } }
    public func record(_ events: [TimelineEvent]) { for s in sinks { s.record(events) } }
}

/// Replaces secret values with `***` in every text field before passing the event on.
public struct SecretRedactor: TimelineSink {
    public var secrets: [String]
    public var next: any TimelineSink

    public init(secrets: [String], next: any TimelineSink) {
        self.secrets = secrets.filter { $0.count >= 3 }.sorted { $0.count > $1.count }
        self.next = next
    }

    public func record(_ event: TimelineEvent) {
        next.record(Self.redact(event, secrets))
    }

    public func record(_ events: [TimelineEvent]) {
        next.record(events.map { Self.redact($0, secrets) })
    }

    /// The event with every secret value replaced by `***`.
    public static func redact(_ event: TimelineEvent, _ secrets: [String]) -> TimelineEvent {
        let secrets = secrets.filter { $0.count >= 3 }.sorted { $0.count > $1.count }
        guard !secrets.isEmpty else { return event }
        var e = event
        func clean(_ s: String?) -> String? {
            guard var s else { return nil }
            for secret in secrets { s = s.replacingOccurrences(of: secret, with: "***") }
            return s
        }
        e.message = clean(e.message)
        e.stdout = clean(e.stdout)
        e.stderr = clean(e.stderr)
        e.what = clean(e.what)
        e.from = clean(e.from)
        e.to = clean(e.to)
        e.output = e.output?.mapValues { v in if case .string(let s) = v { .string(clean(s)!) } else { v } }
        return e
    }
}
