import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer
import ZiyuankuStore

/// `/metrics` through the application `zyk serve` runs: the request metrics, the catalog's
/// metrics read at scrape time, label escaping, the names and help texts, and one registry per
/// application.
@Suite struct MetricsTests {
    /// A data root whose scheduler runs nothing on its own (the daily optimize is off), so the
    /// job metrics hold only the runs a test records.
    static func env() throws -> TestEnv {
        try TestEnv { $0.optimizeIntervalMinutes = 0 }
    }

    /// The samples of an exposition, by series (`name{labels}`); the value is what follows the
    /// last space. Fails the test on a line that is neither a comment nor a sample of ours.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("# ") {
            #expect(line.hasPrefix("zyk_"), "not a sample line: \(line)")
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("no value: \(line)")
                continue
            }
            out[String(line[..<space])] = value
        }
        return out
    }

    static func scrape(_ client: some TestClientProtocol) async throws -> String {
        let r = try await client.execute(uri: "/metrics", method: .get)
        #expect(r.status == .ok)
        #expect(r.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
        return String(buffer: r.body)
    }

    @Test func aRequestCountsUnderItsRouteAndStatus() async throws {
        let env = try Self.env()
        try await env.app().test(.router) { client in
            for _ in 0..<2 { #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok) }
            let missing = Identifiers.uuidV7()
            #expect(try await client.execute(uri: "/v1/resources/\(missing)", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/no/such/route", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/v1/me", method: .get).status == .unauthorized)

            var text = try await Self.scrape(client)
            var s = Self.samples(text)
            #expect(s[#"zyk_http_requests_total{method="GET",route="/healthz",status="200"}"#] == 2)
            #expect(s[#"zyk_http_request_duration_seconds_count{method="GET",route="/healthz"}"#] == 2)
            #expect(s[#"zyk_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="+Inf"}"#] == 2)
            // The route is the template, never the concrete path; a path no route matches is the
            // router's "NotFound".
            #expect(s[#"zyk_http_requests_total{method="GET",route="/v1/resources/{id}",status="404"}"#] == 1, "\(text)")
            #expect(!text.contains(missing))
            #expect(s[#"zyk_http_requests_total{method="GET",route="NotFound",status="404"}"#] == 1)
            // A request the gate refuses counts too, with the status the client got.
            #expect(s[#"zyk_http_requests_total{method="GET",route="/v1/me",status="401"}"#] == 1)
            // The scrape itself counts once it has been answered.
            #expect(s[#"zyk_http_requests_total{method="GET",route="/metrics",status="200"}"#] == nil)
            text = try await Self.scrape(client)
            s = Self.samples(text)
            #expect(s[#"zyk_http_requests_total{method="GET",route="/metrics",status="200"}"#] == 1)
            #expect(s[#"zyk_http_requests_total{method="GET",route="/healthz",status="200"}"#] == 2)
        }
    }

    /// With anonymous access off, the gate answers before the route runs: counted under the
    /// route the path matched, with the 401 problem document the client got.
    @Test func aRequestTheGateRefusesCountsWithItsStatus() async throws {
        let env = try TestEnv {
            $0.optimizeIntervalMinutes = 0
            $0.allowAnonymous = false
        }
        try await env.app().test(.router) { client in
            let r = try await client.execute(uri: "/v1/organizations", method: .get)
            #expect(r.status == .unauthorized)
            #expect(r.isProblem)
            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: env.auth("admin"))
            #expect(metrics.status == .ok)
            let s = Self.samples(String(buffer: metrics.body))
            #expect(s[#"zyk_http_requests_total{method="GET",route="/v1/organizations",status="401"}"#] == 1)
        }
    }

    /// The names, types, help texts and latency buckets dashboards and alerts rely on.
    @Test func theExpositionKeepsItsNamesAndHelpTexts() async throws {
        let env = try Self.env()
        _ = try env.services.catalog.recordRun(.verify, trigger: .cli) { Report(counts: ["checked": 4]) }
        try await env.app().test(.router) { client in
            _ = try await client.execute(uri: "/healthz", method: .get)
            let text = try await Self.scrape(client)
            let lines = Set(text.split(separator: "\n").map(String.init))
            for header in [
                "# HELP zyk_http_requests_total HTTP requests by method, route and status", "# TYPE zyk_http_requests_total counter",
                "# HELP zyk_http_request_duration_seconds Time to the response head", "# TYPE zyk_http_request_duration_seconds histogram",
                "# HELP zyk_upload_bytes_total Bytes stored from uploads", "# TYPE zyk_upload_bytes_total counter",
                "# HELP zyk_uploads_total Completed file uploads", "# TYPE zyk_uploads_total counter",
                "# HELP zyk_download_bytes_total File bytes served (by Content-Length)", "# TYPE zyk_download_bytes_total counter",
                "# HELP zyk_job_runs_total Finished upkeep job runs by job and outcome.", "# TYPE zyk_job_runs_total counter",
                "# HELP zyk_job_last_run_timestamp_seconds When the last run of each job ended.",
                "# TYPE zyk_job_last_run_timestamp_seconds gauge",
                "# HELP zyk_job_last_run_ok Whether the last run of each job found nothing wrong (1) or not (0).", "# TYPE zyk_job_last_run_ok gauge",
                "# HELP zyk_job_last_run_count The counts the last run of each job reported.", "# TYPE zyk_job_last_run_count gauge",
                "# HELP zyk_sync_outbox_entries National-platform outbox entries by state.", "# TYPE zyk_sync_outbox_entries gauge",
            ] {
                #expect(lines.contains(header), "missing: \(header)")
            }
            let s = Self.samples(text)
            for le in ["0.001", "0.005", "0.025", "0.1", "0.5", "2.0", "10.0", "60.0", "+Inf"] {
                #expect(s[#"zyk_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="\#(le)"}"#] == 1, "le=\(le)")
            }
            #expect(s["zyk_upload_bytes_total"] == 0)
            #expect(s["zyk_uploads_total"] == 0)
            #expect(s["zyk_download_bytes_total"] == 0)
            #expect(s[#"zyk_job_runs_total{job="verify",outcome="ok"}"#] == 1)
            #expect(s[#"zyk_job_last_run_ok{job="verify"}"#] == 1)
            #expect(s[#"zyk_job_last_run_count{job="verify",count="checked"}"#] == 4)
            #expect((s[#"zyk_job_last_run_timestamp_seconds{job="verify"}"#] ?? 0) > 1_700_000_000)
            for state in ["pending", "inFlight", "done", "failed", "dead"] {
                #expect(s[#"zyk_sync_outbox_entries{state="\#(state)"}"#] == 0)
            }
        }
    }

    /// The catalog's values are read when /metrics is: runs recorded after a scrape (by the CLI,
    /// say) show in the next, the run counter counts on, and a count the last run no longer
    /// reports is gone.
    @Test func catalogValuesAreReadAtEachScrape() async throws {
        let env = try Self.env()
        let catalog = env.services.catalog
        _ = try catalog.recordRun(.fixity, trigger: .cli) { Report(counts: ["checked": 2, "missing": 1], problemCount: 1) }
        try await env.app().test(.router) { client in
            var s = Self.samples(try await Self.scrape(client))
            #expect(s[#"zyk_job_runs_total{job="fixity",outcome="problems"}"#] == 1)
            #expect(s[#"zyk_job_last_run_ok{job="fixity"}"#] == 0)
            #expect(s[#"zyk_job_last_run_count{job="fixity",count="missing"}"#] == 1)
            _ = try catalog.recordRun(.fixity, trigger: .cli) { Report(counts: ["checked": 3]) }
            _ = try catalog.recordRun(.fixity, trigger: .cli) { Report(counts: ["checked": 5]) }
            s = Self.samples(try await Self.scrape(client))
            #expect(s[#"zyk_job_runs_total{job="fixity",outcome="problems"}"#] == 1)
            #expect(s[#"zyk_job_runs_total{job="fixity",outcome="ok"}"#] == 2)
            #expect(s[#"zyk_job_last_run_ok{job="fixity"}"#] == 1)
            #expect(s[#"zyk_job_last_run_count{job="fixity",count="checked"}"#] == 5)
            #expect(s[#"zyk_job_last_run_count{job="fixity",count="missing"}"#] == nil)
        }
    }

    /// A label value with a quote, a backslash and a line feed is escaped as the text format
    /// says, and cannot break the exposition into a forged line.
    @Test func labelValuesAreEscaped() async throws {
        let env = try Self.env()
        let odd = "say \"hi\"\\n\nzyk_forged_total 1"
        _ = try env.services.catalog.recordRun(.verify, trigger: .cli) { Report(counts: [odd: 3]) }
        try await env.app().test(.router) { client in
            let text = try await Self.scrape(client)
            let s = Self.samples(text)
            #expect(s[#"zyk_job_last_run_count{job="verify",count="say \"hi\"\\n\nzyk_forged_total 1"}"#] == 3, "\(text)")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("zyk_forged_total") })
        }
    }

    /// Two applications in one process each count their own requests.
    @Test func twoApplicationsDoNotShareCounts() async throws {
        let a = try Self.env()
        let b = try Self.env()
        #expect(a.services.metrics.registry !== b.services.metrics.registry)
        try await a.app().test(.router) { clientA in
            try await b.app().test(.router) { clientB in
                for _ in 0..<3 { _ = try await clientA.execute(uri: "/healthz", method: .get) }
                _ = try await clientB.execute(uri: "/healthz", method: .get)
                _ = try await clientB.execute(uri: "/no/such/route", method: .get)
                let sa = Self.samples(try await Self.scrape(clientA))
                let sb = Self.samples(try await Self.scrape(clientB))
                #expect(sa[#"zyk_http_requests_total{method="GET",route="/healthz",status="200"}"#] == 3)
                #expect(sb[#"zyk_http_requests_total{method="GET",route="/healthz",status="200"}"#] == 1)
                #expect(sa[#"zyk_http_requests_total{method="GET",route="NotFound",status="404"}"#] == nil)
                #expect(sb[#"zyk_http_requests_total{method="GET",route="NotFound",status="404"}"#] == 1)
            }
        }
    }

    struct Report: JobReport {
        var counts: [String: Int64]
        var problemCount = 0
    }
}
