import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore
import ZiyuankuSync

/// Sync to the national platform (docs/product.md#sync-to-the-national-platform): the outbox in the catalog, the libcurl
/// adapter against a real HTTP server on loopback, and the runner end to end. The process-level
/// reliability checks (R9–R11, the 1 GiB push) are in Tests/process/sync_platform.py.
@Suite struct SyncTests {
    static func metadata(_ env: TestEnv, title: String, push: Bool = true, visibility: String = "public") throws -> ResourceMetadata {
        var m = try UpkeepTests.metadata(env, title: title)
        m.pushToPlatform = push
        m.visibility = Visibility(rawValue: visibility)!
        return m
    }

    /// A published resource with one distinct PDF.
    static func published(_ env: TestEnv, _ title: String, push: Bool = true, visibility: String = "public") async throws -> String {
        let b = try await UpkeepTests.store(env, Array("%PDF-1.7\n% \(title) \(UUID())\n%%EOF\n".utf8))
        let v = try env.services.catalog.createResource(
            owner: env.principals["owner"]!, metadata: try metadata(env, title: title, push: push, visibility: visibility),
            files: [NewFile(name: "\(title).pdf", sha256: b.sha256, size: b.size, mediaType: "application/pdf", role: .primary)], changeNote: "")
        _ = try env.services.catalog.publish(id: v.state.id) { _ in }
        return v.state.id
    }

    /// Selects resources by id (all in scope here).
    static func select(_ env: TestEnv, _ ids: [String]) throws {
        var s = SyncSelection()
        s.ids = ids
        _ = try env.services.catalog.selectForSync(s, by: nil)
    }

    /// Runs the runner once against `emu` on a real loopback server, with quick backoff.
    static func runSync(_ env: TestEnv, _ emu: Emulator, concurrency: Int = 4, backoffCap: Double) async throws -> SyncRunSummary {
        let app = Application(router: emu.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            let (platform, pool) = Self.platform(port: try #require(client.port))
            defer { pool.shutdown() }
            var settings = SyncSettings()
            settings.backoffBaseSeconds = 0.01
            settings.backoffCapSeconds = backoffCap
            settings.concurrency = concurrency
            return try await SyncRunner(
                catalog: env.services.catalog, root: env.services.root, adapter: platform, settings: settings, logger: Logger(label: "test")
            ).run(maxWait: 5)
        }
    }

    static func newVersion(_ env: TestEnv, _ id: String, title: String, publish: Bool) throws {
        let owner = env.principals["owner"]!
        _ = try env.services.catalog.saveVersion(id: id, by: owner, expectedVersion: nil, changeNote: "edit", authorize: { _ in }) { old in
            var m = old.metadata
            m.title = title
            return (m, old.files.map(NewFile.init))
        }
        if publish { _ = try env.services.catalog.publish(id: id) { _ in } }
    }

    // MARK: outbox

    @Test func selectionQueuesOnlyResourcesInScopeAndSaysWhy() async throws {
        let env = try TestEnv()
        let c = env.services.catalog
        let a = try await Self.published(env, "甲")
        let b = try await Self.published(env, "乙")
        let notPushed = try await Self.published(env, "丙", push: false)
        let schoolOnly = try await Self.published(env, "丁", visibility: "organization")
        let draft = try c.createResource(owner: env.principals["owner"]!, metadata: try Self.metadata(env, title: "草稿"), files: [], changeNote: "").state.id
        let missing = Identifiers.uuidV7()
        var s = SyncSelection()
        s.ids = [a, b, notPushed, schoolOnly, draft, missing]
        let dry = try c.selectForSync(s, by: nil, dryRun: true)
        #expect(Set(dry.queued) == [a, b])
        #expect(try c.syncCounts().total == 0, "a dry run queues nothing")
        let r = try c.selectForSync(s, by: nil)
        #expect(Set(r.queued) == [a, b])
        let reasons = Dictionary(uniqueKeysWithValues: r.skipped.map { ($0.id, $0.reason) })
        #expect(reasons[notPushed] == "pushToPlatform is false")
        #expect(reasons[schoolOnly]?.hasPrefix("not public") == true)
        #expect(reasons[draft] == "not published")
        #expect(reasons[missing] == "no such resource")
        // Selecting again changes nothing; a query selects the same two (and skips quietly).
        #expect(Set(try c.selectForSync(s, by: nil).unchanged) == [a, b])
        var byMajor = SyncSelection()
        byMajor.majorCode = "5206"
        let q = try c.selectForSync(byMajor, by: nil)
        #expect(q.queued.isEmpty && Set(q.unchanged) == [a, b] && q.skipped.isEmpty)
        #expect(try c.syncCounts().pending == 2)
        // An id that exists but fails another criterion says so.
        var both = SyncSelection()
        both.ids = [a]
        both.resourceType = .video
        #expect(try c.selectForSync(both, by: nil).skipped.first?.reason == "does not match the other criteria")
    }

    @Test func theAdminAPIValidatesAndExplains() async throws {
        let env = try TestEnv()
        let admin = env.auth("admin")
        try await env.test { client in
            func post(_ path: String, _ body: Any) async throws -> (Int, [String: Any]) {
                var h = admin
                h[.contentType] = "application/json"
                let r = try await client.execute(uri: path, method: .post, headers: h, body: Fixtures.json(body))
                return (Int(r.status.code), (try? JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any]) ?? [:])
            }
            for bad: [String: Any] in [
                [:], ["majorCode": "52x"], ["majorCode": "5"], ["ids": ["../etc"]], ["dryRun": true], ["colour": "red"], ["resourceType": "hologram"],
            ] {
                let (status, problem) = try await post("/v1/admin/sync/select", bad)
                #expect(status == 422, "\(bad) → \(status)")
                #expect((problem["errors"] as? [Any])?.isEmpty == false, "\(bad): the problem names the field")
            }
            #expect(try await post("/v1/admin/sync/retry", [:]).0 == 422)
            #expect(try await post("/v1/admin/sync/retry", ["ids": ["x"]]).0 == 422)
            let (status, problem) = try await post("/v1/admin/sync/run", [:])
            #expect(status == 409 && (problem["detail"] as? String)?.contains("platform_url") == true)
            let r = try await client.execute(uri: "/v1/admin/sync/status?x=1", method: .get, headers: admin)
            #expect(r.status.code == 400)
            let ok = try await client.execute(uri: "/v1/admin/sync/status", method: .get, headers: admin)
            let body = try JSONSerialization.jsonObject(with: Data(buffer: ok.body)) as! [String: Any]
            #expect(body["configured"] as? Bool == false && (body["outbox"] as? [String: Any])?["total"] as? Int == 0)
        }
    }

