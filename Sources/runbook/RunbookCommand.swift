import ArgumentParser
import Foundation
import RunbookCore
import RunbookStore
import RunbookStoreContract
import RunbookPostgres

@main
struct RunbookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runbook",
        abstract: "Incident-response runbook automation: detect, diagnose, mitigate, verify.",
        discussion: """
            Runbooks are YAML files in a runbooks folder (--runbooks DIR, else $RUNBOOK_PATH, else ./runbooks).
            Run state lives in --state-dir (else $RUNBOOK_STATE_DIR, else $XDG_STATE_HOME/runbook, else ~/.local/state/runbook).
            """,
        version: RunbookVersion.current,
        subcommands: [
            ListCommand.self, ValidateCommand.self, ShowCommand.self, RunCommand.self, DrillCommand.self, TestCommand.self, HistoryCommand.self, TimelineCommand.self, PostmortemCommand.self, ServeCommand.self, SchemaCommand.self, ReferenceCommand.self, FreezeCommand.self, ApproveCommand.self, CancelCommand.self,
        ]
    )

    /// Parses and runs a command. `main` is synchronous, so a command that blocks (every one but
    /// `serve`: on the store, on its run) runs on the main thread, never on Swift concurrency's
    /// cooperative pool, and a command that starts no task never starts that pool at all. `serve`
    /// runs as a task while the main thread waits for it. A usage error (an unknown flag, a missing
    /// argument) exits 2, as every command's `--help` says, not ArgumentParser's 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            if let asyncCommand = command as? any AsyncParsableCommand {
                try AsyncCommand(asyncCommand).runWaiting()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                StandardStreams.err(fullMessage(for: error) + "\n")
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// An async command (`serve`) run as a task, from the synchronous main thread.
final class AsyncCommand: @unchecked Sendable {
    // Touched by the task only, while the main thread waits.
    private var command: any AsyncParsableCommand
    private var failure: (any Error)?

    init(_ command: any AsyncParsableCommand) { self.command = command }

    /// Runs the command as a task and waits on the main thread (never a thread of the pool).
    func runWaiting() throws {
        // Only `main` calls this, on the main thread: never a thread of the cooperative pool.
        StoreThreads.assertNotInTask("waiting for an async command")
        let done = DispatchSemaphore(value: 0)
        Task.detached { [self] in
            do { try await command.run() } catch { failure = error }
            done.signal()
        }
        done.wait()
        if let failure { throw failure }
    }
}

/// Options every command that reads runbooks shares.
struct RunbookOptions: ParsableArguments {
    @Option(name: .long, help: "Folder of runbooks (default: $RUNBOOK_PATH, else ./runbooks).")
    var runbooks: String?

    var catalog: RunbookCatalog { RunbookCatalog(directory: runbooks) }
}

/// Options for commands that read or write run state.
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: "State folder (default: $RUNBOOK_STATE_DIR, else $XDG_STATE_HOME/runbook, else ~/.local/state/runbook).")
    var stateDir: String?

    @Option(name: .long, help: "Where runs are kept: sqlite:PATH (default: the state folder's SQLite file) or postgres://USER[:PASSWORD]@HOST[:PORT]/DB, shared by replicas (default: $RUNBOOK_DATABASE_URL).")
    var database: String?

    /// The database URL given, if any (`--database`, else `$RUNBOOK_DATABASE_URL`).
    var databaseURL: String? {
        if let database, !database.isEmpty { return database }
        if let d = ProcessInfo.processInfo.environment["RUNBOOK_DATABASE_URL"], !d.isEmpty { return d }
        return nil
    }

    /// True when neither --state-dir nor $RUNBOOK_STATE_DIR chose the folder.
    var isDefault: Bool {
        stateDir == nil && (ProcessInfo.processInfo.environment["RUNBOOK_STATE_DIR"] ?? "").isEmpty
    }

    var directory: String {
        if let stateDir { return stateDir }
        let env = ProcessInfo.processInfo.environment
        if let d = env["RUNBOOK_STATE_DIR"], !d.isEmpty { return d }
        if let x = env["XDG_STATE_HOME"], !x.isEmpty { return x + "/runbook" }
        return (env["HOME"] ?? NSHomeDirectory()) + "/.local/state/runbook"
    }
}

