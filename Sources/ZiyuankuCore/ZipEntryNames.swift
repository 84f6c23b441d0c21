/// Zip entry names are untrusted paths: the importer extracts an entry only where its name is a
/// plain relative path inside the import folder (RELIABILITY.md R12).
public enum ZipEntryNames {
    /// The entry's relative path with `/` separators (backslashes, as Windows tools write them,
    /// become `/`; empty components are dropped), or nil when the name is absolute (`/…`, `\…`),
    /// has a drive letter or other `:` in its first component, climbs out with `..`, or is empty.
    ///
    /// Looked at by code point, as the file system sees it, not by Character: a separator
    /// followed by a combining mark is one Character that is not "/" (so `../\u{301}x` would
    /// otherwise be one harmless-looking component that the file system reads as `..`, `\u{301}x`).
    public static func safeRelativePath(_ name: String) -> String? {
        let scalars = name.unicodeScalars.map { $0 == "\\" ? "/" : $0 }
        let parts = scalars.split(separator: "/").map { String(String.UnicodeScalarView($0)) }
        guard let first = parts.first, name.unicodeScalars.first != "/", name.unicodeScalars.first != "\\",
            !parts.contains(where: { $0.utf8.elementsEqual("..".utf8) }), !first.unicodeScalars.contains(":")
        else { return nil }
        return parts.joined(separator: "/")
    }
}
