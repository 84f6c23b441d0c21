import GRDB
import GRDBSQLite
import ZiyuankuCore

// The benchmark registers the server's own `ZykTokenizer` (ZiyuankuStore) on its read
// connections; below is only an experimental variant.

/// Experiment only: the same tokens without the colocated pinyin and initial tokens.
final class BenchNoPinyinTokenizer: FTS5CustomTokenizer {
    static let name = "zyk_nopinyin"

    init(db: Database, arguments: [String]) throws {}

    func tokenize(
        context: UnsafeMutableRawPointer?, tokenization: FTS5Tokenization, pText: UnsafePointer<CChar>?, nText: CInt,
        tokenCallback: @escaping FTS5TokenCallback
    ) -> CInt {
        guard let pText, nText > 0 else { return SQLITE_OK }
        let mode: SearchText.Mode = tokenization.contains(.query) ? .query : .document
        var rc = SQLITE_OK
        pText.withMemoryRebound(to: UInt8.self, capacity: Int(nText)) { p in
            SearchText.tokenize(UnsafeBufferPointer(start: p, count: Int(nText)), mode: mode) { token, start, end, colocated in
                if colocated { return true }
                token.withMemoryRebound(to: CChar.self) { t in
                    rc = tokenCallback(context, 0, t.baseAddress, CInt(t.count), CInt(start), CInt(end))
                }
                return rc == SQLITE_OK
            }
        }
        return rc
    }
}