extension StateOptions {
    /// Opens the store, saying in one line (path and errno) when it cannot, and exiting 2. Runs
    /// whose owner died are finalised first, so what is shown is never a dead run still "running".
    func openStore(owner kind: String = "cli") throws -> any RunDatabase {
        let store: any RunDatabase
        if let url = databaseURL, url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            do { store = try PostgresRunStore(url: url, owner: "\(kind):\(ProcessInfo.processInfo.hostName):\(getpid())") } catch {
                printError("error: \(error)")
                throw ExitCode(2)
            }
        } else {
            var folder = directory
            if let url = databaseURL {
                guard url.hasPrefix("sqlite:") else {
                    printError("error: --database takes sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB, got '\(url)'")
                    throw ExitCode(2)
                }
                // sqlite:PATH names the SQLite file (or its folder); its timelines live beside it.
                let path = String(url.dropFirst("sqlite:".count))
                folder = path.hasSuffix(".sqlite") ? ((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent) : path
            }
            do { store = try SQLiteRunStore(directory: folder) } catch {
                printError("error: \(StoreError(path: folder, error))")
                throw ExitCode(2)
            }
        }
        do {
            let dead = try store.finalizeDeadRuns(now: Date())
            if !dead.isEmpty { printError("note: marked \(dead.count) run(s) whose process died as interrupted: \(dead.joined(separator: ", "))") }
        } catch {
            printError("warning: could not finalise dead runs: \(StoreError(path: store.location, error))")
        }
        return store
    }

