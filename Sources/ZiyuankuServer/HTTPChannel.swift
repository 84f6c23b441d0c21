import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import ZiyuankuCore
import ZiyuankuLibrary

/// Hummingbird's HTTP/1.1 child channel, plus two things our users need:
/// - request targets with raw UTF-8 (`curl '…?q=康复'` sends the query unescaped, and NIO's
///   strict parser refuses bytes ≥ 0x80) are percent-encoded before parsing;
/// - `Expect: 100-continue` is answered (see `ExpectContinueHandler`).
struct ZykHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let maxBodyBytes: Int64
    let limits: ConnectionLimits
    let registry: ConnectionRegistry

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let clock = ConnectionClock(limits: limits, registry: registry, logger: logger)
            let ops = channel.pipeline.syncOperations
            try ops.addHandler(ConnectionByteGuard(clock: clock))
            try ops.addHandler(RequestTargetEscaper())
            try ops.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: .init())
            try ops.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try ops.addHandler(ConnectionMessageGuard(clock: clock))
            try ops.addHandler(ExpectContinueHandler(maxBodyBytes: maxBodyBytes, clock: clock))
            // Closes idle keep-alive connections on graceful shutdown (as Hummingbird's own channel does).
            try ops.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }

    static func builder(maxBodyBytes: Int64, limits: ConnectionLimits) -> HTTPServerBuilder {
        let registry = ConnectionRegistry(limit: min(limits.maxConnections, ConnectionLimits.connectionsAllowedByFileLimit()))
        return HTTPServerBuilder { responder in
            ZykHTTP1Channel(responder: responder, maxBodyBytes: maxBodyBytes, limits: limits, registry: registry)
        }
    }
}

/// Percent-encodes bytes ≥ 0x80 in each request line (RFC 3986 allows only ASCII there, but
/// clients send UTF-8 raw). Where each request line starts is decided by `HTTPRequestFramer`,
/// which follows the request framing on the wire: bodies, chunks and trailers are never
/// touched, also when requests are pipelined in one write.
final class RequestTargetEscaper: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var framer = HTTPRequestFramer()
    static let hex = Array("0123456789ABCDEF".utf8)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if framer.isPassthrough { return context.fireChannelRead(data) }
        let buffer = unwrapInboundIn(data)
        let escapes = buffer.withUnsafeReadableBytes { framer.feed($0) }
        guard !escapes.isEmpty else { return context.fireChannelRead(data) }
        var out = context.channel.allocator.buffer(capacity: buffer.readableBytes + 2 * escapes.count)
        buffer.withUnsafeReadableBytes { raw in
            var from = 0
            for i in escapes {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[from..<i]))
                let b = raw[i]
                out.writeBytes([UInt8(ascii: "%"), Self.hex[Int(b >> 4)], Self.hex[Int(b & 0xF)]])
                from = i + 1
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[from...]))
        }
        context.fireChannelRead(wrapInboundOut(out))
    }
}
