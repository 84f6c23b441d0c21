import Hummingbird
import Logging
import ZiyuankuStore

/// Per-request context: who is asking (nil for anonymous).
public struct ZykContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?

    public init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
    }

    /// Bodies are streamed by the handlers that need them; this only bounds `collateBody`.
    public var maxUploadSize: Int { 1 << 20 }
}