    @Test func aResourceChangedTwiceSendsOnlyItsLatestState() async throws {
        let env = try TestEnv()
        let c = env.services.catalog
        let id = try await Self.published(env, "康复训练")
        try Self.select(env, [id])
        // A draft does not touch the outbox; publishing does, in the same transaction.
        try Self.newVersion(env, id, title: "康复训练（二）", publish: false)
        #expect(try c.syncEntry(id: id)?.version == 1)
        try Self.newVersion(env, id, title: "康复训练（二）", publish: true)
        try Self.newVersion(env, id, title: "康复训练（三）", publish: true)
        let e = try #require(try c.syncEntry(id: id))
        #expect(e.op == .put && e.version == 4 && e.state == .pending && e.generation == 3)
        #expect(try c.syncCounts().total == 1)

        // A change while an attempt is in flight: the attempt's success is recorded (the
        // platform has version 4), but the entry stays queued for version 5.
        let claimed = try #require(try c.claimSyncEntry())
        #expect(claimed.state == .inFlight && claimed.attempts == 1)
        try Self.newVersion(env, id, title: "康复训练（四）", publish: true)
        // Nobody may claim it meanwhile: two requests about one resource must never race (an
        // older PUT overtaking a newer one, or a DELETE).
        #expect(try c.syncEntry(id: id)?.state == .inFlight)
        #expect(try c.claimSyncEntry() == nil)
        try c.finishSyncAttempt(claimed, startedAt: Date(), outcome: .done(remoteId: "NVP-1", status: 201), bytesSent: 10, maxAttempts: 5, backoff: { _ in 0 })
        let after = try #require(try c.syncEntry(id: id))
        #expect(after.state == .pending && after.version == 5 && after.sentVersion == 4 && after.remoteId == "NVP-1")

        // A withdrawal while a put is in flight: the delete waits for the put to end, then goes,
        // even when the put failed.
        let putting = try #require(try c.claimSyncEntry())
        _ = try c.transition(id: id, action: .withdraw, by: env.principals["admin"]!, allowAnonymous: true)
        #expect(try c.claimSyncEntry() == nil)
        try c.finishSyncAttempt(
            putting, startedAt: Date(), outcome: .failed(message: "HTTP 503", status: 503, retryAfter: 600), bytesSent: 0, maxAttempts: 5,
            backoff: { _ in 600 })
        let deleting = try #require(try c.claimSyncEntry(), "the delete is due at once, not after the put's backoff")
        #expect(deleting.op == .delete)
        try c.finishSyncAttempt(deleting, startedAt: Date(), outcome: .done(remoteId: nil, status: 204), bytesSent: 0, maxAttempts: 5, backoff: { _ in 0 })
        #expect(try c.syncEntry(id: id)?.sentVersion == nil)
        _ = try c.publish(id: id) { _ in }

        // Withdrawal queues a delete; publishing again queues a put.
        _ = try c.transition(id: id, action: .withdraw, by: env.principals["admin"]!, allowAnonymous: true)
        #expect(try c.syncEntry(id: id)?.op == .delete)
        _ = try c.publish(id: id) { _ in }
        #expect(try c.syncEntry(id: id)?.op == .put)
        // Deletion queues a delete that survives a purge.
        try c.softDelete(id: id, by: env.principals["admin"]!, allowAnonymous: true)
        try c.purge(id: id, by: env.principals["admin"]!)
        let gone = try #require(try c.syncEntry(id: id))
        #expect(gone.op == .delete && gone.state == .pending && gone.title == nil)
    }

