// libFuzzer's entry points for every target in ZiyuankuFuzzTargets. The environment variable
// ZYK_FUZZ_TARGET picks the target (bench/fuzz/run.sh sets it).
//
// SwiftPM links an executable target with `main` defined as `ZiyuankuFuzz_main` (so that
// libFuzzer's own `main` is never linked in); that function hands over to libFuzzer's driver.
import CFuzzDriver
import Glibc
import ZiyuankuFuzzTargets

nonisolated(unsafe) private var selected: FuzzTargets.Run?

private func complain(_ message: String) {
    var m = message
    m.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

@_cdecl("ZiyuankuFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let names = FuzzTargets.all.map(\.name).joined(separator: " ")
    guard let raw = getenv("ZYK_FUZZ_TARGET") else {
        complain("set ZYK_FUZZ_TARGET to one of: \(names)\n")
        return 2
    }
    let name = String(cString: raw)
    guard let run = FuzzTargets.target(named: name) else {
        complain("unknown fuzz target \(name); the targets are: \(names)\n")
        return 2
    }
    selected = run
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOne)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    selected?(UnsafeRawBufferPointer(start: start, count: start == nil ? 0 : count))
    return 0
}
