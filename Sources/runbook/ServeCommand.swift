import ArgumentParser
import Foundation
import Logging
import RunbookActions
import RunbookCore
import RunbookServer
import RunbookStoreContract

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "The alert server: Alertmanager webhooks and the run API.",
        discussion: """
            POST /hooks/alertmanager (role alerts), POST /hooks/run (role operator), GET /runs, GET /runs/ID and GET /metrics
            (role reader), GET /healthz (open). Every endpoint but /healthz needs 'Authorization: Bearer TOKEN' from the token
            file: one entry a line, '#' comments, TOKEN alone (name default, role admin) or NAME:ROLE:TOKEN with ROLE one of
            alerts, reader, operator, admin. Without --token-file the server does not start, unless --no-auth on a loopback address.
            On start, runs whose process died are marked interrupted; their changes are not repeated.
            """)

    @Option(help: "Address to listen on: HOST:PORT or [IPv6]:PORT (port 0: any free port, printed once bound).") var listen = "127.0.0.1:9095"
    @Option(help: "Token file (required unless --no-auth).") var tokenFile: String?
    @Flag(help: "Run without tokens; accepted on a loopback address only.") var noAuth = false
    @Flag(help: "Serve /metrics without a token.") var metricsPublic = false
    @Option(help: "Seconds a connection has to send its request head.") var headTimeout: Double = 10
    @Option(help: "Seconds an idle connection is kept.") var idleTimeout: Double = 60
    @Option(help: "Seconds a connection that has not yet sent a known token has to send its request head.") var unauthenticatedHeadTimeout: Double = 2
    @Option(help: "Connections held at once (at most half the descriptor limit); when full, the oldest one without a known token is closed to make room.") var maxConnections = 4096
    @Option(help: "Connections without a known token held from one address (default: half of --max-connections); beyond it the oldest is closed.") var maxConnectionsPerAddress: Int?
    @Option(help: "Largest request body accepted, in bytes (413 beyond); raise it for Alertmanager payloads of many thousand alerts.") var maxBody = AlertServer.maxBody
    @Option(help: "Seconds running steps may finish after SIGTERM before their runs are interrupted.") var shutdownGrace: Double = 10
    @Option(help: "Event streams (/runs/ID/events, /runs/events, the console's live views) open at once; more are answered 503.") var maxWatchers = 256
    @Option(help: "Change breaker: no new run while N changes were applied across all runbooks within the window, e.g. 10/1h.") var maxChanges: String?
    @Option(help: "Change freeze windows (a YAML list): runs that would change things are refused during one.") var freeze: String?
    @Option(help: "ssh_config file for steps with across: (passed as ssh -F FILE); default your own.") var sshConfig: String?
    @Option(help: "Most hosts one target set of a run may resolve to; a larger set refuses the run.") var maxTargets: Int?
    @OptionGroup var options: RunbookOptions
    @OptionGroup var state: StateOptions

    /// `HOST:PORT` or `[IPV6]:PORT`.
    static func parseListen(_ text: String) -> (host: String, port: Int)? {
        let host: String, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    /// 127.0.0.0/8, ::1 and localhost.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".")
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    func run() async throws {
        guard let (host, port) = Self.parseListen(listen) else {
            printError("error: --listen takes HOST:PORT or [IPv6]:PORT, got '\(listen)'")
            throw ExitCode(2)
        }
        let tokens: TokenSet?
        switch (tokenFile, noAuth) {
        case (let path?, false):
            do { tokens = try TokenSet.load(path: path) } catch {
                printError("error: \(error)")
                throw ExitCode(2)
            }
        case (nil, true):
            guard Self.isLoopback(host) else {
                printError("error: --no-auth is accepted on a loopback address only (127.0.0.1, [::1], localhost), not \(host): give --token-file FILE")
                throw ExitCode(2)
            }
            printError("warning: --no-auth: anyone who can reach \(listen) may start runs")
            tokens = nil
        case (_?, true):
            printError("error: give --token-file or --no-auth, not both")
            throw ExitCode(2)
        case (nil, false):
            printError("error: runbook serve needs --token-file FILE (one token a line, or NAME:ROLE:TOKEN): without it anyone who can reach the port could run runbooks; --no-auth runs without tokens on a loopback address")
            throw ExitCode(2)
        }
        guard headTimeout > 0, unauthenticatedHeadTimeout > 0, idleTimeout > 0, maxConnections > 0, maxWatchers > 0, (maxConnectionsPerAddress ?? 1) > 0,
              maxBody > 0, shutdownGrace >= 0 else {
            printError("error: --head-timeout, --unauthenticated-head-timeout, --idle-timeout, --max-connections, --max-connections-per-address, --max-watchers and --max-body must be positive, --shutdown-grace not negative")
            throw ExitCode(2)
        }
        let (runbooks, errors): ([Runbook], [LoadError])
        do { (runbooks, errors) = try options.catalog.loadAll() } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        for e in errors { printError(e.description) }
        if errors.contains(where: RunbookCatalog.isDuplicateName) {
            printError("error: two runbook files declare one name: an alert could start either; rename one and start again")
            throw ExitCode(2)
        }
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        // Blocking work (opening the store, resuming runs, every store call) runs on the server's
        // own threads, never on the cooperative pool.
        let threads = ServerThreads()
        // Only runs whose owner is dead (their lease is free) are marked interrupted: a live
        // `runbook run` on the same state folder is left alone.
        let state = self.state
        let store: any RunDatabase
        do { store = try await threads.blocking { try state.openStore(owner: "serve") } } catch {
            await threads.shutdown()
            throw error
        }
        ChildWatcher.shared.becomeSubreaper()
        var logger = Logger(label: "runbook.serve")
        logger.logLevel = .info
        var breaker: (count: Int, per: Double)?
        if let text = maxChanges {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let n = Int(parts[0]), n >= 1, let per = Quantity.duration(parts[1]), per > 0 else {
                printError("error: --max-changes takes N/DURATION, like 10/1h, got '\(text)'")
                throw ExitCode(2)
            }
            breaker = (n, per)
        }
        var freezes: [FreezeWindow] = []
        if let freeze {
            do { freezes = try FreezeFile.load(path: freeze) } catch let e as LoadError {
                printError(e.description)
                throw ExitCode(2)
            }
        }
        var ssh = SSHSettings(configFile: sshConfig.map(PathParam.canonical))
        ssh.controlDirectory = SSHControlFolder.prepare(stateDirectory: state.directory, name: "serve")
        ssh.controlPersist = "60s"
        let launcher = RunLauncher(store: store, maxChanges: breaker, freezes: freezes, ssh: ssh, maxTargets: maxTargets)
        // Before the server listens: a client that sees it listening sees the resumed runs too.
        let resumed = (try? await threads.blocking { launcher.resumePaused(runbooks: runbooks) }) ?? []
        if !resumed.isEmpty { printError("resumed \(resumed.count) run(s) paused for approval: \(resumed.joined(separator: ", "))") }
        let api = RunAPI(runbooks: runbooks, launcher: launcher, store: store)
        var serverOptions = AlertServer.Options(host: host, port: port, tokens: tokens)
        serverOptions.metricsPublic = metricsPublic
        serverOptions.headTimeout = headTimeout
        serverOptions.idleTimeout = idleTimeout
        serverOptions.maxConnections = maxConnections
        serverOptions.unauthenticatedHeadTimeout = unauthenticatedHeadTimeout
        serverOptions.maxConnectionsPerAddress = maxConnectionsPerAddress
        serverOptions.maxBody = maxBody
        serverOptions.shutdownGrace = shutdownGrace
        serverOptions.maxWatchers = maxWatchers
        // With PostgreSQL, runs whose owner died are taken over (the first claim comes within 2 s).
        do { try await AlertServer.run(serverOptions, api: api, threads: threads, logger: logger) } catch {
            await threads.shutdown()
            throw error
        }
        await threads.shutdown()
    }
}
