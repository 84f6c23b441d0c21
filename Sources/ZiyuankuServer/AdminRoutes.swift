import Foundation
import Hummingbird
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Organizations, users, tokens, the caller, and the majors vocabulary.
struct AdminRoutes {
    let services: AppServices
    var catalog: Catalog { services.catalog }
    var limit: Int { services.config.maxJSONBytes }

    func register(_ r: Routes) {
        r.on(.get, "/v1/me") { _, ctx in
            let p = try ctx.requireUser()
            return try JSONResponse.make(
                ["id": p.userId, "name": p.name, "role": p.role.rawValue, "organizationId": p.organizationId, "tokenId": p.tokenId])
        }

        r.on(.get, "/v1/organizations") { req, _ in
            try QueryReader(req, allowed: []).check()
            return try JSONResponse.make(["items": try catalog.organizations()])
        }
        r.on(.post, "/v1/organizations") { req, ctx in
            let admin = try ctx.requireAdmin()
            let body = try await BodyReader.jsonObject(req, limit: limit)
            var f = FieldReader(object: body)
            var errors = body.keys.filter { !["name", "kind"].contains($0) }.sorted().map { FieldError(field: $0, message: "unknown field") }
            let name = f.text("name", required: true, max: 200)
            let kind: OrganizationKind? = f.enumValue("kind", required: true)
            errors += f.errors
            guard errors.isEmpty, let name, let kind else { throw DomainError.validation(errors) }
            return try JSONResponse.make(try catalog.createOrganization(name: name, kind: kind, actor: admin.userId), status: .created)
        }

        r.on(.get, "/v1/users") { req, ctx in
            _ = try ctx.requireAdmin()
            var q = QueryReader(req, allowed: ["organizationId"])
            let org = q.uuid("organizationId")
            try q.check()
            return try JSONResponse.make(["items": try catalog.users(organizationId: org)])
        }
        r.on(.post, "/v1/users") { req, ctx in
            let admin = try ctx.requireAdmin()
            let body = try await BodyReader.jsonObject(req, limit: limit)
            var f = FieldReader(object: body)
            var errors = body.keys.filter { !["organizationId", "name", "role"].contains($0) }.sorted().map {
                FieldError(field: $0, message: "unknown field")
            }
            let org = f.text("organizationId", required: true, max: 36)
            let name = f.text("name", required: true, max: 100)
            let role: Role? = f.enumValue("role", required: true)
            errors += f.errors
            if let org, !Identifiers.isUUID(org) { errors.append(.init(field: "organizationId", message: "must be an organization id")) }
            guard errors.isEmpty, let org, let name, let role else { throw DomainError.validation(errors) }
            let (user, token) = try catalog.createUser(organizationId: org, name: name, role: role, actor: admin.userId)
            return try JSONResponse.make(UserCreated(user: user, token: token.secret, tokenId: token.info.id), status: .created)
        }

        r.on(.get, "/v1/tokens") { req, ctx in
            let p = try ctx.requireUser()
            var q = QueryReader(req, allowed: ["userId"])
            let userId = q.uuid("userId")
            try q.check()
            if p.role == .admin { return try JSONResponse.make(["items": try catalog.tokens(userId: userId)]) }
            if let userId, userId != p.userId { throw DomainError.forbidden("You may list only your own tokens.") }
            return try JSONResponse.make(["items": try catalog.tokens(userId: p.userId)])
        }
        r.on(.post, "/v1/tokens") { req, ctx in
            let p = try ctx.requireUser()
            let body = try await BodyReader.jsonObject(req, limit: limit)
            var f = FieldReader(object: body)
            var errors = body.keys.filter { !["userId", "label", "expiresInDays"].contains($0) }.sorted().map {
                FieldError(field: $0, message: "unknown field")
            }
            let userId = f.text("userId", required: false, max: 36) ?? p.userId
            let label = f.text("label", required: false, max: 100) ?? ""
            let days = f.integer("expiresInDays", required: false, range: 1...3650)
            errors += f.errors
            guard errors.isEmpty else { throw DomainError.validation(errors) }
            if userId != p.userId && p.role != .admin { throw DomainError.forbidden("Only administrators may issue tokens for other users.") }
            guard Identifiers.isUUID(userId), try catalog.user(id: userId) != nil else { throw DomainError.notFound("user") }
            let token = try catalog.issueToken(
                userId: userId, label: label, expiresAt: days.map { Date().addingTimeInterval(Double($0) * 86400) }, actor: p.userId,
                maxLive: services.config.maxTokensPerUser)
            return try JSONResponse.make(TokenCreated(token: token.secret, info: token.info), status: .created)
        }
        r.on(.delete, "/v1/tokens/:id") { _, ctx in
            let p = try ctx.requireUser()
            let id = try ctx.parameters.require("id")
            guard Identifiers.isUUID(id), let t = try catalog.token(id: id), p.role == .admin || t.userId == p.userId else {
                throw DomainError.notFound("token")
            }
            _ = try catalog.revokeToken(id: id, actor: p.userId)
            return Response(status: .noContent)
        }

        r.on(.get, "/v1/majors") { req, _ in
            var q = QueryReader(req, allowed: ["level", "prefix", "itemLevel", "page", "pageSize"])
            let level: EducationLevel? = q.enumValue("level")
            let prefix = q.string("prefix", maxLength: 7)
            if let prefix, !(prefix.count <= 7 && prefix.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "K") })) {
                q.errors.append(.init(field: "prefix", message: "must be the start of a major code (digits)"))
            }
            let itemLevel = q.string("itemLevel", maxLength: 10)
            if let itemLevel, !["category", "class", "major"].contains(itemLevel) {
                q.errors.append(.init(field: "itemLevel", message: "must be one of: category, class, major"))
            }
            let page = q.int("page", default: 1, range: 1...100_000)
            let size = q.int("pageSize", default: 100, range: 1...1000)
            try q.check()
            let (items, total) = try catalog.majors(level: level, prefix: prefix, itemLevel: itemLevel, limit: size, offset: (page - 1) * size)
            return try JSONResponse.make(MajorPage(items: items, total: total, page: page, pageSize: size))
        }
    }
}

struct UserCreated: Encodable {
    var user: User
    /// Shown once; only its digest is stored.
    var token: String
    var tokenId: String
}

struct TokenCreated: Encodable {
    var token: String
    var info: TokenInfo
}

struct MajorPage: Encodable {
    var items: [Major]
    var total: Int
    var page: Int
    var pageSize: Int
}