    @Test func failuresBackOffHonourRetryAfterAndGoDead() async throws {
        let env = try TestEnv()
        let c = env.services.catalog
        let id = try await Self.published(env, "退避")
        try Self.select(env, [id])
        let now = Date()
        var e = try #require(try c.claimSyncEntry(now: now))
        try c.finishSyncAttempt(
            e, startedAt: now, outcome: .failed(message: "HTTP 429", status: 429, retryAfter: 30), bytesSent: 0, maxAttempts: 3, backoff: { _ in 0.5 },
            now: now)
        var row = try #require(try c.syncEntry(id: id))
        #expect(row.state == .failed && row.lastStatus == 429)
        #expect(Timestamp.parse(row.nextAttemptAt)!.timeIntervalSince(now) >= 29.99, "never before Retry-After")
        #expect(try c.claimSyncEntry(now: now.addingTimeInterval(29)) == nil)
        for i in 2...3 {
            e = try #require(try c.claimSyncEntry(now: now.addingTimeInterval(31 * Double(i))))
            try c.finishSyncAttempt(
                e, startedAt: now, outcome: .failed(message: "HTTP 503: busy", status: 503, retryAfter: nil), bytesSent: 0, maxAttempts: 3,
                backoff: { _ in 1 }, now: now.addingTimeInterval(31 * Double(i)))
        }
        row = try #require(try c.syncEntry(id: id))
        #expect(row.state == .dead && row.attempts == 3 && row.lastError?.contains("gave up after 3 attempts") == true)
        #expect(try c.syncAttempts(id: id).map(\.outcome) == ["dead", "failed", "failed"])
        #expect(try c.retrySync(dead: true, ids: [], by: nil) == 1)
        row = try #require(try c.syncEntry(id: id))
        #expect(row.state == .pending && row.attempts == 0)

        // Full jitter stays within [0, min(cap, base·2ⁿ⁻¹)].
        var settings = SyncSettings()
        settings.backoffBaseSeconds = 2
        settings.backoffCapSeconds = 60
        for attempt in 1...12 {
            let d = settings.backoff(attempt: attempt)
            #expect(d >= 0 && d <= min(60, 2 * pow(2, Double(attempt - 1))))
        }
    }

