import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 child channel, plus two things our users need:
/// - request targets with raw UTF-8 (`curl '…?q=康复'` sends the query unescaped, and NIO's
///   strict parser refuses bytes ≥ 0x80) are percent-encoded before parsing;
/// - `Expect: 100-continue` is answered (see `ExpectContinueHandler`).
struct ZykHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let maxBodyBytes: Int64

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let escaper = RequestTargetEscaper()
            let ops = channel.pipeline.syncOperations
            try ops.addHandler(escaper)
            try ops.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: .init())
            try ops.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try ops.addHandler(RequestEndObserver(escaper: escaper))
            try ops.addHandler(BodyStallGuard(timeout: .seconds(120)))
            try ops.addHandler(ExpectContinueHandler(maxBodyBytes: maxBodyBytes))
            // Closes idle keep-alive connections on graceful shutdown (as Hummingbird's own channel does).
            try ops.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }

    static func builder(maxBodyBytes: Int64) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in ZykHTTP1Channel(responder: responder, maxBodyBytes: maxBodyBytes) }
    }
}

/// Percent-encodes bytes ≥ 0x80 in each request line (RFC 3986 allows only ASCII there, but
/// clients send UTF-8 raw). Only the request line is touched: after its CRLF everything passes
/// through unchanged until the request has ended.
final class RequestTargetEscaper: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var inRequestLine = true
    static let hex = Array("0123456789ABCDEF".utf8)

    func requestEnded() { inRequestLine = true }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard inRequestLine else { return context.fireChannelRead(data) }
        let buffer = unwrapInboundIn(data)
        let view = buffer.readableBytesView
        let lineEnd = view.firstIndex(of: UInt8(ascii: "\n"))
        let line = view[..<(lineEnd ?? view.endIndex)]
        if lineEnd != nil { inRequestLine = false }
        guard line.contains(where: { $0 >= 0x80 }) else { return context.fireChannelRead(data) }
        var out = context.channel.allocator.buffer(capacity: buffer.readableBytes + 64)
        for b in line {
            if b >= 0x80 {
                out.writeBytes([UInt8(ascii: "%"), Self.hex[Int(b >> 4)], Self.hex[Int(b & 0xF)]])
            } else {
                out.writeInteger(b)
            }
        }
        if let lineEnd { out.writeBytes(view[lineEnd...]) }
        context.fireChannelRead(wrapInboundOut(out))
    }
}

/// Tells the escaper when a request has been fully received, so the next request line is escaped.
final class RequestEndObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    let escaper: RequestTargetEscaper

    init(escaper: RequestTargetEscaper) { self.escaper = escaper }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { escaper.requestEnded() }
        context.fireChannelRead(data)
    }
}

/// Closes a connection whose request body stalls: nothing received for `timeout` while a body
/// is still expected (a dropped school network leaves such sockets open, and a resumable upload
/// stays locked by its PATCH until the connection goes). Idle time between requests and slow
/// downloads are not affected.
final class BodyStallGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    let timeout: TimeAmount
    private var inBody = false
    private var lastRead = NIODeadline.now()
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        switch unwrapInboundIn(data) {
        case .head:
            inBody = true
            schedule(context)
        case .end:
            inBody = false
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func schedule(_ context: ChannelHandlerContext) {
        guard check == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds / 4)) {
            let (guardian, context) = bound.value
            guardian.check = nil
            guard guardian.inBody else { return }
            if NIODeadline.now() - guardian.lastRead >= guardian.timeout {
                context.close(promise: nil)
            } else {
                guardian.schedule(context)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }
}
