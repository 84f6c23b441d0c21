import Foundation
import Testing
import ZiyuankuServer

/// `schema/openapi.yaml` and the routes the server registers must describe the same API.
@Suite struct OpenAPIDriftTests {
    static func documentedOperations() throws -> Set<String> {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../schema/openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        var inPaths = false
        var current: String?
        var ops = Set<String>()
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        for line in text.components(separatedBy: "\n") {
            if line.hasPrefix("paths:") {
                inPaths = true
                continue
            }
            if inPaths, !line.isEmpty, !line.hasPrefix(" "), !line.hasPrefix("#") { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                current = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let current {
                let key = line.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ":", with: "")
                if methods.contains(key) { ops.insert("\(key.uppercased()) \(current)") }
            }
        }
        return ops
    }

    @Test func documentAndRoutesAgree() throws {
        let env = try TestEnv()
        let registered = Set(env.routes.entries.map { "\($0.method) \($0.path)" })
        let documented = try Self.documentedOperations()
        #expect(!registered.isEmpty)
        #expect(registered.subtracting(documented).sorted() == [], "routes missing from schema/openapi.yaml")
        #expect(documented.subtracting(registered).sorted() == [], "documented operations the server does not have")
    }
}
