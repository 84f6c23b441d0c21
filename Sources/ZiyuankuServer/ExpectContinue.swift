import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` (curl sends it for bodies over 1 MiB and otherwise waits a
/// second before sending). A body whose Content-Length is over the limit gets no 100: the
/// route refuses it with 413 before a byte of it is sent. Never while an earlier pipelined
/// response is still being written.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    let maxBodyBytes: Int64
    let clock: ConnectionClock

    init(maxBodyBytes: Int64, clock: ConnectionClock) {
        self.maxBodyBytes = maxBodyBytes
        self.clock = clock
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), let expect = head.headerFields[.expect],
            expect.lowercased() == "100-continue"
        {
            let declared = head.headerFields[.contentLength].flatMap { Int64($0) } ?? 0
            // Only when no earlier response is still being sent on this connection (pipelined
            // requests): a 100 written now would land inside that response's body. The client
            // then sends its body after its own short wait, as RFC 9110 §10.1.1 lets it.
            if declared <= maxBodyBytes && clock.pending <= 1 {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        }
        context.fireChannelRead(data)
    }
}
