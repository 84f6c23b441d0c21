import Foundation

/// User filenames are data, never paths (docs/product.md#files-and-blobs; R12 in docs/product.md#reliability-targets).
public enum Filenames {
    public static let maxBytes = 255

    /// Cleans a client-supplied filename into something safe to keep as metadata:
    /// the last path component (clients on Windows send `C:\…\name`), NFC, no control or
    /// bidi-override characters, no leading dots or spaces, at most 255 bytes of UTF-8 with the
    /// extension kept. Returns nil when nothing usable is left.
    public static func clean(_ raw: String) -> String? {
        var s = TextCleaning.normalize(raw)
        // By code point: a separator followed by combining marks is one Character that is not "/".
        if let cut = s.unicodeScalars.lastIndex(where: { $0 == "/" || $0 == "\\" }) {
            s = String(s.unicodeScalars[s.unicodeScalars.index(after: cut)...])
        }
        s = String(
            String.UnicodeScalarView(
                s.unicodeScalars.filter { u in
                    !(u.value < 0x20 || (0x7F...0x9F).contains(u.value) || TextCleaning.isBidiControl(u)
                        || u.value == 0xFEFF)
                }))
        s = s.trimmingCharacters(in: .whitespaces)
        while let f = s.first, f == "." || f == " " { s.removeFirst() }
        while let l = s.last, l == " " || l == "." { s.removeLast() }
        guard !s.isEmpty else { return nil }
        var cut = truncate(s, maxBytes: maxBytes)
        while let l = cut.last, l == " " || l == "." { cut.removeLast() }
        return cut.isEmpty ? nil : cut
    }

    /// Shortens to at most `maxBytes` UTF-8 bytes, keeping a short extension (at most 32 bytes).
    /// Cuts on a character boundary; a single character longer than the room left (a letter
    /// with hundreds of combining marks is one character) is cut between its code points.
    /// Linear in the length of `s`, and never empty when `s` is not.
    public static func truncate(_ s: String, maxBytes: Int) -> String {
        guard s.utf8.count > maxBytes else { return s }
        var ext = ""
        var stem = Substring(s)
        if let dot = s.lastIndex(of: "."), dot != s.startIndex, s[dot...].utf8.count <= min(32, maxBytes / 2) {
            ext = String(s[dot...])
            stem = s[..<dot]
        }
        let budget = maxBytes - ext.utf8.count
        var out = ""
        var used = 0
        for ch in stem {
            let n = ch.utf8.count
            if used + n <= budget {
                out.append(ch)
                used += n
                continue
            }
            // The first character that does not fit whole keeps the code points that fit.
            for u in ch.unicodeScalars {
                let w = UTF8.width(u)
                if used + w > budget { break }
                out.unicodeScalars.append(u)
                used += w
            }
            break
        }
        return out + ext
    }

    public static func fileExtension(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return name[name.index(after: dot)...].lowercased()
    }

    /// RFC 6266 / RFC 8187 `Content-Disposition` with an ASCII fallback and the exact UTF-8 name.
    public static func contentDisposition(_ name: String, inline: Bool = false) -> String {
        var fallback = ""
        // Old clients that ignore filename* get a readable pinyin name rather than underscores.
        let latin = name.applyingTransform(StringTransform("Any-Latin; Latin-ASCII"), reverse: false) ?? name
        for ch in latin.unicodeScalars {
            if ch.isASCII, ch.value >= 0x20, ch.value != 0x7F, ch != "\"", ch != "\\", ch != "%" {
                fallback.unicodeScalars.append(ch)
            } else {
                fallback.append("_")
            }
        }
        let disposition = inline ? "inline" : "attachment"
        return "\(disposition); filename=\"\(fallback)\"; filename*=UTF-8''\(rfc8187Encode(name))"
    }

    /// Percent-encodes everything outside RFC 8187's attr-char.
    public static func rfc8187Encode(_ s: String) -> String {
        let attrChars = Set("!#$&+-.^_`|~".utf8)
        var out = ""
        for b in s.utf8 {
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || attrChars.contains(b) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }
}
