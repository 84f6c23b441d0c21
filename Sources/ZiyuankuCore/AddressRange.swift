import Foundation

/// An IPv4 or IPv6 address or CIDR range (`127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`), for
/// settings such as `trusted_proxies`. IPv4-mapped IPv6 addresses match their IPv4 form.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// 16 bytes (IPv4 stored as IPv4-mapped IPv6) and the prefix length in that space.
    let bytes: [UInt8]
    let prefix: Int
    public let description: String

    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.utf8.count <= 64 else { return nil }
        let parts = t.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parse(String(parts[0])) else { return nil }
        var prefix = 128
        if parts.count == 2 {
            guard parts[1].utf8.count <= 3, parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let p = Int(parts[1]) else { return nil }
            let isV4 = !parts[0].contains(":")
            guard p <= (isV4 ? 32 : 128) else { return nil }
            prefix = isV4 ? 96 + p : p
        }
        bytes = address
        self.prefix = prefix
        description = t
    }

    /// 16 bytes for an address in either family, nil for anything else.
    public static func parse(_ s: String) -> [UInt8]? {
        guard s.utf8.count <= 45, !s.contains("%") else { return nil }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 {
            return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + withUnsafeBytes(of: &v4) { Array($0) }
        }
        return nil
    }

    public func contains(_ address: String) -> Bool {
        guard let a = Self.parse(address) else { return false }
        var bits = prefix
        for i in 0..<16 where bits > 0 {
            let take = min(8, bits)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if a[i] & mask != bytes[i] & mask { return false }
            bits -= take
        }
        return true
    }
}

extension AddressRange {
    /// The client's address given the trusted proxies: walking `X-Forwarded-For` from the
    /// right, the first address that is not a trusted proxy (RFC 7239 §7.4's reasoning). A
    /// peer that is not trusted is the client, whatever it forwards.
    public static func clientAddress(peer: String?, forwardedFor: String?, trusted: [AddressRange]) -> String? {
        guard let peer, !trusted.isEmpty, trusted.contains(address: peer), let forwardedFor else { return peer }
        let hops = forwardedFor.split(separator: ",").suffix(64).map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard parse(hop) != nil else { break }
            client = hop
            if !trusted.contains(address: hop) { break }
        }
        return client
    }
}

extension Sequence where Element == AddressRange {
    public func contains(address: String) -> Bool { contains { $0.contains(address) } }
}
