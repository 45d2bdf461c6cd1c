import Foundation

/// Finds runbooks in a folder: the top-level `*.yaml`/`*.yml` files (drills live in `drills/`).
public struct RunbookCatalog: Sendable {
    /// The folder searched.
    public let directory: String

    /// Picks the folder: an explicit one, else `$RUNBOOK_PATH`, else `./runbooks`.
    public init(directory: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.directory = directory ?? environment["RUNBOOK_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? "runbooks"
    }

    /// Runbook files of the folder, sorted.
    public func files() throws -> [String] {
        try Self.yamlFiles(in: directory)
    }

    /// `*.yaml` and `*.yml` files directly in a folder, sorted.
    public static func yamlFiles(in directory: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw CatalogError.noFolder(directory)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
            .map { directory.hasSuffix("/") ? directory + $0 : directory + "/" + $0 }
    }

    /// Loads every runbook; problems come back per file rather than stopping the scan.
    public func loadAll() throws -> (runbooks: [Runbook], errors: [LoadError]) {
        var runbooks: [Runbook] = [], errors: [LoadError] = []
        for f in try files() {
            do { runbooks.append(try RunbookLoader.load(path: f)) } catch let e as LoadError { errors.append(e) }
        }
        return (runbooks, errors)
    }

    /// Finds the runbook named `name` (its `runbook:` key, or the file name).
    /// - Throws: `CatalogError.notFound` listing the names there are.
    public func runbook(named name: String) throws -> Runbook {
        let files = try files()
        let base = { (f: String) in ((f as NSString).lastPathComponent as NSString).deletingPathExtension }
        if let f = files.first(where: { base($0) == name }) {
            let rb = try RunbookLoader.load(path: f)
            if rb.name == name { return rb }
        }
        var names: [String] = []
        for f in files {
            guard let rb = try? RunbookLoader.load(path: f) else { names.append(base(f)); continue }
            if rb.name == name { return rb }
            names.append(rb.name)
        }
        throw CatalogError.notFound(name: name, directory: directory, known: names)
    }
}

/// Runbook discovery failures.
public enum CatalogError: Error, CustomStringConvertible {
    case noFolder(String)
    case notFound(name: String, directory: String, known: [String])

    public var description: String {
        switch self {
        case .noFolder(let d): "runbooks folder '\(d)' does not exist: pass --runbooks DIR or set RUNBOOK_PATH"
        case .notFound(let n, let d, let known):
            "no runbook named '\(n)' in \(d)\(Suggest.hint(for: n, among: known)); there are: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
        }
    }
}
