import Foundation

/// Zip entry names are untrusted paths: the importer extracts an entry only where its name is a
/// plain relative path inside the import folder (RELIABILITY.md R12).
public enum ZipEntryNames {
    /// The entry's relative path with `/` separators (backslashes, as Windows tools write them,
    /// become `/`; empty components are dropped), or nil when the name is absolute (`/…`, `\…`),
    /// has a drive letter or other `:` in its first component, climbs out with `..`, or is empty.
    public static func safeRelativePath(_ name: String) -> String? {
        let parts = name.replacingOccurrences(of: "\\", with: "/").split(separator: "/").map(String.init)
        guard !name.hasPrefix("/"), !name.hasPrefix("\\"), !parts.contains(".."), !parts.isEmpty,
            !(parts.first?.contains(":") ?? false)
        else { return nil }
        return parts.joined(separator: "/")
    }
}
