import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import ZiyuankuCore
import ZiyuankuServer

/// The application over a real socket (`.live`: the server's own HTTP/1 channel on an
/// ephemeral loopback port), for what `.router` never reaches: the server's configuration and
/// the wire framing of answers on one keep-alive connection. (Raw UTF-8 request targets, which
/// the channel percent-encodes, cannot be sent through HummingbirdTesting's client: NIO's
/// request validator refuses them before they leave; Tests/process covers them.)
@Suite struct LiveChannelTests {
    @Test func downloadsAreFramedOnTheWire() async throws {
        let env = try TestEnv()
        try await env.test(.live) { client in
            let port = try #require(client.port)
            #expect(port > 0 && port != 8080, "an ephemeral port, not the configured default")
            let id = try await client.createResource(env)["id"] as! String
            try await client.publish(env, id)
            let path = "/v1/resources/\(id)/files/\(percentEncoded("康复训练示范.mp4"))"
            let video = Fixtures.video(4096)
            // HEAD: the length of the body it does not send. A body sent anyway would be read as
            // the start of the next answer on this connection.
            let head = try await client.execute(uri: path, method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == "4096")
            #expect(head.body.readableBytes == 0)
            #expect(head.headers[.server] == "ziyuanku", "the server name buildApplication configures")
            let part = try await client.execute(uri: path, method: .get, headers: [.range: "bytes=100-199"])
            #expect(part.status == .partialContent)
            #expect(part.bytes == Array(video[100...199]))
            let whole = try await client.execute(uri: path, method: .get)
            #expect(whole.status == .ok && whole.bytes == video)
        }
    }
}
