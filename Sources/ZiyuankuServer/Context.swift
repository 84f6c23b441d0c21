import Foundation
import Hummingbird
import Logging
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuStore

/// Per-request context: who is asking (nil for anonymous).
public struct ZykContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    /// The peer's address, when the transport knows it.
    public var remoteAddress: String?
    /// The client's address: the peer's, or the one a trusted proxy forwarded
    /// (`trusted_proxies`); set by the front middleware.
    public var clientAddress: String?
    /// The scheme the client used: `https` when a trusted proxy says so.
    public var forwardedProto: String?
    /// Who the caller turned out to be, for the access log: set by the auth middleware and
    /// shared by every copy of this context (as `endpointPath` is), so a middleware outside
    /// the auth middleware sees it.
    let caller = Caller()

    public init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
        remoteAddress = source.channel.remoteAddress?.ipAddress
        clientAddress = remoteAddress
    }

    /// Who is downloading, for counting repeats once and for limits: the signed-in user, else
    /// the client's address (a school behind one NAT address is one anonymous client). Headers
    /// a client chooses freely, such as User-Agent, play no part.
    var clientKey: String {
        if let p = principal { return "user:" + p.userId }
        return "addr:" + (clientAddress ?? "?")
    }

    final class Caller: Sendable {
        private let value = Mutex<String?>(nil)
        var userId: String? {
            get { value.withLock { $0 } }
            set { value.withLock { $0 = newValue } }
        }
    }

    /// Bodies are streamed by the handlers that need them; this only bounds `collateBody`.
    public var maxUploadSize: Int { 1 << 20 }
}