    /// Opens the store and reads a run's timeline; exits 2 naming the folder when there is no such run.
    /// Damaged lines are reported and skipped; the rest of the run is shown.
    func timeline(of given: String) throws -> (any RunDatabase, [TimelineEvent]) {
        let store = try openStore()
        let runID: String
        do { runID = try store.resolveRunID(given) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let (events, damaged) = store.timelineReport(runID)
        if !damaged.isEmpty {
            printError("warning: run \(runID) in \(store.location): skipped \(damaged.count) damaged line\(damaged.count == 1 ? "" : "s") (\(damaged.prefix(10).map(String.init).joined(separator: ", ")))")
        }
        guard !events.isEmpty else {
            printError("error: no run '\(runID)' in \(store.location): see runbook history")
            throw ExitCode(2)
        }
        return (store, events)
    }
}

/// Writes to standard error.
func printError(_ text: String) {
    StandardStreams.err(Escape.text(text, keepNewlines: true) + "\n")
}

/// Loads a runbook by name, printing located errors and exiting 2 when it is invalid or missing.
func loadRunbook(_ name: String, _ options: RunbookOptions) throws -> Runbook {
    do {
        return try options.catalog.runbook(named: name)
    } catch let e as LoadError {
        printError(e.description)
        throw ExitCode(2)
    } catch let e as CatalogError {
        printError("error: \(e)")
        throw ExitCode(2)
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List runbooks: name, title, severity, triggers, steps.")
    @OptionGroup var options: RunbookOptions

    func run() throws {
        let (runbooks, errors): ([Runbook], [LoadError])
        do { (runbooks, errors) = try options.catalog.loadAll() } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let rows = runbooks.map { rb -> [String] in
            let triggers = rb.triggers.map { t in
                t.matchers.map { "\($0.label)\($0.op == .equal ? "=" : $0.op.rawValue)\($0.value)" }.joined(separator: ",")
            }.joined(separator: "; ")
            return [rb.name, rb.title, rb.severity, triggers.isEmpty ? "-" : triggers, "\(rb.steps.count)"]
        }
        print(Table.render(header: ["NAME", "TITLE", "SEVERITY", "TRIGGERS", "STEPS"], rows: rows), terminator: "")
        for e in errors { printError(e.description) }
        if !errors.isEmpty { throw ExitCode(2) }
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check runbook files or folders; exit 0 when all are valid, 2 otherwise.")
    @Argument(help: "Files or folders (default: the runbooks folder).") var paths: [String] = []
    @OptionGroup var options: RunbookOptions

    func run() throws {
        var files: [String] = []
        var problems = 0
        for p in paths.isEmpty ? [options.catalog.directory] : paths {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue {
                files += (try? RunbookCatalog.yamlFiles(in: p)) ?? []
            } else {
                files.append(p)
            }
        }
        var names: [String: String] = [:]
        for (f, result) in zip(files, RunbookLoader.load(paths: files)) {
            do {
                let rb = try result.get()
                for w in rb.warnings { printError(w.description) }
                if let other = names[rb.name] {
                    printError("\(f):1:1: error: runbook name '\(rb.name)' is already used by \(other)")
                    problems += 1
                } else {
                    names[rb.name] = f
                }
            } catch let e as LoadError {
                printError(e.description)
                problems += e.diagnostics.count
            }
        }
        if files.isEmpty { printError("error: no runbook files found in \(paths.isEmpty ? [options.catalog.directory] : paths)"); throw ExitCode(2) }
        if problems > 0 {
            printError("\(problems) error\(problems == 1 ? "" : "s") in \(files.count) file\(files.count == 1 ? "" : "s")")
            throw ExitCode(2)
        }
        print("\(files.count) runbook\(files.count == 1 ? "" : "s") valid")
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a runbook's step graph in phases.")
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, mermaid, dot }
    @Argument(help: "Runbook name.", completion: Completions.runbookNames) var name: String
    @Option(help: "text, mermaid or dot.") var format: Format = .text
    @OptionGroup var options: RunbookOptions

    func run() throws {
        let graph = GraphRenderer(try loadRunbook(name, options))
        switch format {
        case .text: print(graph.text(), terminator: "")
        case .mermaid: print(graph.mermaid(), terminator: "")
        case .dot: print(graph.dot(), terminator: "")
        }
    }
}

struct FreezeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "freeze", abstract: "Print the change freeze windows in force now and the next to open.")
    @Option(help: "Freeze file (a YAML list of windows).") var freeze: String

    func run() throws {
        let windows: [FreezeWindow]
        do { windows = try FreezeFile.load(path: freeze) } catch let e as LoadError {
            printError(e.description)
            throw ExitCode(2)
        }
        let now = Date()
        let active = windows.filter { $0.contains(now) }
        if active.isEmpty { StandardStreams.out("in force now: none\n") }
        for w in active { StandardStreams.out("in force now: \(w.description): \(w.reason)\n") }
        let next = windows.compactMap { w in w.nextStart(after: now).map { (w, $0) } }.min { $0.1 < $1.1 }
        if let (w, at) = next {
            StandardStreams.out("next: \(w.description) opens \(TimelineEvent.timestamp(at)): \(w.reason)\n")
        } else {
            StandardStreams.out("next: none\n")
        }
    }
}

struct ReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference", abstract: "Print the actions and checks reference (docs/actions.md): fields, units, outputs, examples.")
    func run() throws { StandardStreams.out(ActionReference.markdown()) }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "schema", abstract: "Print the JSON Schema of the runbook format.")
    func run() throws { print(RunbookJSONSchema.text(), terminator: "") }
}

/// Plain aligned columns.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for r in all { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        return all.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// Shell completion of runbook names, run ids and drill files (`runbook --generate-completion-script`).
enum Completions {
    /// The value of `--flag VALUE` or `--flag=VALUE` among the words typed so far.
    static func option(_ flag: String, in words: [String]) -> String? {
        for (i, w) in words.enumerated() {
            if w == flag, i + 1 < words.count { return words[i + 1] }
            if w.hasPrefix(flag + "=") { return String(w.dropFirst(flag.count + 1)) }
        }
        return nil
    }

    /// Runbook names in the folder the command line (or the environment) names.
    static let runbookNames: CompletionKind = .custom { words, _, prefix in
        let catalog = RunbookCatalog(directory: option("--runbooks", in: words))
        let files = (try? catalog.files()) ?? []
        let names = RunbookLoader.load(paths: files).compactMap { try? $0.get().name }
        return names.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// `last` and the newest run ids in the state folder.
    static let runIDs: CompletionKind = .custom { words, _, prefix in
        var state = StateOptions()
        state.stateDir = option("--state-dir", in: words)
        let ids = ((try? SQLiteRunStore(directory: state.directory).runs(limit: 200)) ?? []).map(\.id)
        return (["last"] + ids).filter { $0.hasPrefix(prefix) }
    }

    static let drillFiles: CompletionKind = .file(extensions: ["yaml", "yml"])
}
