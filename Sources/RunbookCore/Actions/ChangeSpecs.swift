/// A command, wherever one appears (a check, a change, a restart): never run through a shell.
public struct CommandSpec: Sendable, Hashable {
    /// Program and arguments; never empty.
    public var argv: [Template]
    public var env: [NamedTemplate] = []
    public var cwd: Template?
    /// Exit codes that pass (default 0).
    public var exit: [Int] = [0]
    public var stdoutContains: Template?
    /// `read_only: true` in the command mapping.
    public var readOnly: Bool = false

    public init(argv: [Template]) { self.argv = argv }
}

/// `flag:`: a flagd flag file or an HTTP flag service.
public struct FlagSpec: Sendable, Hashable {
    /// Where the flag lives: exactly one of `file`, `http`.
    public enum Provider: Sendable, Hashable {
        case file(Template)
        case http(FlagHTTPSpec)
    }

    /// What the flag is set to: `variant` (the default variant) or `state`.
    public enum Setting: Sendable, Hashable {
        case variant(Template)
        case state(String)

        /// The flagd field it writes: `defaultVariant` or `state`.
        public var field: String {
            switch self {
            case .variant: "defaultVariant"
            case .state: "state"
            }
        }
    }

    public var provider: Provider
    public var key: Template?
    public var setting: Setting?

    /// The flag file, for the file provider.
    public var file: Template? { if case .file(let f) = provider { f } else { nil } }
}

/// `flag: { http: ... }`: one request to a flag service.
public struct FlagHTTPSpec: Sendable, Hashable {
    public var url: Template
    /// `POST` unless set.
    public var method: String = "POST"
    public var body: Template?
    public var headers: [NamedTemplate] = []
}

/// `restart:`: how to restart, how to see the new process, and when it is ready.
public struct RestartSpec: Sendable, Hashable {
    /// Who restarts it: exactly one of `command`, `systemd`, `supervisor`, `kubernetes`.
    public enum Provider: Sendable, Hashable {
        case command(CommandSpec)
        case systemd(unit: Template)
        case supervisor(program: Template, config: Template?, server: Template?)
        case kubernetes(target: Template, namespace: Template?)
    }

    public var provider: Provider
    /// The old pid must go and a new one come.
    public var pidfile: Template?
    /// Retried until it passes or the step times out.
    public var ready: CheckSpec?
}

/// `notify:`: POST a Slack-compatible JSON message.
public struct NotifySpec: Sendable, Hashable {
    public var url: Template
    public var text: Template?
    public var headers: [NamedTemplate] = []

    public init(url: Template, text: Template? = nil, headers: [NamedTemplate] = []) {
        self.url = url
        self.text = text
        self.headers = headers
    }
}
