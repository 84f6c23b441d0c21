import Foundation
import ZiyuankuCore
import ZiyuankuStore

/// Organizations, users and tokens, and who may manage which, for every surface.
public struct AccountService: Sendable {
    let catalog: any AccountRepository
    let maxTokensPerUser: Int

    /// The caller a bearer token names, or nil when it is not a valid, unexpired, unrevoked
    /// token of an enabled user.
    public func authenticate(token: String) throws -> Principal? { try catalog.authenticate(token: token, now: Date()) }

    public func organizations() throws -> [Organization] { try catalog.organizations() }

    /// An organization by its id or its exact name; `notFound` otherwise.
    public func organization(_ ref: String) throws -> Organization {
        if Identifiers.isUUID(ref), let o = try catalog.organization(id: ref) { return o }
        if let o = try catalog.organization(named: ref) { return o }
        throw DomainError(.notFound, "No organization has the id or exact name '\(ref.prefix(200))'.")
    }

    /// `{name, kind}`; administrators only.
    public func createOrganization(_ object: [String: JSONValue], as actor: AdminActor) throws -> Organization {
        let by = try actor.authorize()
        var f = FieldReader(object: object)
        var errors = FieldReader.unknownFields(in: object, allowed: ["name", "kind"])
        let name = f.text("name", required: true, max: 200)
        let kind: OrganizationKind? = f.enumValue("kind", required: true)
        errors += f.errors
        guard errors.isEmpty, let name, let kind else { throw DomainError.validation(errors) }
        return try catalog.createOrganization(name: name, kind: kind, actor: by)
    }

    /// Everyone, or the users of one organization; administrators only.
    public func users(organizationId: String?, as actor: AdminActor) throws -> [User] {
        _ = try actor.authorize()
        return try catalog.users(organizationId: organizationId)
    }

    /// `{organizationId, name, role}`; administrators only. The new user's first token is
    /// returned once (only its digest is stored).
    public func createUser(_ object: [String: JSONValue], as actor: AdminActor) throws -> (user: User, token: IssuedToken) {
        let by = try actor.authorize()
        var f = FieldReader(object: object)
        var errors = FieldReader.unknownFields(in: object, allowed: ["organizationId", "name", "role"])
        let org = f.text("organizationId", required: true, max: 36)
        let name = f.text("name", required: true, max: 100)
        let role: Role? = f.enumValue("role", required: true)
        errors += f.errors
        if let org, !Identifiers.isUUID(org) { errors.append(.init(field: "organizationId", message: "must be an organization id")) }
        guard errors.isEmpty, let org, let name, let role else { throw DomainError.validation(errors) }
        return try catalog.createUser(organizationId: org, name: name, role: role, tokenLabel: "initial", actor: by)
    }

    /// Administrators list anyone's tokens (or all); others only their own.
    public func tokens(by p: Principal, userId: String?) throws -> [TokenInfo] {
        if p.role == .admin { return try tokens(userId: userId, as: .principal(p)) }
        if let userId, userId != p.userId { throw DomainError.forbidden("You may list only your own tokens.") }
        return try catalog.tokens(userId: p.userId)
    }

    /// Anyone's tokens (or all), without their secrets; administrators only.
    public func tokens(userId: String?, as actor: AdminActor) throws -> [TokenInfo] {
        _ = try actor.authorize()
        return try catalog.tokens(userId: userId)
    }

    /// `{userId?, label?, expiresInDays?}`: a token for oneself, or (administrators) for anyone,
    /// within the per-user cap of live tokens.
    public func issueToken(by p: Principal, _ object: [String: JSONValue]) throws -> IssuedToken {
        try issueToken(object, requester: p.userId, mayIssueForOthers: p.role == .admin, actorId: p.userId)
    }

    /// `{userId, label?, expiresInDays?}`: a token for any user; administrators only.
    public func issueToken(_ object: [String: JSONValue], as actor: AdminActor) throws -> IssuedToken {
        let by = try actor.authorize()
        guard object["userId"] != nil else { throw DomainError.validation([.init(field: "userId", message: "is required")]) }
        return try issueToken(object, requester: nil, mayIssueForOthers: true, actorId: by)
    }

    private func issueToken(_ object: [String: JSONValue], requester: String?, mayIssueForOthers: Bool, actorId: String?) throws -> IssuedToken {
        var f = FieldReader(object: object)
        var errors = FieldReader.unknownFields(in: object, allowed: ["userId", "label", "expiresInDays"])
        let given = f.text("userId", required: false, max: 36)
        let label = f.text("label", required: false, max: 100) ?? ""
        let days = f.integer("expiresInDays", required: false, range: 1...3650)
        errors += f.errors
        guard errors.isEmpty, let userId = given ?? requester else { throw DomainError.validation(errors) }
        if userId != requester && !mayIssueForOthers { throw DomainError.forbidden("Only administrators may issue tokens for other users.") }
        guard Identifiers.isUUID(userId), try catalog.user(id: userId) != nil else { throw DomainError.notFound("user") }
        return try catalog.issueToken(
            userId: userId, label: label, expiresAt: days.map { Date().addingTimeInterval(Double($0) * 86400) }, actor: actorId, maxLive: maxTokensPerUser)
    }

    /// One's own token, or (administrators) anyone's; someone else's token is not found.
    public func revokeToken(by p: Principal, id: String) throws {
        guard Identifiers.isUUID(id), let t = try catalog.token(id: id), p.role == .admin || t.userId == p.userId else {
            throw DomainError.notFound("token")
        }
        _ = try catalog.revokeToken(id: id, actor: p.userId)
    }

    /// Any token; administrators only. Returns false when it was already revoked.
    public func revokeToken(id: String, as actor: AdminActor) throws -> Bool {
        let by = try actor.authorize()
        guard Identifiers.isUUID(id), try catalog.token(id: id) != nil else { throw DomainError.notFound("token") }
        return try catalog.revokeToken(id: id, actor: by)
    }

    /// Loads an official list of majors (CSV with the catalog's columns): new codes are added,
    /// changed names updated; a file with a bad row changes nothing (`MajorCatalogCSV.RowErrors`).
    public func importMajors(
        csv: [UInt8], source: String, dryRun: Bool, as actor: AdminActor, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> Catalog.MajorCatalogImport {
        _ = try actor.authorize()
        return try catalog.importMajorCatalog(csv: csv, source: source, dryRun: dryRun, batchSize: 200, progress: progress)
    }

    /// The majors vocabulary, filtered; `prefix` is the start of a code, `itemLevel` one of
    /// category, class, major.
    public func majors(level: EducationLevel?, prefix: String?, itemLevel: String?, page: Int, pageSize: Int) throws -> (items: [Major], total: Int) {
        var errors: [FieldError] = []
        if let prefix, !(prefix.count <= 7 && prefix.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "K") })) {
            errors.append(.init(field: "prefix", message: "must be the start of a major code (digits)"))
        }
        if let itemLevel, !["category", "class", "major"].contains(itemLevel) {
            errors.append(.init(field: "itemLevel", message: "must be one of: category, class, major"))
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return try catalog.majors(level: level, prefix: prefix, itemLevel: itemLevel, limit: pageSize, offset: (page - 1) * pageSize)
    }
}

extension Library {
    public var accounts: AccountService { AccountService(catalog: catalog, maxTokensPerUser: config.maxTokensPerUser) }
}