    @Test func oneRunnerAtATimeAndADeadRunnersEntriesComeBack() async throws {
        let env = try TestEnv()
        let c = env.services.catalog
        let id = try await Self.published(env, "锁")
        try Self.select(env, [id])
        try c.acquireSyncLock(owner: "A", pid: getpid(), host: "here")
        #expect(throws: DomainError.self) { try c.acquireSyncLock(owner: "B", pid: getpid(), host: "here") }
        _ = try #require(try c.claimSyncEntry())
        // A runner whose process is gone: its lock is taken over at once and its entry requeued.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        #expect(try c.syncWorkWaiting(host: "here") == false, "in flight with a live runner: nothing for the schedule")
        try c.releaseSyncLock(owner: "A")
        // Left in flight by a runner that is gone: the server's schedule must pick it up.
        #expect(try c.syncWorkWaiting(host: "here") == true)
        try c.acquireSyncLock(owner: "dead", pid: p.processIdentifier, host: "here")
        #expect(try c.heartbeatSyncLock(owner: "A") == false, "a runner that lost the lock learns it")
        try c.acquireSyncLock(owner: "C", pid: getpid(), host: "here")
        let e = try #require(try c.syncEntry(id: id))
        #expect(e.state == .pending)
        #expect(try c.syncAttempts(id: id).first?.outcome == "interrupted")
        try c.releaseSyncLock(owner: "C")
    }

    /// Every commit is fsynced (GRDB's WAL set-up would leave the writer at NORMAL).
    @Test func theCatalogCommitsDurably() throws {
        let env = try TestEnv()
        #expect(try env.services.catalog.writerSynchronousLevel() == 2)
    }

    // MARK: contract pieces

