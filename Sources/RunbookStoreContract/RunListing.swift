import Foundation

/// A page of the run list (`GET /runs?…`, the console's runs page): filters, newest first, and a
/// keyset cursor, so a page costs the same with ten runs or a hundred thousand in history.
public struct RunListQuery: Sendable, Equatable {
    public enum Status: String, Sendable {
        case running, awaitingApproval = "awaiting-approval", finished
    }

    public var runbook: String?
    public var outcome: String?
    public var status: Status?
    /// Part of the id, runbook, trigger or fingerprint (case-insensitive).
    public var text: String?
    /// Runs strictly older (by `started`, then `id`) than this run: the previous page's last one.
    public var before: String?
    public var limit: Int

    public init(runbook: String? = nil, outcome: String? = nil, status: Status? = nil, text: String? = nil,
                before: String? = nil, limit: Int = 50) {
        self.runbook = runbook
        self.outcome = outcome
        self.status = status
        self.text = text
        self.before = before
        self.limit = limit
    }

    /// `text` as a `LIKE` pattern (its `%`, `_` and `\` taken literally, escaped with `\`).
    public var likePattern: String? {
        guard let t = text, !t.isEmpty else { return nil }
        var out = "%"
        for ch in t.lowercased() {
            if ch == "%" || ch == "_" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out + "%"
    }
}

/// Stores that list runs by `RunListQuery` with indexed queries.
public protocol RunListing: Sendable {
    /// One page of runs, newest first.
    func listRuns(_ query: RunListQuery) throws -> [RunRecord]
}
