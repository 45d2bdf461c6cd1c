import Foundation
import RunbookActions
import RunbookCore
import Testing

struct FlagFileTests {
    @Test func changesOnlyTheOneValueAndUndoesByteForByte() throws {
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

    @Test func reportsAMissingFlagWithTheFlagsThereAre() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try flagFileText.write(toFile: dir + "/f.json", atomically: true, encoding: .utf8)
        #expect(throws: FlagFileReader.Failure.self) { try FlagFile.set(path: dir + "/f.json", key: "nope", field: "state", newText: "\"DISABLED\"") }
        do { try FlagFile.set(path: dir + "/f.json", key: "nope", field: "state", newText: "\"DISABLED\"") } catch {
            #expect("\(error)".contains("image-resize, other"))
        }
        #expect(try String(contentsOfFile: dir + "/f.json", encoding: .utf8) == flagFileText)
    }

    @Test func handlesCompactJSONAndEscapedKeys() throws {
        let text = #"{"flags":{"a\"b":{"state":"ENABLED","variants":{"x":"1"},"defaultVariant":"x"},"c":{"state":"ENABLED","defaultVariant":"y","variants":{"y":[1,{"z":"}"}]}}}}"#
        let data = Data(text.utf8)
        let (value, _) = try FlagFileReader.locate(in: data, key: "c", field: "defaultVariant")
        #expect(value == "\"y\"")
        let (state, _) = try FlagFileReader.locate(in: data, key: "a\"b", field: "state")
        #expect(state == "\"ENABLED\"")
    }
}
