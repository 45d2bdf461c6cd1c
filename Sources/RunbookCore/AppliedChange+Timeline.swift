/// A change on the timeline: `change.applied` carries the change's fields, and a flag file's key
/// and field, so that a resumed or taken-over run rebuilds the same undo from them.
extension TimelineEvent {
    /// Sets what, from, to, location and, for a flag-file change, the flag's key and field.
    public mutating func record(_ change: AppliedChange) {
        what = change.what
        from = change.from
        to = change.to
        location = change.location
        target = change.target
        if case .flagFile(_, let key, let field, _)? = change.automaticUndo {
            flagKey = key
            flagField = field
        }
    }
}

extension AppliedChange {
    /// The change a `change.applied` event records. A flag-file change gets its automatic undo
    /// back (put `from` back at `flag_key`'s `flag_field` in `location`); nothing parses `what`.
    /// - Parameter fallbackWhat: the name used when the event has no `what`.
    public init(restoring e: TimelineEvent, fallbackWhat: String) {
        self.init(what: e.what ?? fallbackWhat, from: e.from ?? "", to: e.to ?? "", location: e.location)
        target = e.target
        if let path = e.location, let key = e.flagKey, let field = e.flagField {
            automaticUndo = .flagFile(path: path, key: key, field: field, previous: JSONText.string(e.from ?? ""))
        }
    }
}
