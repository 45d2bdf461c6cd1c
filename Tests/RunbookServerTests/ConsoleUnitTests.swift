import Foundation
import Testing
@testable import RunbookServer

/// The console's pieces that need no server: its embedded assets, form parsing and escaping.
struct ConsoleUnitTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func theEmbeddedAssetsAreTheFilesInConsoleFolder() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.repo + "/console").filter { $0.hasSuffix(".js") || $0.hasSuffix(".css") }
        #expect(Set(names) == Set(ConsoleAssets.files.keys), "run scripts/gen-console-assets.sh")
        for name in names {
            var text = try String(contentsOfFile: Self.repo + "/console/" + name, encoding: .utf8)
            if text.hasSuffix("\n") { text.removeLast() }
            #expect(ConsoleAssets.files[name]?.text == text, "console/\(name) changed: run scripts/gen-console-assets.sh")
        }
    }

    @Test func thePageScriptsHaveNoInlineHandlersAndLoadNothingFromOutside() {
        for (name, asset) in ConsoleAssets.files {
            // The SVG namespace is a name, not a place anything is loaded from.
            let text = asset.text.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
            #expect(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"), "\(name) names an outside origin")
            #expect(!asset.text.contains("eval("), "\(name) uses eval")
        }
        let page = ConsolePages.shell(page: "run", title: "Run <x>", runID: "\"><script>")
        #expect(!page.contains("<script>") && !page.contains("onclick") && !page.contains("style="))
        #expect(page.contains("data-run=\"&quot;&gt;&lt;script&gt;\""))
    }

    @Test func theSignInFormFieldIsDecoded() {
        #expect(ConsoleRoutes.formField("a=1&token=ab%2Bc+d", "token") == "ab+c d")
        #expect(ConsoleRoutes.formField("tokens=x", "token") == nil)
    }

    @Test func svgTextIsEscapedLikeTheTerminalThenAsXML() {
        #expect(StepGraphSVG.xml("<a href='x'>&\"\u{1B}[31m") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;\\u{1B}[31m")
    }
}
