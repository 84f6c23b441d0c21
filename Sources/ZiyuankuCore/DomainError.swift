/// Every error a user can see, from any surface (HTTP, CLI, web pages): a stable code, a
/// message in plain words and the fields at fault. It says nothing about transports: the server
/// maps codes to HTTP statuses and problem documents in one table (`ProblemMapping`), the CLI
/// maps them to exit codes in another. Shaped as a struct around a code so new codes do not
/// break callers.
public struct DomainError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case badRequest = "bad-request"
        case malformedJSON = "malformed-json"
        case malformedMultipart = "malformed-multipart"
        case validation = "validation-failed"
        case unsupportedMediaType = "unsupported-media-type"
        case fileTypeNotAllowed = "file-type-not-allowed"
        case unauthorized = "unauthorized"
        case forbidden = "forbidden"
        case notFound = "not-found"
        case methodNotAllowed = "method-not-allowed"
        case conflict = "conflict"
        case preconditionFailed = "precondition-failed"
        case preconditionRequired = "precondition-required"
        case payloadTooLarge = "payload-too-large"
        case digestMismatch = "digest-mismatch"
        case rangeNotSatisfiable = "range-not-satisfiable"
        case insufficientStorage = "insufficient-storage"
        case unavailable = "service-unavailable"
        case gone = "gone"
        case locked = "locked"
        case checksumMismatch = "checksum-mismatch"
        case requestTimeout = "request-timeout"
        case quotaExceeded = "quota-exceeded"
        case tooManyRequests = "too-many-requests"
        case `internal` = "internal-error"

        public var title: String {
            switch self {
            case .badRequest: "Bad request"
            case .malformedJSON: "Malformed JSON"
            case .malformedMultipart: "Malformed multipart body"
            case .validation: "Validation failed"
            case .unsupportedMediaType: "Unsupported content type"
            case .fileTypeNotAllowed: "File type not allowed"
            case .unauthorized: "Authentication required"
            case .forbidden: "Not allowed"
            case .notFound: "Not found"
            case .methodNotAllowed: "Method not allowed"
            case .conflict: "Conflict"
            case .preconditionFailed: "Precondition failed"
            case .preconditionRequired: "Precondition required"
            case .payloadTooLarge: "Payload too large"
            case .digestMismatch: "Digest mismatch"
            case .rangeNotSatisfiable: "Range not satisfiable"
            case .insufficientStorage: "Insufficient storage"
            case .unavailable: "Service unavailable"
            case .gone: "Gone"
            case .locked: "Locked"
            case .checksumMismatch: "Checksum mismatch"
            case .requestTimeout: "Request timeout"
            case .quotaExceeded: "Quota exceeded"
            case .tooManyRequests: "Too many requests"
            case .internal: "Internal error"
            }
        }

        /// The same title in Chinese, for clients that show problems to teachers directly.
        public var titleZh: String {
            switch self {
            case .badRequest: "请求有误"
            case .malformedJSON: "JSON 格式错误"
            case .malformedMultipart: "multipart 表单格式错误"
            case .validation: "字段校验未通过"
            case .unsupportedMediaType: "不支持的请求内容类型"
            case .fileTypeNotAllowed: "文件类型不被允许"
            case .unauthorized: "需要登录（令牌无效或缺失）"
            case .forbidden: "无权执行此操作"
            case .notFound: "资源不存在"
            case .methodNotAllowed: "不支持该请求方法"
            case .conflict: "状态冲突"
            case .preconditionFailed: "资源已被他人修改"
            case .preconditionRequired: "缺少前置条件"
            case .payloadTooLarge: "文件或请求体过大"
            case .digestMismatch: "文件校验值不符"
            case .rangeNotSatisfiable: "请求的字节范围无效"
            case .insufficientStorage: "存储空间不足"
            case .unavailable: "服务暂不可用"
            case .gone: "已过期或已删除"
            case .locked: "另一个请求正在写入"
            case .checksumMismatch: "校验和不一致，本段数据已丢弃"
            case .requestTimeout: "请求超时"
            case .quotaExceeded: "超出配额"
            case .tooManyRequests: "请求过于频繁，请稍后再试"
            case .internal: "服务器内部错误"
            }
        }

    }

    public var code: Code
    /// What went wrong and what to do about it, in plain words.
    public var message: String
    /// The input fields at fault, each with its own message.
    public var fields: [FieldError]
    /// Facts a client can act on (e.g. `limit`, `currentStatus`, `allowedActions`).
    public var extra: [String: JSONValue]
    /// When the condition is temporary: how long to wait before trying again.
    public var retryAfterSeconds: Int?

    public init(_ code: Code, _ message: String, fields: [FieldError] = [], extra: [String: JSONValue] = [:], retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.fields = fields
        self.extra = extra
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public static func validation(_ errors: [FieldError], detail: String? = nil) -> DomainError {
        let names = errors.map(\.field).filter { !$0.isEmpty }
        let listed = names.prefix(20).joined(separator: ", ") + (names.count > 20 ? ", …" : "")
        return DomainError(
            .validation, detail ?? "\(errors.count) field\(errors.count == 1 ? "" : "s") failed validation: \(listed)",
            fields: errors)
    }
    public static func notFound(_ what: String = "resource") -> DomainError { DomainError(.notFound, "No such \(what), or you may not see it.") }
    public static let unauthorized = DomainError(.unauthorized, "This action needs a valid bearer token (Authorization: Bearer zyk_…).")
    public static func forbidden(_ detail: String) -> DomainError { DomainError(.forbidden, detail) }
}
