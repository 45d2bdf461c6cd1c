import ArgumentParser
import Foundation
import Logging
import RunbookActions
import RunbookCore
import RunbookServer
import RunbookStore

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "The alert server: Alertmanager webhooks and the run API.",
        discussion: """
            POST /hooks/alertmanager (Alertmanager or Grafana webhook, version 4), POST /hooks/run, GET /runs, GET /runs/ID,
            GET /healthz, GET /metrics. With a token (--token-file or $RUNBOOK_TOKEN) every hook needs 'Authorization: Bearer TOKEN'.
            On start, runs a previous server left unfinished are marked interrupted; their changes are not repeated.
            """)

    @Option(help: "Address to listen on (loopback by default).") var listen = "127.0.0.1:9095"
    @Option(help: "File holding the bearer token (else $RUNBOOK_TOKEN).") var tokenFile: String?
    @OptionGroup var options: RunbookOptions
    @OptionGroup var state: StateOptions

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            printError("error: --listen takes HOST:PORT, got '\(listen)'")
            throw ExitCode(2)
        }
        let host = String(listen[..<colon])
        var token = ProcessInfo.processInfo.environment["RUNBOOK_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                printError("error: cannot read token file \(tokenFile)")
                throw ExitCode(2)
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if token?.isEmpty == true { printError("error: token file \(tokenFile) is empty"); throw ExitCode(2) }
        }
        let (runbooks, errors): ([Runbook], [LoadError])
        do { (runbooks, errors) = try options.catalog.loadAll() } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        for e in errors { printError(e.description) }
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        // Only runs whose owner is dead (their lease is free) are marked interrupted: a live
        // `runbook run` on the same state folder is left alone.
        let store = try state.openStore()
        ChildWatcher.shared.becomeSubreaper()
        var logger = Logger(label: "runbook.serve")
        logger.logLevel = .info
        let intake = AlertIntake(runbooks: runbooks, launcher: RunLauncher(store: store), store: store)
        try await AlertServer.run(host: host, port: port, intake: intake, token: token, logger: logger)
    }
}
