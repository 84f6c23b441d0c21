#!/usr/bin/env python3
"""Bad input over a real socket, and the zyk CLI as a user types it.

Over the wire (things an in-process router test cannot send):
  - a Content-Length beyond the limit is refused with 413 before any body byte is sent;
  - raw invalid UTF-8 in the request line, percent-encoded invalid UTF-8 in path and query;
  - a 64 KB header; a client that disconnects mid-upload; the server keeps serving;
  - R15 memory: 300 requests with 1,000 ranges each grow the server's RSS by < 50 MB;
  - no token ever appears in the server's log.
CLI: every command answers --help with an example, --version prints the version, exit codes
mean something, --json parses, the majors import is idempotent, and a wrong --token is refused.

Standard library only; talks to 127.0.0.1 only. Closes with "N passed, M failed".
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zykproc as z  # noqa: E402


def raw(port, data, timeout=10.0, read_all=True):
    """Sends raw bytes; returns (status line, full response bytes)."""
    s = socket.create_connection((z.HOST, port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
            if not read_all and b"\r\n\r\n" in b"".join(chunks):
                break
        resp = b"".join(chunks)
        return resp.split(b"\r\n", 1)[0].decode("latin-1"), resp
    finally:
        s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    args = ap.parse_args()
    res = z.Results("wire+cli")
    work = tempfile.mkdtemp(prefix="zyk-wire-")
    binary = z.snapshot_binary(z.find_binary(args.bin), os.path.join(work, "bin"))
    root = os.path.join(work, "root")
    port = z.free_port()
    server = z.Server(binary, root, port, os.path.join(work, "server.log"), ["--max-upload-bytes", str(64 * z.MB)])
    try:
        server.start()
        server.wait_ready()
        admin = open(os.path.join(root, "admin-token")).read().strip()
        teacher = z.make_teacher(binary, root)
        auth = {"Authorization": f"Bearer {teacher}"}

        # 413 before reading: the client sends headers only and never a body byte.
        t0 = time.monotonic()
        status, resp = raw(port, z.request_head("POST", "/v1/blobs", dict(auth, **{"Content-Type": "application/octet-stream"}), 10 * 1024**3), timeout=5)
        res.check(status.startswith("HTTP/1.1 413"), "declared 10 GiB body refused with 413 before reading", f"{status} in {time.monotonic() - t0:.2f} s")
        res.check(b"payload-too-large" in resp and b"application/problem+json" in resp, "413 carries a payload-too-large problem document")
        status, resp = raw(port, z.request_head("POST", "/v1/resources", dict(auth, **{"Content-Type": "multipart/form-data; boundary=x"}), 10 * 1024**3), timeout=5)
        res.check(status.startswith("HTTP/1.1 413"), "declared 10 GiB multipart body refused with 413", status)

        # Invalid UTF-8 and hostile request lines.
        status, resp = raw(port, b"GET /v1/resources/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        res.check(status.split(" ")[1] in ("400", "404"), "raw invalid UTF-8 in the path answers 400/404", status)
        # Raw UTF-8 in the request line, as curl sends '…?q=康复': accepted, also on a kept-alive connection.
        s = socket.create_connection((z.HOST, port), timeout=10)
        answers = []
        for q in ("康复", "藥學"):
            s.sendall(f"GET /v1/resources?q={q} HTTP/1.1\r\nHost: x\r\n\r\n".encode("utf-8"))
            time.sleep(0.3)
            answers.append(s.recv(1 << 20).split(b"\r\n", 1)[0])
        s.close()
        res.check(answers == [b"HTTP/1.1 200 OK"] * 2, "raw UTF-8 query in the request line works, twice on one connection", str(answers))
        st, h, body = z.request(port, "GET", "/v1/resources/%FF%FE")
        res.check(st == 404 and h.get("content-type", "").startswith("application/problem+json"), "percent-encoded invalid UTF-8 id: 404 problem", str(st))
        st, h, body = z.request(port, "GET", "/v1/resources?type=%FF%FE")
        res.check(st == 400 and b"type" in body, "invalid UTF-8 query value: 400 naming the parameter", f"{st} {body[:120]!r}")
        st, h, body = z.request(port, "GET", "/v1/resources", headers={"X-Big": "a" * 65536})
        res.check(st in (400, 431, 200), "a 64 KB header gets an answer, not a hang", str(st))

        # A client that disconnects mid-upload leaves nothing behind and the server keeps serving.
        s = socket.create_connection((z.HOST, port), timeout=10)
        s.sendall(z.request_head("POST", "/v1/blobs", dict(auth, **{"Content-Type": "application/octet-stream"}), 20 * z.MB))
        s.sendall(os.urandom(3 * z.MB))
        s.close()
        time.sleep(1.0)
        leftovers = [f for f in os.listdir(os.path.join(root, "tmp")) if f.startswith("upload-")]
        res.check(leftovers == [], "an abandoned upload leaves no temporary file", str(leftovers))
        st, _, _ = z.request(port, "GET", "/healthz")
        res.check(st == 200, "server keeps serving after hostile requests", str(st))

        # R15 memory: many requests with 1,000 ranges each.
        rng = __import__("random").Random(7)
        data = z.video_bytes(rng, 2 * z.MB)
        ctype, mp = z.multipart_body(z.resource_metadata("范围测试"), "r.mp4", data)
        st, _, body = z.request(port, "POST", "/v1/resources", headers=z.auth(teacher, ctype), body=mp)
        res.check(st == 201, "resource for range tests created", str(st))
        rid = json.loads(body)["id"]
        before = rss_kb(server.pid)
        ranges = "bytes=" + ",".join(f"{i * 1000}-{i * 1000 + 999}" for i in range(1000))
        statuses = set()
        for _ in range(300):
            st, _, _ = z.request(port, "GET", f"/v1/resources/{rid}/files/r.mp4", headers=dict(auth, Range=ranges))
            statuses.add(st)
        for _ in range(100):  # the largest legal multi-range response, repeatedly
            st, _, b = z.request(port, "GET", f"/v1/resources/{rid}/files/r.mp4", headers=dict(auth, Range="bytes=" + ",".join(f"{i * 100000}-{i * 100000 + 99999}" for i in range(16))))
            statuses.add(st)
        grown = (rss_kb(server.pid) - before) / 1024
        res.check(statuses == {416, 206}, "1,000 ranges → 416, 16 ranges → 206", str(sorted(statuses)))
        res.check(grown < 50, "RSS growth under hostile ranges < 50 MB", f"{grown:.1f} MB")

        # CLI: help everywhere, with an EXAMPLES block; the root help lists every exit code.
        commands = [[], ["serve"], ["migrate"], ["org"], ["org", "add"], ["org", "list"], ["user"], ["user", "add"], ["user", "list"],
                    ["token"], ["token", "create"], ["token", "revoke"], ["token", "list"], ["vocab"], ["vocab", "import-majors"],
                    ["reindex"], ["audit"], ["audit", "verify"], ["audit", "list"], ["fixity"], ["gc"], ["verify"], ["optimize"],
                    ["backup"], ["restore"], ["report"], ["jobs"], ["import"], ["sync"], ["sync", "select"], ["sync", "dry-run"],
                    ["sync", "run"], ["sync", "status"], ["sync", "retry"]]
        missing = []
        for c in commands:
            r = subprocess.run([binary, *c, "--help"], capture_output=True, timeout=30)
            text = (r.stdout + r.stderr).decode()
            if r.returncode != 0 or "EXAMPLES:" not in text:
                missing.append(" ".join(c) or "zyk")
        res.check(missing == [], "every command answers --help with an example", str(missing))
        r = subprocess.run([binary, "--help"], capture_output=True, timeout=30)
        text = r.stdout.decode(errors="replace")
        codes = text.split("EXIT CODES:", 1)[1] if "EXIT CODES:" in text else ""
        absent = [n for n in ("0", "1", "2", "64", "65", "70", "74", "75", "77") if re.search(rf"^\s+{n}\s", codes, re.M) is None]
        res.check(codes != "" and absent == [], "zyk --help lists the exit codes 0, 1, 2, 64, 65, 70, 74, 75 and 77", f"missing {absent}")
        r = subprocess.run([binary, "--version"], capture_output=True, timeout=30)
        version = r.stdout.decode(errors="replace").strip()
        res.check(r.returncode == 0 and re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version) is not None,
                  "zyk --version prints the version", f"{r.returncode} {version!r}")

        def run(*a):
            return subprocess.run([binary, *a, "--data-root", root], capture_output=True, timeout=60)

        r = run("user", "add", "--org", "康复职业技术学院", "--name", "李", "--role", "superuser")
        res.check(r.returncode == 64 and b"--role" in r.stderr, "bad --role: exit 64 with a plain message", f"{r.returncode} {r.stderr[:100]!r}")
        r = run("user", "add", "--org", "不存在的学校", "--name", "李", "--role", "teacher")
        res.check(r.returncode == 65, "unknown organization: exit 65", f"{r.returncode} {r.stderr[:100]!r}")
        r = run("org", "list", "--json")
        res.check(r.returncode == 0 and any(o["name"] == "康复职业技术学院" for o in json.loads(r.stdout)), "org list --json parses and shows Chinese names")
        r = run("user", "list", "--token", "zyk_" + "A" * 43)
        res.check(r.returncode == 77, "a wrong --token is refused with exit 77", str(r.returncode))
        r = run("user", "list", "--token", teacher)
        res.check(r.returncode == 77, "a non-admin --token is refused with exit 77", str(r.returncode))
        r = run("user", "add", "--org", "康复职业技术学院", "--name", "赵老师", "--role", "teacher", "--token", admin, "--json")
        res.check(r.returncode == 0 and json.loads(r.stdout)["token"].startswith("zyk_"), "user add with the admin token prints a new token")
        r = run("migrate", "--json")
        res.check(r.returncode == 0 and json.loads(r.stdout)["applied"] == [], "migrate on an up-to-date catalog applies nothing")
        csv = os.path.join(z.repo_root(), "data", "majors-2021.csv")  # the project's own copy (data/README.md)
        r1 = run("vocab", "import-majors", csv, "--json")
        r2 = run("vocab", "import-majors", csv, "--json")
        ok = r1.returncode == 0 and r2.returncode == 0
        j1 = json.loads(r1.stdout) if ok else {}
        j2 = json.loads(r2.stdout) if ok else {}
        res.check(ok and j1["majorsInCatalog"] == 1349, "import-majors loads 1,349 majors", str(j1.get("majorsInCatalog")))
        res.check(ok and j2["result"]["inserted"] == 0 and j2["result"]["updated"] == 0, "re-running import-majors changes nothing")
        bad = os.path.join(work, "bad.csv")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("catalogCode,educationLevel,majorCode,majorName,parentCode,itemLevel\nX,VOCATIONAL_ALIEN,520601,康复,5206,MAJOR\n")
        r = run("vocab", "import-majors", bad)
        res.check(r.returncode == 65 and b"row 2" in r.stderr, "a bad majors file: exit 65 naming the row", r.stderr[:160].decode(errors="replace"))

        # Graceful shutdown even with an idle keep-alive connection open.
        idle = socket.create_connection((z.HOST, port), timeout=10)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.recv(4096)
        rc, seconds, graceful = server.stop(timeout=15)
        idle.close()
        res.check(rc == 0 and graceful, "SIGTERM with an idle keep-alive connection: clean exit", f"exit {rc} after {seconds:.1f} s")

        # With every scheduled job turned off the server still serves (an idle scheduler must
        # not end the service group, and the server with it).
        quiet = z.Server(binary, root, port, os.path.join(work, "server.log"))
        env_before = os.environ.get("ZYK_OPTIMIZE_INTERVAL_MINUTES")
        os.environ["ZYK_OPTIMIZE_INTERVAL_MINUTES"] = "0"
        try:
            quiet.start()
            quiet.wait_ready()
            time.sleep(2)
            status, _, _ = z.request(port, "GET", "/healthz")
            res.check(quiet.alive() and status == 200, "no scheduled jobs at all: the server keeps serving", f"alive {quiet.alive()}, status {status}")
            rc, seconds, graceful = quiet.stop(timeout=15)
            res.check(rc == 0 and graceful, "…and stops cleanly on SIGTERM", f"exit {rc} after {seconds:.1f} s")
        finally:
            quiet.kill9()
            if env_before is None:
                os.environ.pop("ZYK_OPTIMIZE_INTERVAL_MINUTES", None)
            else:
                os.environ["ZYK_OPTIMIZE_INTERVAL_MINUTES"] = env_before

        # Secrets never logged.
        log_text = open(os.path.join(work, "server.log"), "rb").read()
        res.check(admin.encode() not in log_text and teacher.encode() not in log_text, "no token appears in the server log")
    except Exception as e:  # noqa: BLE001
        res.check(False, "script ran to the end", repr(e))
        print(server.log_tail())
    finally:
        server.kill9()
        shutil.rmtree(work, ignore_errors=True)
    print(res.closing_line())
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
