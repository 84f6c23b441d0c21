import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization
import ZiyuankuCore
import ZiyuankuLibrary

/// The connections the server holds, shared by all event loops.
final class ConnectionRegistry: Sendable {
    struct Entry {
        let channel: any Channel
        /// When the connection last became idle (no request in progress); nil while busy.
        var idleSince: NIODeadline?
    }

    let limit: Int
    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    init(limit: Int) { self.limit = max(1, limit) }

    var count: Int { entries.withLock { $0.count } }

    /// Registers a new connection. When the server is full, the longest-idle connection is
    /// closed to make room; false when every connection is busy (the caller refuses this one).
    func admit(_ channel: any Channel) -> Bool {
        let victim: (any Channel)? = entries.withLock { e in
            var victim: (any Channel)?
            if e.count >= limit {
                guard let oldest = e.filter({ $0.value.idleSince != nil }).min(by: { $0.value.idleSince! < $1.value.idleSince! }) else {
                    return nil
                }
                victim = oldest.value.channel
                e[oldest.key] = nil
            }
            e[ObjectIdentifier(channel)] = Entry(channel: channel, idleSince: .now())
            return victim
        }
        if let victim {
            victim.close(promise: nil)
            return true
        }
        return entries.withLock { $0[ObjectIdentifier(channel)] != nil }
    }

    func setIdle(_ channel: any Channel, _ idle: Bool) {
        entries.withLock { e in
            let key = ObjectIdentifier(channel)
            guard e[key] != nil else { return }
            let since = e[key]?.idleSince
            e[key]?.idleSince = idle ? (since ?? .now()) : nil
        }
    }

    func remove(_ channel: any Channel) {
        _ = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// The per-connection clock, shared by the two handlers that see the connection: the byte
/// level (reads, and when the server asks for more) and the message level (request heads and
/// ends, response ends). Lives on the connection's event loop.
final class ConnectionClock {
    let limits: ConnectionLimits
    let registry: ConnectionRegistry
    let logger: Logger
    var channel: (any Channel)?

    /// When the first byte of the next request head arrived (nil: none yet).
    var headStartedAt: NIODeadline?
    /// Between a request's head and its end: what arrives is body, not a head.
    var inBody = false
    /// Requests whose head arrived and whose response has not ended.
    var pending = 0
    var lastActivity = NIODeadline.now()
    /// Body rate: bytes and waiting time in the current window; when the server asked for bytes.
    var windowBytes = 0
    var windowWaited: Int64 = 0
    var waitingSince: NIODeadline?
    var timer: RepeatedTask?
    /// Since when the client has not taken what the server writes (the socket's buffer is full).
    var unwritableSince: NIODeadline?

    init(limits: ConnectionLimits, registry: ConnectionRegistry, logger: Logger) {
        self.limits = limits
        self.registry = registry
        self.logger = logger
    }

    var isIdle: Bool { pending == 0 && !inBody }

    func updateIdle() {
        if let channel { registry.setIdle(channel, isIdle) }
    }

    func start(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let (clock, context) = bound.value
            clock.tick(context)
        }
    }

    func stop() {
        timer?.cancel()
        timer = nil
        byteContext = nil
        if let channel { registry.remove(channel) }
    }

    func bytesRead(_ n: Int) {
        let now = NIODeadline.now()
        lastActivity = now
        if let w = waitingSince {
            windowWaited += (now - w).nanoseconds
            waitingSince = nil
        }
        if inBody { windowBytes += n }
        if !inBody && headStartedAt == nil { headStartedAt = now }
    }

    func readRequested() {
        if waitingSince == nil { waitingSince = .now() }
    }

    func headReceived() {
        headStartedAt = nil
        inBody = true
        pending += 1
        windowBytes = 0
        windowWaited = 0
        updateIdle()
    }

    func requestEnded() {
        inBody = false
        updateIdle()
    }

    func responseEnded() {
        pending = max(0, pending - 1)
        lastActivity = .now()
        updateIdle()
    }

    /// The byte-level context (the first handler's), where whole responses are written raw.
    var byteContext: ChannelHandlerContext?

    /// Writes a problem as a whole response below the HTTP codec, then closes the connection.
    func answer(_ context: ChannelHandlerContext, _ problem: DomainError) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(HTTPProblem(problem, headers: []).wireResponse())).whenComplete { _ in bound.value.close(promise: nil) }
    }

    func tick(_ context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        // A client that reads nothing of its response for the idle timeout is dropped: a
        // download nobody takes must not hold a connection (and its file) forever.
        if let since = unwritableSince, now - since >= TimeAmount(limits.idleTimeout) {
            logger.notice("closing a connection whose client stopped reading its response")
            context.close(promise: nil)
            return
        }
        if inBody && limits.minBodyBytesPerSecond > 0 {
            var waited = windowWaited
            if let w = waitingSince { waited += (now - w).nanoseconds }
            let windowNanos = TimeAmount(limits.rateWindow).nanoseconds
            if waited >= windowNanos {
                let needed = Int64(limits.minBodyBytesPerSecond) * max(1, windowNanos / 1_000_000_000)
                if Int64(windowBytes) < needed {
                    logger.notice(
                        "closing a connection whose request body arrives too slowly",
                        metadata: [
                            "bytes": "\(windowBytes)", "seconds": "\(waited / 1_000_000_000)",
                        ])
                    context.close(promise: nil)
                    return
                }
                windowBytes = 0
                windowWaited = 0
                if waitingSince != nil { waitingSince = now }
            }
        } else if pending == 0, let started = headStartedAt {
            if now - started >= TimeAmount(limits.headerTimeout) {
                logger.notice("closing a connection whose request head did not arrive in time")
                answer(
                    context,
                    DomainError(
                        .requestTimeout, "The request head did not arrive within \(limits.headerTimeout.components.seconds) s; the connection is closed."))
                headStartedAt = nil
                return
            }
        } else if isIdle, now - lastActivity >= TimeAmount(limits.idleTimeout) {
            context.close(promise: nil)
        }
    }
}

