import Foundation
import Hummingbird
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Resolves `Authorization: Bearer …` into the principal. No header: anonymous. A header that
/// is present but not a valid, unexpired, unrevoked token: 401 — never silently anonymous.
struct AuthMiddleware: Sendable {
    let accounts: AccountService

    func principal(for request: Request) throws -> Principal? {
        guard let header = request.headers[.authorization] else { return nil }
        let invalid = DomainError(
            .unauthorized, "The bearer token is invalid, expired or revoked."
        )
        .with(headers: [("WWW-Authenticate", "Bearer realm=\"ziyuanku\", error=\"invalid_token\"")])
        guard let token = Self.bearerCredential(header) else {
            throw DomainError(
                .unauthorized, "Only bearer tokens are accepted: Authorization: Bearer zyk_…")
        }
        guard let principal = try accounts.authenticate(token: token) else { throw invalid }
        return principal
    }
}

extension AuthMiddleware {
    /// The credential of `Authorization: Bearer …` (scheme case-insensitive), or nil for
    /// another scheme.
    static func bearerCredential(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }
}

extension ZykContext {
    /// The caller, or 401.
    func requireUser() throws -> Principal {
        guard let p = principal else { throw DomainError.unauthorized }
        return p
    }

    func requireAdmin() throws -> Principal {
        try requireUser().requireAdmin()
    }

    func requireAuthor() throws -> Principal {
        try requireUser().requireAuthor()
    }
}
