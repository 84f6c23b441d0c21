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

    /// A user-supplied string made safe to show in one line of a log or a message: control,
    /// line-separator and bidi characters become `\u{…}` escapes, and the text is cut at
    /// `max` code points. A zip entry name cannot forge a log line or reorder what is shown.
    public static func oneLine(_ s: String, max: Int = 300) -> String {
        var out = ""
        var n = 0
        for u in s.unicodeScalars {
            if n >= max {
                out += "…"
                break
            }
            if u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029 || isBidiControl(u) {
                out += "\\u{\(String(u.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(u)
            }
            n += 1
        }
        return out
    }
}
