import Foundation
import Testing
@testable import RunbookCore

/// Inventories: plain, Ansible INI and Ansible YAML, read into groups of names as written.
struct InventoryTests {
    static func write(_ text: String, _ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "inv-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        return dir + "/" + name
    }

    @Test func plainListTakesOneHostALineAndSkipsComments() throws {
        let inv = try Inventory.load(path: Self.write("# web fleet\nweb-1\n  web-2   # the second\n\nweb-1\n", "hosts"))
        #expect(inv.all == ["web-1", "web-2"])
    }

    @Test func ansibleINIReadsGroupsChildrenAndRanges() throws {
        let text = """
        [web]
        web-[01:03] ansible_port=22
        [db]
        db-1
        [shop:children]
        web
        db
        [web:vars]
        x=1
        """
        let inv = try Inventory.load(path: Self.write(text, "inventory.ini"))
        #expect(inv.hosts(group: "web") == ["web-01", "web-02", "web-03"])
        #expect(inv.hosts(group: "shop") == ["web-01", "web-02", "web-03", "db-1"])
        #expect(Set(inv.all) == ["web-01", "web-02", "web-03", "db-1"])
        #expect(inv.hosts(group: "nope") == nil)
    }

    @Test func ansibleYAMLReadsNestedGroups() throws {
        let text = """
        all:
          hosts:
            bastion:
          children:
            web:
              hosts:
                web-1:
                web-2: { ansible_host: 10.0.0.2 }
        """
        let inv = try Inventory.load(path: Self.write(text, "inv.yaml"))
        #expect(inv.hosts(group: "web") == ["web-1", "web-2"])
        #expect(Set(inv.all) == ["bastion", "web-1", "web-2"])
    }

    @Test func hostNamesThatSSHWouldReadAsOptionsOrAShellAsSyntaxAreRefused() {
        #expect(HostName.problem("web-1.internal") == nil)
        #expect(HostName.problem("-oProxyCommand=x") != nil)
        #expect(HostName.problem("web-1; rm -rf /") != nil)
        #expect(HostName.problem("$(id)") != nil)
        #expect(HostName.problem("") != nil)
    }
}