extension TimeAmount {
    init(_ d: Duration) {
        let (s, atto) = d.components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        self = overflow ? .nanoseconds(.max) : .nanoseconds(ns &+ atto / 1_000_000_000)
    }
}

/// First in the pipeline: admits the connection (or answers 503), and feeds the clock with
/// every read and every request for more bytes.
final class ConnectionByteGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let clock: ConnectionClock
    private var refused = false

    init(clock: ConnectionClock) { self.clock = clock }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context)
        context.fireChannelActive()
    }

    private var decided = false

    private func admit(_ context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        clock.byteContext = context
        if clock.registry.admit(context.channel) {
            clock.channel = context.channel
            clock.start(context)
            return
        }
        refused = true
        clock.logger.warning("refusing a connection: every one of the \(clock.registry.limit) allowed connections is busy")
        clock.answer(context, DomainError(.unavailable, "The server is at its connection limit; try again in a few seconds.", retryAfterSeconds: 5))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }  // nothing a refused connection sends is read
        clock.bytesRead(unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }

    /// A read asked for while the client was not taking its responses.
    private var heldRead = false

    /// Nothing more is read from a client that does not read what it is sent: pipelined
    /// requests would otherwise pile up their responses in the server's memory.
    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            heldRead = true
            return
        }
        clock.readRequested()
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        clock.unwritableSince = writable ? nil : (clock.unwritableSince ?? .now())
        context.fireChannelWritabilityChanged()
        if writable && heldRead {
            heldRead = false
            clock.readRequested()
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        clock.stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clock.stop()
    }
}

/// After the HTTP codec: tells the clock where requests and responses begin and end.
final class ConnectionMessageGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let clock: ConnectionClock

    init(clock: ConnectionClock) { self.clock = clock }

    /// Requests a client may send ahead of their answers (HTTP/1.1 pipelining); past it the
    /// connection is closed. Browsers do not pipeline; a client that sends thousands of
    /// requests without reading an answer only wants the server to hold them.
    static let maxPipelined = 16

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            clock.headReceived()
            // `Connection: close` in any spelling (`Close`, `keep-alive, close`, repeated): the
            // connection ends with this request's answer, which says so.
            if !closeAfterResponse,
                head.headerFields[values: .connection].contains(where: { value in
                    value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }
                })
            {
                closeAfterResponse = true
            }
            if clock.pending > Self.maxPipelined {
                clock.logger.notice("closing a connection with more than \(Self.maxPipelined) requests waiting for their answers")
                context.close(promise: nil)
                return
            }
        case .end: clock.requestEnded()
        case .body: break
        }
        context.fireChannelRead(data)
    }

    /// A request head that cannot be parsed (conflicting lengths, an unknown transfer coding,
    /// a broken head) gets a problem document like every other error, then the connection
    /// closes: after a framing error nothing more on it can be trusted.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else { return context.fireErrorCaught(error) }
        // Mid-request the route sees the error in the body it reads and answers it itself.
        guard clock.pending == 0, !clock.inBody else { return context.fireErrorCaught(error) }
        guard !answeredParseError else { return }
        answeredParseError = true
        guard let byteContext = clock.byteContext else { return context.close(promise: nil) }
        clock.answer(
            byteContext,
            DomainError(
                .badRequest,
                "The request's bytes could not be read as HTTP/1.1 (for example both Content-Length and Transfer-Encoding, two different lengths, or a transfer coding other than chunked); the connection is closed."
            ))
    }

    private var answeredParseError = false

    private var closeAfterResponse = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where closeAfterResponse && head.status.code >= 200:
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            let bound = NIOLoopBound((clock, context), eventLoop: context.eventLoop)
            let close = closeAfterResponse
            let p = promise ?? context.eventLoop.makePromise()
            p.futureResult.whenComplete { _ in
                let (clock, context) = bound.value
                clock.responseEnded()
                if close { context.close(promise: nil) }
            }
            context.write(data, promise: p)
        default:
            context.write(data, promise: promise)
        }
    }
}

extension ConnectionLimits {
    /// Raises this process's open-file limit to its hard limit and returns how many
    /// connections fit under it, keeping `reserve` descriptors for the catalog, blob files,
    /// converters and logs.
    public static func connectionsAllowedByFileLimit(reserve: Int = 128) -> Int {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return Int.max }
        if rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { rl = raised }
        }
        let soft = rl.rlim_cur == rlim_t.max ? UInt64(Int.max) : UInt64(rl.rlim_cur)
        return Int(clamping: soft) > reserve + 16 ? Int(clamping: soft) - reserve : 16
    }
}
