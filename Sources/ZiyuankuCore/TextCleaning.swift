import Foundation

public enum TextCleaning {
    /// Unicode NFC, so that the same visible text is stored as the same bytes.
    public static func normalize(_ s: String) -> String {
        s.precomposedStringWithCanonicalMapping
    }

    /// The first character that must never appear in stored text: C0/C1 controls (tabs and
    /// newlines only where allowed), NUL, and bidirectional overrides that disguise text.
    public static func forbiddenCharacter(in s: String, allowNewlines: Bool) -> Unicode.Scalar? {
        for u in s.unicodeScalars {
            if isBidiControl(u) { return u }
            if u.value < 0x20 || (0x7F...0x9F).contains(u.value) {
                if allowNewlines && (u == "\n" || u == "\r" || u == "\t") { continue }
                return u
            }
        }
        return nil
    }

    public static func isBidiControl(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true
        default: false
        }
    }
}
