import Foundation
import Testing
import ZiyuankuFuzzTargets

/// Replays the committed fuzz corpora (Tests/fuzz/corpus/<target>/) and every crash input found
/// so far (Tests/fuzz/crashes/<target>/) through the same harnesses libFuzzer runs
/// (bench/fuzz/run.sh): a broken promise traps, so a crash input that still crashes fails the
/// test run. Quick: the corpora are a few hundred small files.
@Suite struct FuzzCorpusReplayTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    static func files(in folder: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    static func run(_ target: FuzzTargets.Run, _ file: URL) throws {
        let data = try Data(contentsOf: file)
        data.withUnsafeBytes { target($0) }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func replay(target name: String) throws {
        let run = try #require(FuzzTargets.target(named: name))
        let corpus = Self.files(in: Self.fuzzFolder.appendingPathComponent("corpus/\(name)"))
        #expect(!corpus.isEmpty, "Tests/fuzz/corpus/\(name)/ is missing or empty: every target needs seeds")
        let crashes = Self.files(in: Self.fuzzFolder.appendingPathComponent("crashes/\(name)"))
        for file in corpus + crashes { try Self.run(run, file) }
    }

    @Test func everyFolderNamesATarget() {
        let known = Set(FuzzTargets.all.map(\.name))
        for kind in ["corpus", "crashes"] {
            for folder in Self.files(in: Self.fuzzFolder.appendingPathComponent(kind)) {
                #expect(known.contains(folder.lastPathComponent), "Tests/fuzz/\(kind)/\(folder.lastPathComponent) names no fuzz target")
            }
        }
    }

    @Test func corpusFolderIsFound() {
        #expect(FileManager.default.fileExists(atPath: Self.fuzzFolder.appendingPathComponent("corpus").path))
    }
}
