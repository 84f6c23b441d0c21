/// Zip entry names (and the file paths a bulk-import manifest names) are untrusted paths: the
/// importer extracts or reads a file only where its name is a plain relative path inside the
/// import folder (docs/product.md#import; R12, R13 in docs/product.md#reliability-targets).
public enum ZipEntryNames {
    /// The entry's relative path with `/` separators (backslashes, as Windows tools write them,
    /// become `/`; empty and `.` components are dropped), or nil when the name is absolute
    /// (`/…`, `\…`), has a drive letter or other `:` in its first component, climbs out with
    /// `..`, is empty, holds a control character (NUL among them), or has a component longer
    /// than a file name may be (255 bytes) or is longer than a path (4,096 bytes).
    ///
    /// Looked at by code point, as the file system sees it, not by Character: a separator
    /// followed by a combining mark is one Character that is not "/" (so `../\u{301}x` would
    /// otherwise be one harmless-looking component that the file system reads as `..`, `\u{301}x`).
    public static func safeRelativePath(_ name: String) -> String? {
        guard name.utf8.count <= 4096, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        let scalars = name.unicodeScalars.map { $0 == "\\" ? "/" : $0 }
        let parts = scalars.split(separator: "/").map { String(String.UnicodeScalarView($0)) }.filter { !$0.utf8.elementsEqual(".".utf8) }
        guard let first = parts.first, name.unicodeScalars.first != "/", name.unicodeScalars.first != "\\",
            !parts.contains(where: { $0.utf8.elementsEqual("..".utf8) }), !first.unicodeScalars.contains(":"),
            parts.allSatisfy({ $0.utf8.count <= 255 })
        else { return nil }
        return parts.joined(separator: "/")
    }
}
