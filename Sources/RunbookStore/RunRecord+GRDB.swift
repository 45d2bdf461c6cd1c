import GRDB
import RunbookStoreContract

/// Rows of the `runs` table.
extension RunRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "runs"
}
