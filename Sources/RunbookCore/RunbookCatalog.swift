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

    /// Loads every runbook; problems come back per file rather than stopping the scan. Two files
    /// with one runbook name are an error naming both; neither is returned (no one can tell which
    /// an alert or `runbook run` would mean).
    public func loadAll() throws -> (runbooks: [Runbook], errors: [LoadError]) {
        var runbooks: [Runbook] = [], errors: [LoadError] = []
        for result in RunbookLoader.load(paths: try files()) {
            do { runbooks.append(try result.get()) } catch let e as LoadError { errors.append(e) }
        }
        let byName = Dictionary(grouping: runbooks, by: \.name)
        for rb in runbooks {
            guard let same = byName[rb.name], same.count > 1, same[0].file != rb.file else { continue }
            errors.append(LoadError([Diagnostic(SourceLocation(file: rb.file, line: 1, column: 1),
                                                Self.duplicateMarker + " '\(rb.name)' is already used by \(same[0].file): names must be unique; rename one")]))
        }
        return (runbooks.filter { byName[$0.name]?.count == 1 }, errors)
    }

    static let duplicateMarker = "runbook name"

    /// Whether a load error from `loadAll` is a name that two files declare.
    public static func isDuplicateName(_ e: LoadError) -> Bool {
        e.diagnostics.contains { $0.message.hasPrefix(duplicateMarker) && $0.message.contains("names must be unique") }
    }

    /// Finds the runbook named `name` (its `runbook:` key, or the file name).
    /// - Throws: the file's `LoadError` when the file of that name is invalid, `CatalogError.duplicate`
    ///   naming both files when two declare the name, else `CatalogError.notFound` listing the names there are.
    public func runbook(named name: String) throws -> Runbook {
        let files = try files()
        let base = { (f: String) in ((f as NSString).lastPathComponent as NSString).deletingPathExtension }
        var found: [Runbook] = []
        var names: [String] = []
        var brokenNamesake: LoadError?
        for (f, result) in zip(files, RunbookLoader.load(paths: files)) {
            do {
                let rb = try result.get()
                if rb.name == name { found.append(rb) }
                names.append(rb.name)
            } catch let e as LoadError {
                if base(f) == name { brokenNamesake = e }
                names.append(base(f))
            }
        }
        if found.count > 1 { throw CatalogError.duplicate(name: name, files: found.map(\.file)) }
        if let rb = found.first { return rb }
        if let brokenNamesake { throw brokenNamesake }
        throw CatalogError.notFound(name: name, directory: directory, known: names)
    }
}

/// Runbook discovery failures.
public enum CatalogError: Error, CustomStringConvertible {
    case noFolder(String)
    case notFound(name: String, directory: String, known: [String])
    case duplicate(name: String, files: [String])

    public var description: String {
        switch self {
        case .noFolder(let d): "runbooks folder '\(d)' does not exist: pass --runbooks DIR or set RUNBOOK_PATH"
        case .notFound(let n, let d, let known):
            "no runbook named '\(n)' in \(d)\(Suggest.hint(for: n, among: known)); there are: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
        case .duplicate(let n, let files):
            "runbook name '\(n)' is declared by \(files.count) files: \(files.joined(separator: " and ")); names must be unique: rename one"
        }
    }
}
