/// Media types are sniffed from a file's leading bytes (and its extension only to tell apart
/// containers that share a signature, like ZIP-based office files), never taken from the client.
public enum MediaSniffer {
    /// How many leading bytes the sniffer wants to see.
    public static let headLength = 1024

    public static func sniff(head: [UInt8], filename: String) -> String {
        let ext = Filenames.fileExtension(filename)
        let h = head
        func at(_ offset: Int, _ bytes: [UInt8]) -> Bool {
            h.count >= offset + bytes.count && Array(h[offset..<(offset + bytes.count)]) == bytes
        }
        func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }

        if h.isEmpty { return "application/octet-stream" }
        if at(4, ascii("ftyp")) {
            let brand = h.count >= 12 ? String(decoding: h[8..<12], as: UTF8.self) : ""
            switch brand {
            case "M4A ", "M4B ", "M4P ", "F4A ": return "audio/mp4"
            case "qt  ": return "video/quicktime"
            case "heic", "heix", "mif1", "msf1", "avif": return brand == "avif" ? "image/avif" : "image/heic"
            case "3gp4", "3gp5", "3gp6", "3g2a": return "video/3gpp"
            default: return "video/mp4"
            }
        }
        if at(0, [0x1A, 0x45, 0xDF, 0xA3]) {
            return containsASCII(h, "webm") ? "video/webm" : "video/x-matroska"
        }
        if at(0, ascii("RIFF")) {
            if at(8, ascii("AVI ")) { return "video/x-msvideo" }
            if at(8, ascii("WAVE")) { return "audio/wav" }
            if at(8, ascii("WEBP")) { return "image/webp" }
        }
        if at(0, ascii("FLV")) { return "video/x-flv" }
        if at(0, [0x00, 0x00, 0x01, 0xBA]) || at(0, [0x00, 0x00, 0x01, 0xB3]) { return "video/mpeg" }
        if isTransportStream(h) { return "video/mp2t" }
        if at(0, [0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) { return ext == "wma" ? "audio/x-ms-wma" : "video/x-ms-wmv" }
        if at(0, ascii("ID3")) { return "audio/mpeg" }
        if h.count >= 2 && h[0] == 0xFF && (h[1] & 0xF6) == 0xF0 { return "audio/aac" }
        if h.count >= 2 && h[0] == 0xFF && (h[1] & 0xE0) == 0xE0 { return "audio/mpeg" }
        if at(0, ascii("OggS")) { return containsASCII(h, "theora") ? "video/ogg" : "audio/ogg" }
        if at(0, ascii("fLaC")) { return "audio/flac" }
        if at(0, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if at(0, [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if at(0, ascii("GIF87a")) || at(0, ascii("GIF89a")) { return "image/gif" }
        if at(0, ascii("BM")) && h.count >= 26 { return "image/bmp" }
        if at(0, [0x49, 0x49, 0x2A, 0x00]) || at(0, [0x4D, 0x4D, 0x00, 0x2A]) { return "image/tiff" }
        if at(0, ascii("%PDF-")) { return "application/pdf" }
        if at(0, [0x50, 0x4B, 0x03, 0x04]) || at(0, [0x50, 0x4B, 0x05, 0x06]) {
            // Office and OpenDocument files are zips with known first entries: an OOXML package
            // names `[Content_Types].xml` (and its part folder) early, an OpenDocument package or
            // EPUB starts with an uncompressed `mimetype` entry holding its type. Any other zip
            // renamed `.pptx` stays a zip.
            let ooxml = containsASCII(h, "[Content_Types].xml")
            func odf(_ type: String) -> Bool { at(30, ascii("mimetype")) && containsASCII(h, type) }
            switch ext {
            case "docx" where ooxml || containsASCII(h, "word/"):
                return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            case "xlsx" where ooxml || containsASCII(h, "xl/"):
                return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            case "pptx" where ooxml || containsASCII(h, "ppt/"):
                return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            case "odt" where odf("application/vnd.oasis.opendocument.text"): return "application/vnd.oasis.opendocument.text"
            case "ods" where odf("application/vnd.oasis.opendocument.spreadsheet"): return "application/vnd.oasis.opendocument.spreadsheet"
            case "odp" where odf("application/vnd.oasis.opendocument.presentation"): return "application/vnd.oasis.opendocument.presentation"
            case "epub" where odf("application/epub+zip"): return "application/epub+zip"
            default: return "application/zip"
            }
        }
        if at(0, [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            switch ext {
            case "doc": return "application/msword"
            case "xls": return "application/vnd.ms-excel"
            case "ppt": return "application/vnd.ms-powerpoint"
            default: return "application/x-ole-storage"
            }
        }
        if at(0, [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]) { return "application/x-7z-compressed" }
        if at(0, ascii("Rar!")) { return "application/vnd.rar" }
        if at(0, [0x1F, 0x8B]) { return "application/gzip" }
        if at(0, ascii("FWS")) || at(0, ascii("CWS")) || at(0, ascii("ZWS")) { return "application/x-shockwave-flash" }
        if at(0, ascii("{\\rtf")) { return "application/rtf" }
        if let markup = markupType(h) { return markup }
        if looksLikeText(h) {
            let body = h.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(h.dropFirst(3)) : h
            if body.starts(with: ascii("WEBVTT")) { return "text/vtt" }
            switch ext {
            case "srt": return "application/x-subrip"
            case "vtt": return "text/vtt"
            case "csv": return "text/csv"
            case "md", "markdown": return "text/markdown"
            case "json": return "application/json"
            default: return "text/plain"
            }
        }
        return "application/octet-stream"
    }

    /// MPEG transport stream: the sync byte 0x47 at the start of every 188-byte packet the
    /// head holds (at least four), or of every 192-byte M2TS packet after its 4-byte timestamp.
    /// Two sync bytes alone are no evidence: text that starts with "G" would pass.
    static func isTransportStream(_ h: [UInt8]) -> Bool {
        func packets(from start: Int, stride step: Int) -> Bool {
            let offsets = Array(Swift.stride(from: start, to: h.count, by: step))
            return offsets.count >= 4 && offsets.allSatisfy { h[$0] == 0x47 }
        }
        return packets(from: 0, stride: 188) || packets(from: 4, stride: 192)
    }

    /// The media type recorded for a file: the sniffed one when the leading bytes are
    /// recognised; for binary content no signature identifies (some encoders' output, truncated
    /// headers), the type its extension names. Text and markup are never re-labelled by extension,
    /// so HTML named `.mp4` stays `text/html` and is refused as a video.
    public static func mediaType(head: [UInt8], filename: String) -> String {
        let sniffed = sniff(head: head, filename: filename)
        guard sniffed == "application/octet-stream" else { return sniffed }
        return byExtension[Filenames.fileExtension(filename)] ?? sniffed
    }

    static let byExtension: [String: String] = [
        "mp4": "video/mp4", "m4v": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "mkv": "video/x-matroska",
        "avi": "video/x-msvideo", "flv": "video/x-flv", "wmv": "video/x-ms-wmv", "mpg": "video/mpeg", "mpeg": "video/mpeg",
        "ts": "video/mp2t", "3gp": "video/3gpp", "mp3": "audio/mpeg", "wav": "audio/wav", "m4a": "audio/mp4", "aac": "audio/aac",
        "ogg": "audio/ogg", "oga": "audio/ogg", "flac": "audio/flac", "wma": "audio/x-ms-wma",
    ]

    /// Markup a browser would run scripts in: HTML, SVG, XML that embeds either.
    static func markupType(_ h: [UInt8]) -> String? {
        var s = h
        if s.starts(with: [0xEF, 0xBB, 0xBF]) { s.removeFirst(3) }
        if s.starts(with: [0xFF, 0xFE]) || s.starts(with: [0xFE, 0xFF]) {
            // UTF-16 text: keep only the ASCII bytes for the markup check.
            s = s.filter { $0 != 0 }
        }
        let lower = String(decoding: s.prefix(1024), as: UTF8.self).lowercased()
        let trimmed = lower.drop(while: { $0.isWhitespace })
        if trimmed.hasPrefix("<svg") || (trimmed.hasPrefix("<?xml") && lower.contains("<svg")) || lower.contains("<svg ") {
            return "image/svg+xml"
        }
        for tag in ["<!doctype html", "<html", "<head", "<body", "<script", "<iframe", "<!--"] where trimmed.hasPrefix(tag) {
            return "text/html"
        }
        for tag in ["<script", "<html", "<iframe", "<object", "<embed", "javascript:"] where lower.contains(tag) {
            return "text/html"
        }
        if trimmed.hasPrefix("<?xml") { return "application/xml" }
        return nil
    }

    /// No control characters, and either UTF-8 (a sequence cut at the end is fine) or plausible
    /// GBK/GB18030 (Chinese Windows still writes it): a lead byte 0x81–0xFE, then 0x40–0xFE.
    static func looksLikeText(_ h: [UInt8]) -> Bool {
        for b in h where b == 0 || (b < 0x20 && b != 0x09 && b != 0x0A && b != 0x0D && b != 0x0C && b != 0x1B) {
            return false
        }
        var cut = h.count
        // Drop an incomplete UTF-8 sequence at the end of the sample.
        var i = h.count - 1
        while i >= 0 && i >= h.count - 4 && h[i] & 0xC0 == 0x80 { i -= 1 }
        if i >= 0 && h[i] >= 0xC0 { cut = i }
        if String(validating: h[..<cut], as: UTF8.self) != nil { return true }
        var j = 0
        while j < h.count {
            if h[j] < 0x80 {
                j += 1
            } else if h[j] >= 0x81 && h[j] <= 0xFE {
                if j + 1 == h.count { return true }
                guard (0x40...0xFE).contains(h[j + 1]) || (0x30...0x39).contains(h[j + 1]) else { return false }
                j += 2
            } else {
                return false
            }
        }
        return true
    }

    static func containsASCII(_ h: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard h.count >= n.count else { return false }
        for i in 0...(h.count - n.count) where h[i] == n[0] && Array(h[i..<(i + n.count)]) == n { return true }
        return false
    }

    /// Content a browser could execute if it were served inline.
    public static func isScriptCapable(_ mediaType: String) -> Bool {
        ["text/html", "image/svg+xml", "application/xml", "application/x-shockwave-flash", "text/javascript"].contains(mediaType)
    }

    static let documents: Set<String> = [
        "application/pdf", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation", "application/epub+zip", "application/rtf",
        "text/plain", "text/markdown", "text/csv", "application/json",
    ]
    static let packages: Set<String> = ["application/zip", "application/x-7z-compressed", "application/vnd.rar", "application/gzip"]
    static let images: Set<String> = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/heic", "image/avif"]

    /// The per-resource-type allow-list for a file's role. Nil when allowed, otherwise a reason.
    public static func refusal(mediaType: String, resourceType: ResourceType, role: FileRole) -> String? {
        let isVideo = mediaType.hasPrefix("video/")
        let isAudio = mediaType.hasPrefix("audio/")
        let isImage = images.contains(mediaType)
        if isScriptCapable(mediaType) && role != .attachment {
            return "\(mediaType) content (HTML, SVG, scripts) is not accepted as a \(role.rawValue) file"
        }
        let ok: Bool
        switch role {
        case .cover: ok = isImage
        case .subtitle: ok = ["text/vtt", "application/x-subrip", "text/plain"].contains(mediaType)
        case .attachment: ok = true
        case .primary:
            switch resourceType {
            case .video, .microLecture: ok = isVideo
            case .audio: ok = isAudio
            case .image: ok = isImage
            case .animation: ok = isVideo || mediaType == "image/gif" || mediaType == "image/webp" || packages.contains(mediaType)
            case .slides: ok = documents.contains(mediaType)
            case .text, .document, .paper, .question, .case: ok = documents.contains(mediaType) || isImage
            case .lecture: ok = documents.contains(mediaType) || isVideo || isAudio
            case .virtualSimulation, .courseware: ok = packages.contains(mediaType) || documents.contains(mediaType) || isVideo
            case .other: ok = mediaType != "application/x-shockwave-flash"
            }
        }
        return ok ? nil : "a \(resourceType.rawValue) resource does not accept \(mediaType) as its \(role.rawValue) file"
    }
}
