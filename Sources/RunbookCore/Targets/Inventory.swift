import Foundation

/// An inventory file read into groups of host names (names as written: ssh aliases, not addresses).
///
/// Three forms (issue 22, decision 4): a plain list (one host a line, `#` comments); Ansible INI
/// (a file with `[group]` headers, `[group:children]`, `[group:vars]` skipped, ranges like
/// `web-[01:20]`); Ansible YAML (`.yaml`/`.yml`: `all: {hosts: {...}, children: {...}}`).
public struct Inventory: Sendable {
    /// Hosts of each group, children included, in file order; `all` holds every host.
    public var groups: [String: [String]]

    /// Every host in the file.
    public var all: [String] { groups["all"] ?? [] }

    /// The hosts of `group` (nil: every host); nil when the file has no such group.
    public func hosts(group: String?) -> [String]? {
        guard let group else { return all }
        return groups[group]
    }

    /// Reads `path`.
    /// - Throws: `InventoryError` naming the file and line.
    public static func load(path: String) throws(InventoryError) -> Inventory {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InventoryError(path: path, line: nil, message: "cannot read the inventory file (missing, or no permission)")
        }
        guard data.count <= 4 << 20, let text = String(data: data, encoding: .utf8) else {
            throw InventoryError(path: path, line: nil, message: "not a UTF-8 text file of at most 4 MiB")
        }
        if path.hasSuffix(".yaml") || path.hasSuffix(".yml") { return try yaml(text, path: path) }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        }
        let isINI = lines.contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("[") }
        return isINI ? try ini(lines, path: path) : try plain(lines, path: path)
    }

    static func plain(_ lines: [Substring], path: String) throws(InventoryError) -> Inventory {
        var hosts: [String] = []
        for (i, line) in lines.enumerated() {
            guard let first = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).first else { continue }
            hosts += try expand(String(first), path: path, line: i + 1)
        }
        return Inventory(groups: ["all": unique(hosts), "ungrouped": unique(hosts)])
    }

    static func ini(_ lines: [Substring], path: String) throws(InventoryError) -> Inventory {
        var direct: [String: [String]] = [:]
        var children: [String: [String]] = [:]
        var order: [String] = []
        var section = "ungrouped"
        var kind = ""
        for (i, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(.init(charactersIn: "\r")))
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw InventoryError(path: path, line: i + 1, message: "a group header is [NAME], [NAME:children] or [NAME:vars]")
                }
                let name = String(line.dropFirst().dropLast())
                let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
                section = parts[0]
                kind = parts.count > 1 ? parts[1] : ""
                if !order.contains(section) { order.append(section) }
                continue
            }
            guard let first = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first else { continue }
            switch kind {
            case "children": children[section, default: []].append(String(first))
            case "vars": continue
            case "": direct[section, default: []] += try expand(String(first), path: path, line: i + 1)
            default: throw InventoryError(path: path, line: i + 1, message: "unknown section kind ':\(kind)' (children or vars)")
            }
        }
        return Inventory(groups: flatten(direct: direct, children: children))
    }

    static func yaml(_ text: String, path: String) throws(InventoryError) -> Inventory {
        let root: YAMLNode
        do { root = try YAMLReader.parse(text, file: path) } catch {
            throw InventoryError(path: path, line: nil, message: "not YAML: \(error)")
        }
        var direct: [String: [String]] = [:]
        var children: [String: [String]] = [:]
        func group(_ name: String, _ node: YAMLNode) throws(InventoryError) {
            if direct[name] == nil { direct[name] = [] }
            for e in node["hosts"]?.entries ?? [] {
                direct[name, default: []] += try expand(e.key, path: path, line: e.keyNode.location.line)
            }
            for e in node["children"]?.entries ?? [] {
                children[name, default: []].append(e.key)
                try group(e.key, e.value)
            }
        }
        guard let top = root.entries else {
            if root.isNull { return Inventory(groups: ["all": []]) }
            throw InventoryError(path: path, line: root.location.line, message: "an Ansible YAML inventory is a mapping of groups, like all: { hosts: { web-1: } }")
        }
        for e in top { try group(e.key, e.value) }
        return Inventory(groups: flatten(direct: direct, children: children))
    }

    /// Each group's hosts with its children's, and `all` with every host.
    static func flatten(direct: [String: [String]], children: [String: [String]]) -> [String: [String]] {
        var out: [String: [String]] = [:]
        func members(_ g: String, _ seen: Set<String>) -> [String] {
            if let done = out[g] { return done }
            guard !seen.contains(g) else { return [] }
            var list = direct[g] ?? []
            for c in children[g] ?? [] { list += members(c, seen.union([g])) }
            return unique(list)
        }
        let names = Set(direct.keys).union(children.keys).union(children.values.flatMap { $0 })
        for g in names { out[g] = members(g, []) }
        var everyone: [String] = []
        for g in names.sorted() { everyone += out[g] ?? [] }
        // `all` lists hosts in file order when it is declared; else the union of every group.
        if out["all"].map({ Set($0) }) != Set(everyone) { out["all"] = unique((out["all"] ?? []) + everyone) }
        return out
    }

    /// `web-[01:03]` is web-01, web-02, web-03 (Ansible's numeric ranges, zero padding kept).
    static func expand(_ host: String, path: String, line: Int) throws(InventoryError) -> [String] {
        guard let open = host.firstIndex(of: "["), let close = host[open...].firstIndex(of: "]") else { return [host] }
        let inner = host[host.index(after: open)..<close].split(separator: ":", omittingEmptySubsequences: false)
        guard inner.count == 2, let lo = Int(inner[0]), let hi = Int(inner[1]), lo <= hi, hi - lo < 100_000 else {
            // Not a range (an IPv6 literal, say): the name as written.
            return [host]
        }
        let width = inner[0].count
        let prefix = host[..<open], suffix = String(host[host.index(after: close)...])
        var out: [String] = []
        for n in lo...hi {
            let digits = String(n)
            out += try expand(String(prefix) + String(repeating: "0", count: max(0, width - digits.count)) + digits + suffix, path: path, line: line)
        }
        return out
    }

    static func unique(_ list: [String]) -> [String] {
        var seen = Set<String>()
        return list.filter { seen.insert($0).inserted }
    }
}

/// An inventory file that cannot be read.
public struct InventoryError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String
    public var description: String { "\(path)\(line.map { ":\($0)" } ?? ""): \(message)" }
}
