/// Reads one checked mapping of an action's settings by typed keys: the value the grammar pass
/// converted (`Config`) and, for located errors, the YAML node it came from.
struct FieldReader<Key: RawRepresentable> where Key.RawValue == String {
    let node: YAMLNode
    let config: Config
    /// How messages name the mapping: `step 'a' check.tcp`.
    let context: String

    func value(_ key: Key) -> Config? { config[key.rawValue] }
    /// The key's YAML node (for its location and raw scalar); nil when absent.
    subscript(key: Key) -> YAMLNode? { node[key.rawValue] }
    func has(_ key: Key) -> Bool { value(key) != nil }
    func template(_ key: Key) -> Template? { value(key)?.template }
    func number(_ key: Key) -> Double? { value(key)?.number }
    func bool(_ key: Key) -> Bool? { value(key)?.bool }
    /// A choice's word (`GET`, `ENABLED`).
    func word(_ key: Key) -> String? { value(key)?.template?.source }

    /// A mapping of names to templates (headers, env, labels), in file order.
    func named(_ key: Key) -> [NamedTemplate] {
        (value(key)?.entries ?? []).compactMap { e in e.value.template.map { NamedTemplate(name: e.key, value: $0) } }
    }

    /// Where the key's value starts; the mapping itself when the key is absent.
    func location(_ key: Key) -> SourceLocation { node[key.rawValue]?.location ?? node.location }

    /// `step 'a' check.tcp.port`.
    func name(_ key: Key) -> String { "\(context).\(key.rawValue)" }

    /// The reader of a nested mapping.
    func child<Inner: RawRepresentable>(_ key: Key, _ inner: Inner.Type = Inner.self) -> FieldReader<Inner>? where Inner.RawValue == String {
        guard let c = value(key) else { return nil }
        return FieldReader<Inner>(node: node[key.rawValue] ?? node, config: c, context: name(key))
    }
}