    @Test func signingMatchesTheContractsTestVector() {
        // Computed independently with Python's hmac module.
        let body = Array(#"{"title":"康复"}"#.utf8)
        #expect(Identifiers.sha256Hex(body) == "f6f3cd7e56ec47040ba0d7a9fefd3fb8629c05fda995febcc2e3a421e50238b7")
        let sig = RequestSigner(key: "zyk-demo", secret: "zyk-demo-secret").signature(
            method: "PUT", path: "/api/v1/resources/01a22b9f-8210-7f77-a1b9-7f69dc50f121", timestamp: "1796000000",
            nonce: "00112233445566778899aabbccddeeff", bodySHA256: Identifiers.sha256Hex(body))
        #expect(sig == "3b7da0ecac0bf032c15a9f06a3e099223e3dd7d906f4af588d225beb86fbc079")
    }

    @Test func theRecordIsDeterministicAndUsesDublinCoreNames() async throws {
        let env = try TestEnv()
        let id = try await Self.published(env, "静脉输液操作规范")
        let payload = try #require(try env.services.catalog.syncPayload(id: id, version: 1))
        let one = try PlatformRecord(payload).encoded()
        let two = try PlatformRecord(try #require(try env.services.catalog.syncPayload(id: id, version: 1))).encoded()
        #expect(one == two)
        let text = String(decoding: one, as: UTF8.self)
        #expect(text.contains(#""title":"静脉输液操作规范""#), "Chinese is sent as is")
        #expect(text.contains(#""subject":[{"code":"520601","name":"康复治疗技术"}]"#))
        let object = try JSONSerialization.jsonObject(with: one) as! [String: Any]
        for key in [
            "identifier", "version", "title", "description", "keywords", "language", "learningResourceType", "rightsHolder", "license",
            "creator", "publisher", "created", "modified", "format", "files", "source", "course",
        ] {
            #expect(object.keys.contains(key), "missing \(key)")
        }
        #expect((object["publisher"] as? [String: Any])?["name"] as? String == "康复职业技术学院")
    }

    // MARK: libcurl against a real server

    /// A small platform on loopback that checks signatures and digests the way the contract
    /// says, with canned answers for some ids.
    final class Emulator: Sendable {
        let files = Mutex<Set<String>>([])
        let requests = Mutex<[String]>([])
        let records = Mutex<[String: Int]>([:])  // idempotency key -> times applied
        /// id -> (status, Retry-After, body) answered to PUT /resources instead of storing.
        let canned = Mutex<[String: (Int, String?, String)]>([:])
        /// Answer 503 to this many PUT /resources first, calling `onFailing` each time.
        let failFirst = Mutex(0)
        let onFailing = Mutex<(@Sendable () -> Void)?>(nil)
        /// The SHA-256 of every body received per idempotency key.
        let bodies = Mutex<[String: Set<String>]>([:])
        let signer = RequestSigner(key: "k", secret: "s3cret")
        /// sha -> how many more HEADs are refused as a replayed nonce (what the platform answers
        /// when libcurl re-sends a request on a fresh connection with the old signature).
        let replays = Mutex<[String: Int]>([:])

        func verify(_ req: Request, bodySHA256: String) -> Bool {
            func h(_ n: String) -> String? { req.headers[HTTPField.Name(n)!] }
            guard h("X-ZYK-Key") == "k", let ts = h("X-ZYK-Timestamp"), let nonce = h("X-ZYK-Nonce"), h("X-ZYK-Content-SHA256") == bodySHA256,
                let sig = h("X-ZYK-Signature"), abs((Double(ts) ?? 0) - Date().timeIntervalSince1970) < 300
            else { return false }
            return sig == signer.signature(method: req.method.rawValue, path: req.uri.path, timestamp: ts, nonce: nonce, bodySHA256: bodySHA256)
        }

        func router() -> Router<BasicRequestContext> {
            let r = Router()
            let empty = RequestSigner.emptySHA256
            r.on("/api/v1/files/:sha", method: .head) { req, ctx -> Response in
                let sha = try ctx.parameters.require("sha")
                self.requests.withLock { $0.append("HEAD \(sha.prefix(8))") }
                guard self.verify(req, bodySHA256: empty) else { return Response(status: .unauthorized) }
                let replayed = self.replays.withLock { r in
                    guard let n = r[sha], n > 0 else { return false }
                    r[sha] = n - 1
                    return true
                }
                if replayed { return Response(status: .unauthorized, headers: [HTTPField.Name("X-ZYK-Error-Code")!: "nonce_reused"]) }
                return Response(status: self.files.withLock { $0.contains(sha) } ? .ok : .notFound)
            }
            r.put("/api/v1/files/:sha") { req, ctx -> Response in
                let sha = try ctx.parameters.require("sha")
                self.requests.withLock { $0.append("PUT file \(sha.prefix(8))") }
                guard self.verify(req, bodySHA256: sha) else { return Response(status: .unauthorized) }
                var hash = SHA256()
                for try await chunk in req.body { hash.update(data: Data(buffer: chunk)) }
                guard Array(hash.finalize()).hexString == sha else { return Response(status: .badRequest) }
                self.files.withLock { _ = $0.insert(sha) }
                return Response(status: .created)
            }
            r.put("/api/v1/resources/:id") { req, ctx -> Response in
                let id = try ctx.parameters.require("id")
                let body = try await req.body.collect(upTo: 1 << 20)
                self.requests.withLock { $0.append("PUT resource \(id)") }
                guard self.verify(req, bodySHA256: Identifiers.sha256Hex(Array(buffer: body))) else { return Response(status: .unauthorized) }
                if let (status, retryAfter, text) = self.canned.withLock({ $0[id] }) {
                    var h = HTTPFields()
                    if let retryAfter { h[.retryAfter] = retryAfter }
                    h[.contentType] = "application/json"
                    return Response(status: .init(code: status), headers: h, body: .init(byteBuffer: ByteBuffer(string: text)))
                }
                let fail = self.failFirst.withLock { n in
                    defer { n = max(0, n - 1) }
                    return n > 0
                }
                guard let key = req.headers[HTTPField.Name("Idempotency-Key")!], key.hasPrefix(id + ":") else { return Response(status: .badRequest) }
                _ = self.bodies.withLock { $0[key, default: []].insert(Identifiers.sha256Hex(Array(buffer: body))) }
                if fail {
                    self.onFailing.withLock { $0 }?()
                    return Response(status: .serviceUnavailable)
                }
                self.records.withLock { $0[key, default: 0] += 1 }
                return Response(
                    status: .created, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"remoteId":"NVP-\#(id.suffix(6))"}"#)))
            }
            r.delete("/api/v1/resources/:id") { req, ctx -> Response in
                guard self.verify(req, bodySHA256: empty) else { return Response(status: .unauthorized) }
                // The platform's own 404 says so; a bare 404 (a proxy, a wrong path) does not.
                let id = try ctx.parameters.require("id")
                return id.hasSuffix("0")
                    ? Response(status: .notFound) : Response(status: .notFound, headers: [HTTPField.Name("X-ZYK-Error-Code")!: "not_found"])
            }
            r.get("/api/v1/slow") { _, _ -> Response in
                try await Task.sleep(for: .seconds(4))
                return Response(status: .ok)
            }
            return r
        }
    }

    static func platform(port: Int, lowSpeedSeconds: Int = 30) -> (PlatformV1, CurlPool) {
        var config = PlatformConfig(baseURL: "http://127.0.0.1:\(port)/api/v1/", appKey: "k", appSecret: "s3cret")
        config.transfer.lowSpeedTimeSeconds = lowSpeedSeconds
        config.transfer.connectTimeoutSeconds = 2
        let pool = CurlPool(size: 2, options: config.transfer)
        return (PlatformV1(config: config, pool: pool), pool)
    }

    @Test func theAdapterSignsStreamsAndClassifiesAnswers() async throws {
        let emu = Emulator()
        let app = Application(router: emu.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let (platform, pool) = Self.platform(port: port)
            defer { pool.shutdown() }
            // A 3 MiB file streamed from disk, checked by the server's own hash.
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("zyk-sync-\(UUID()).bin").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let bytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 11)) }
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let sha = Identifiers.sha256Hex(bytes)
            #expect(try await platform.hasFile(sha256: sha) == false)
            let counter = ByteCounter()
            try await platform.putFile(sha256: sha, path: path, size: Int64(bytes.count), progress: counter)
            #expect(counter.total == Int64(bytes.count))
            #expect(try await platform.hasFile(sha256: sha) == true)
            // A replayed nonce is signed afresh and sent again; one that keeps coming back is
            // retried later, never declared dead (the entry did nothing wrong).
            emu.replays.withLock { $0[sha] = 2 }
            #expect(try await platform.hasFile(sha256: sha) == true)
            emu.replays.withLock { $0[sha] = 100 }
            let before = emu.requests.withLock { $0.count }
            do throws(PlatformFailure) {
                _ = try await platform.hasFile(sha256: sha)
                Issue.record("a request refused as replayed every time counted as answered")
            } catch {
                #expect(error.disposition == .retry && error.status == 401 && error.message.contains("nonce_reused"))
            }
            #expect(emu.requests.withLock { $0.count } - before == 4, "signed afresh a bounded number of times")
            emu.replays.withLock { $0[sha] = 0 }
            // A file whose bytes are not what its name says is refused by the platform: dead.
            await #expect(throws: PlatformFailure.self) {
                try await platform.putFile(sha256: String(repeating: "ab", count: 32), path: path, size: Int64(bytes.count), progress: nil)
            }

