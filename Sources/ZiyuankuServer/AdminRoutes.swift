import Foundation
import Hummingbird
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Organizations, users, tokens, the caller, and the majors vocabulary.
struct AdminRoutes {
    let services: AppServices
    var accounts: AccountService { services.library.accounts }
    var limit: Int { services.config.maxJSONBytes }

    func register(_ r: Routes) {
        r.on(.get, "/v1/me") { _, ctx in
            let p = try ctx.requireUser()
            return try JSONResponse.make(
                ["id": p.userId, "name": p.name, "role": p.role.rawValue, "organizationId": p.organizationId, "tokenId": p.tokenId])
        }

        r.on(.get, "/v1/organizations") { req, _ in
            try QueryReader(req, allowed: []).check()
            return try JSONResponse.make(["items": try accounts.organizations()])
        }
        r.on(.post, "/v1/organizations") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            let body = try await BodyReader.jsonObject(req, limit: limit)
            return try JSONResponse.make(try accounts.createOrganization(body, as: actor), status: .created)
        }

        r.on(.get, "/v1/users") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            var q = QueryReader(req, allowed: ["organizationId"])
            let org = q.uuid("organizationId")
            try q.check()
            return try JSONResponse.make(["items": try accounts.users(organizationId: org, as: actor)])
        }
        r.on(.post, "/v1/users") { req, ctx in
            let actor = try AdminActor.admin(ctx.requireUser())
            let body = try await BodyReader.jsonObject(req, limit: limit)
            let (user, token) = try accounts.createUser(body, as: actor)
            return try JSONResponse.make(UserCreated(user: user, token: token.secret, tokenId: token.info.id), status: .created)
        }

        r.on(.get, "/v1/tokens") { req, ctx in
            let p = try ctx.requireUser()
            var q = QueryReader(req, allowed: ["userId"])
            let userId = q.uuid("userId")
            try q.check()
            return try JSONResponse.make(["items": try accounts.tokens(by: p, userId: userId)])
        }
        r.on(.post, "/v1/tokens") { req, ctx in
            let p = try ctx.requireUser()
            let body = try await BodyReader.jsonObject(req, limit: limit)
            let token = try accounts.issueToken(by: p, body)
            return try JSONResponse.make(TokenCreated(token: token.secret, info: token.info), status: .created)
        }
        r.on(.delete, "/v1/tokens/:id") { _, ctx in
            try accounts.revokeToken(by: try ctx.requireUser(), id: try ctx.parameters.require("id"))
            return Response(status: .noContent)
        }

        r.on(.get, "/v1/majors") { req, _ in
            var q = QueryReader(req, allowed: ["level", "prefix", "itemLevel", "page", "pageSize"])
            let level: EducationLevel? = q.enumValue("level")
            let prefix = q.string("prefix", maxLength: 7)
            let itemLevel = q.string("itemLevel", maxLength: 10)
            let page = q.int("page", default: 1, range: 1...100_000)
            let size = q.int("pageSize", default: 100, range: 1...1000)
            try q.check()
            let (items, total) = try accounts.majors(level: level, prefix: prefix, itemLevel: itemLevel, page: page, pageSize: size)
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
