/// The version of runbook, set here once; `runbook --version` prints it.
public enum RunbookVersion {
    public static let current = "2.0.0-dev"
}
