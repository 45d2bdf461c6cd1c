import Foundation
import RunbookActions
import RunbookCore
import Testing

@Suite(.timeLimit(.minutes(10)))
struct FlagFileTests {
    @Test func changesOnlyTheOneValueAndUndoesByteForByte() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/flags.json"
        try flagFileText.write(toFile: path, atomically: true, encoding: .utf8)
        let previous = try FlagFile.set(path: path, key: "image-resize", field: "defaultVariant", newText: "\"off\"")
        #expect(previous == "\"on\"")
        let changed = try String(contentsOfFile: path, encoding: .utf8)
        #expect(changed == flagFileText.replacingOccurrences(of: "\"defaultVariant\": \"on\"", with: "\"defaultVariant\": \"off\""))
        let obj = try JSONSerialization.jsonObject(with: Data(changed.utf8)) as? [String: Any]
        #expect(obj != nil)
        try FlagFile.set(path: path, key: "image-resize", field: "defaultVariant", newText: previous)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(flagFileText.utf8))
        // No temp files left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["flags.json"])
    }

    @Test func reportsAMissingFlagWithTheFlagsThereAre() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try flagFileText.write(toFile: dir + "/f.json", atomically: true, encoding: .utf8)
        #expect(throws: FlagFileReader.Failure.self) { try FlagFile.set(path: dir + "/f.json", key: "nope", field: "state", newText: "\"DISABLED\"") }
        do { try FlagFile.set(path: dir + "/f.json", key: "nope", field: "state", newText: "\"DISABLED\"") } catch {
            #expect("\(error)".contains("image-resize, other"))
        }
        #expect(try String(contentsOfFile: dir + "/f.json", encoding: .utf8) == flagFileText)
    }

    @Test func handlesCompactJSONAndEscapedKeys() async throws {
        let text = #"{"flags":{"a\"b":{"state":"ENABLED","variants":{"x":"1"},"defaultVariant":"x"},"c":{"state":"ENABLED","defaultVariant":"y","variants":{"y":[1,{"z":"}"}]}}}}"#
        let data = Data(text.utf8)
        let (value, _) = try FlagFileReader.locate(in: data, key: "c", field: "defaultVariant")
        #expect(value == "\"y\"")
        let (state, _) = try FlagFileReader.locate(in: data, key: "a\"b", field: "state")
        #expect(state == "\"ENABLED\"")
    }

    @Test func aSymlinkedFlagFileStaysALinkAndItsTargetKeepsOwnerGroupAndMode() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        let target = dir + "/real/flags.json"
        try flagFileText.write(toFile: target, atomically: true, encoding: .utf8)
        // Another user's file (as flagd's deployment would own it), mode 0640.
        let asRoot = getuid() == 0
        if asRoot { #expect(chown(target, 1000, 1000) == 0) }
        #expect(chmod(target, 0o640) == 0)
        try FileManager.default.createSymbolicLink(atPath: dir + "/flags.json", withDestinationPath: "real/flags.json")
        try FlagFile.set(path: dir + "/flags.json", key: "image-resize", field: "defaultVariant", newText: "\"off\"")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/flags.json") == "real/flags.json")
        var st = stat()
        #expect(stat(target, &st) == 0)
        if asRoot {
            #expect(st.st_uid == 1000)
            #expect(st.st_gid == 1000)
        }
        #expect(st.st_mode & 0o7777 == 0o640)
        #expect(try String(contentsOfFile: target, encoding: .utf8).contains("\"defaultVariant\": \"off\""))
        // The temp file was made beside the target, and is gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/real") == ["flags.json"])
    }

    @Test(arguments: [
        #"{"flags":{"a":{"state":"ENABLED","variants":{"on":1,"off":0},"defaultVariant":"on","defaultVariant":"off"}}}"#,
        #"{"flags":{"a":{"state":"ENABLED","variants":{"on":1,"off":0},"defaultVariant":"on"},"a":{"state":"DISABLED","variants":{"on":1},"defaultVariant":"on"}}}"#,
        #"{"flags":{"a":{"state":"ENABLED","variants":{"on":1,"on":0},"defaultVariant":"on"}}}"#,
        #"{"flags":{"a":{"state":"ENABLED","variants":{"on":1},"defaultVariant":"on"}},"flags":{}}"#,
    ])
    func aDuplicateKeyAnywhereIsAnErrorThatChangesNothing(text: String) throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/f.json", atomically: true, encoding: .utf8)
        #expect {
            try FlagFile.set(path: dir + "/f.json", key: "a", field: "defaultVariant", newText: "\"off\"")
        } throws: { error in
            "\(error)".contains("duplicate key")
        }
        #expect(try String(contentsOfFile: dir + "/f.json", encoding: .utf8) == text)
    }
}
