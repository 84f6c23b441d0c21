import Hummingbird
import Logging
import ZiyuankuStore

/// Per-request context: who is asking (nil for anonymous).
public struct ZykContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    /// The client's address, when the transport knows it (for counting anonymous downloads).
    public var remoteAddress: String?

    public init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
        remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Who is downloading, for counting repeats once: the token, else address and user agent.
    func clientKey(_ req: Request) -> String {
        if let p = principal { return "token:" + p.tokenId }
        return "anon:" + (remoteAddress ?? "?") + "|" + (req.headers[.userAgent] ?? "")
    }

    /// Bodies are streamed by the handlers that need them; this only bounds `collateBody`.
    public var maxUploadSize: Int { 1 << 20 }
}