            let ok = Identifiers.uuidV7()
            let put = try await platform.putResource(id: ok, version: 2, record: Data(#"{"title":"康复"}"#.utf8))
            #expect(put.remoteId == "NVP-\(ok.suffix(6))" && put.status == 201)
            #expect(emu.records.withLock { $0["\(ok):2"] } == 1)

            func failure(_ id: String, _ canned: (Int, String?, String)) async -> PlatformFailure? {
                emu.canned.withLock { $0[id] = canned }
                do throws(PlatformFailure) {
                    let answer = try await platform.putResource(id: id, version: 1, record: Data("{}".utf8))
                    Issue.record("accepted: \(answer)")
                    return nil
                } catch { return error }
            }
            let throttled = await failure(Identifiers.uuidV7(), (429, "7", #"{"code":"rate_limited","message":"slow down"}"#))
            #expect(throttled?.disposition == .retry && throttled?.retryAfter == 7 && throttled?.status == 429)
            let rejected = await failure(Identifiers.uuidV7(), (422, nil, #"{"code":"invalid_record","message":"课程编码不存在"}"#))
            #expect(rejected?.disposition == .dead && rejected?.message.contains("课程编码不存在 (invalid_record)") == true)
            #expect(await failure(Identifiers.uuidV7(), (400, nil, "bad"))?.disposition == .dead)
            #expect(await failure(Identifiers.uuidV7(), (503, nil, ""))?.disposition == .retry)
            #expect(await failure(Identifiers.uuidV7(), (408, nil, ""))?.disposition == .retry)
            // DELETE of what the platform does not have counts as done.
            #expect(try await platform.deleteResource(id: String(ok.dropLast()) + "1") == 404)
            // A 404 that is not the platform's own (a proxy, a wrong base path) is not "gone".
            do throws(PlatformFailure) {
                let status = try await platform.deleteResource(id: String(ok.dropLast()) + "0")
                Issue.record("a bare 404 counted as deleted (\(status))")
            } catch {
                #expect(error.disposition == .dead && error.message.contains("platform_url"))
            }

            // A stalled answer is cut by the low-speed window (1 s here), not a total timeout.
            var quick = TransferOptions()
            quick.lowSpeedTimeSeconds = 1
            let quickPool = CurlPool(size: 1, options: quick)
            defer { quickPool.shutdown() }
            let started = Date()
            do {
                _ = try await quickPool.perform(CurlRequest(method: "GET", url: "http://127.0.0.1:\(port)/api/v1/slow"))
                Issue.record("a stalled transfer finished")
            } catch let e as CurlError {
                #expect(e.kind == .timeout)
            }
            #expect(Date().timeIntervalSince(started) < 3.5)
            // Cancelling the task aborts the transfer at once.
            let t = Task { try await pool.perform(CurlRequest(method: "GET", url: "http://127.0.0.1:\(port)/api/v1/slow")) }
            try await Task.sleep(for: .milliseconds(200))
            let cancelledAt = Date()
            t.cancel()
            _ = await t.result
            #expect(Date().timeIntervalSince(cancelledAt) < 2)
        }
        // Nothing listening: a connection error, retried.
        let (closed, pool) = Self.platform(port: 9)
        defer { pool.shutdown() }
        do {
            _ = try await closed.hasFile(sha256: String(repeating: "0", count: 64))
            Issue.record("connected to a closed port")
        } catch {
            #expect(error.disposition == .retry)
        }
    }

    /// A retry sends the bytes of the first attempt, even if a name in the record changed in
    /// between (here the major is renamed by a vocabulary import): the platform would refuse a
    /// different body under the same idempotency key (422).
    @Test func retriesSendTheSameBytesUnderTheSameKey() async throws {
        let env = try TestEnv()
        let c = env.services.catalog
        let id = try await Self.published(env, "同一请求")
        try Self.select(env, [id])
        let emu = Emulator()
        emu.failFirst.withLock { $0 = 1 }
        emu.onFailing.withLock {
            $0 = {
                _ = try? c.importMajors(
                    [Major(code: "520601", educationLevel: .higherVocational, name: "康复治疗技术（改名）", itemLevel: "major", parentCode: "5206")],
                    catalog: "MOE_VOCATIONAL_2021", source: "test", digest: "rename")
            }
        }
        let summary = try await Self.runSync(env, emu, backoffCap: 0.02)
        #expect(summary.done == 1 && summary.failed == 1)
        #expect(
            try c.majors(level: nil, prefix: "520601", itemLevel: nil, limit: 1, offset: 0).items.first?.name == "康复治疗技术（改名）",
            "the rename happened between the attempts")
        #expect(emu.bodies.withLock { $0["\(id):1"]?.count } == 1, "both attempts sent the same body")
        // The body stays kept for that version (a re-selection sends it again, byte for byte); a
        // new version gets its own, built with the new name.
        #expect(try c.syncRecord(id: id, version: 1) != nil)
        try Self.newVersion(env, id, title: "同一请求（二）", publish: true)
        #expect(try c.syncRecord(id: id, version: 2) == nil)
    }

    @Test func theRunnerDrainsTheOutboxRetriesAndRecordsRemoteIds() async throws {
        let env = try TestEnv()
        let c = env.services.catalog
        var ids: [String] = []
        for i in 0..<6 { ids.append(try await Self.published(env, "资源\(i)")) }
        try Self.select(env, ids)
        let emu = Emulator()
        emu.failFirst.withLock { $0 = 2 }
        let summary = try await Self.runSync(env, emu, concurrency: 3, backoffCap: 0.05)
        #expect(summary.done == 6 && summary.failed == 2 && summary.outbox.done == 6 && summary.stoppedBecause == "idle")
        for id in ids {
            let e = try #require(try c.syncEntry(id: id))
            #expect(e.state == .done && e.remoteId == "NVP-\(id.suffix(6))" && e.sentVersion == 1)
            #expect(emu.records.withLock { $0["\(id):1"] } == 1)
        }
        #expect(emu.files.withLock { $0.count } == 6)
        let retried = try ids.flatMap { try c.syncAttempts(id: $0) }.filter { $0.outcome == "failed" }
        #expect(retried.count == 2 && retried.allSatisfy { $0.httpStatus == 503 })
    }
}
