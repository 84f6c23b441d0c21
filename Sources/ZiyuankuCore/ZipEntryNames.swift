import Foundation

/// Zip entry names are untrusted paths: the importer extracts an entry only where its name is a
/// plain relative path inside the import folder (RELIABILITY.md R12).
public enum ZipEntryNames {
    /// The entry's relative path with `/` separators (backslashes, as Windows tools write them,
    /// become `/`; empty and `.` components are dropped), or nil when the name is absolute
    /// (`/…`, `\…`), has a drive letter or other `:` in its first component, climbs out with
    /// `..`, is empty, holds a control character (NUL among them), or has a component longer
    /// than a file name may be (255 bytes) or is longer than a path (4,096 bytes).
    public static func safeRelativePath(_ name: String) -> String? {
        guard name.utf8.count <= 4096, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        let parts = name.replacingOccurrences(of: "\\", with: "/").split(separator: "/").map(String.init).filter { $0 != "." }
        guard !name.hasPrefix("/"), !name.hasPrefix("\\"), !parts.contains(".."), !parts.isEmpty,
            !(parts.first?.contains(":") ?? false), parts.allSatisfy({ $0.utf8.count <= 255 })
        else { return nil }
        return parts.joined(separator: "/")
    }
}
