"""Shared helpers for the process-level reliability scripts (R1, R6, ...).

Standard library only. Everything talks to 127.0.0.1 only. Nothing here changes the data root
behind the server's back except where a script does so on purpose (filler files on R6).
"""

import ctypes
import hashlib
import http.client
import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import time
import uuid

HOST = "127.0.0.1"
MP4_HEADER = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
PROBLEM_BASE = "https://ziyuanku.dev/problems/"
MB = 1024 * 1024


def repo_root():
    return os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def find_binary(arg):
    """The zyk binary: --bin, else $ZYK_BIN, else .build/debug/zyk, relative to the repo root."""
    path = arg or os.environ.get("ZYK_BIN") or ".build/debug/zyk"
    if not os.path.isabs(path):
        path = os.path.join(repo_root(), path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SystemExit(f"zyk binary not found or not executable: {path} (run `swift build` first, or set ZYK_BIN)")
    return path


def snapshot_binary(binary, dest_dir, attempts=5):
    """Copies the binary and its SwiftPM resource bundles (*.resources next to it) into
    dest_dir and returns the copy, so a `swift build` running meanwhile cannot replace or lock
    the program under test halfway through a run. The copy must answer --help."""
    import glob
    import shutil
    os.makedirs(dest_dir, exist_ok=True)
    target = os.path.join(dest_dir, os.path.basename(binary))
    last = None
    for _ in range(attempts):
        try:
            for bundle in glob.glob(os.path.join(os.path.dirname(binary), "*.resources")):
                dst = os.path.join(dest_dir, os.path.basename(bundle))
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(bundle, dst)
            shutil.copy2(binary, target + ".tmp")
            os.replace(target + ".tmp", target)
            r = subprocess.run([target, "--help"], capture_output=True, timeout=30)
            if r.returncode == 0:
                return target
            last = f"the copy answered --help with exit {r.returncode}"
        except OSError as e:
            last = repr(e)
        time.sleep(2)  # probably being relinked right now
    raise SystemExit(f"cannot take a working copy of {binary}: {last}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Results: named checks, printed as PASS/FAIL lines, then "N passed, M failed".


class Results:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            log(f"PASS {what}" + (f" ({detail})" if detail else ""))
        else:
            self.failed += 1
            self.failures.append(what + (f": {detail}" if detail else ""))
            log(f"FAIL {what}" + (f": {detail}" if detail else ""))
        return ok

    def closing_line(self):
        return f"{self.passed} passed, {self.failed} failed"


# --------------------------------------------------------------------------------------------
# The server process.


def _die_with_parent():
    """preexec_fn: the server gets SIGKILL if this script dies, so no server is ever orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    def __init__(self, binary, data_root, port, log_path, extra_args=()):
        self.binary = binary
        self.data_root = data_root
        self.port = port
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.alive()
        logf = open(self.log_path, "ab")
        logf.write(f"---- start #{self.starts + 1} at {time.strftime('%H:%M:%S')} ----\n".encode())
        logf.flush()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-root", self.data_root, "--port", str(self.port)] + self.extra_args,
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            close_fds=True)
        logf.close()
        self.starts += 1
        return self.proc.pid

    def wait_ready(self, timeout=30.0):
        """Polls GET /readyz until 200. Raises RuntimeError if the process exits or time runs out."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with code {self.proc.returncode} before it was ready; log tail:\n{self.log_tail()}")
            try:
                status, _, body = request(self.port, "GET", "/readyz", timeout=2.0)
                if status == 200:
                    return time.monotonic() - t0
                last = f"{status} {body[:200]!r}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.02)
        raise RuntimeError(f"server not ready after {timeout:.0f} s (last answer: {last}); log tail:\n{self.log_tail()}")

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self, timeout=20.0):
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns (exit code, seconds, graceful)."""
        if self.proc is None:
            return None, 0.0, True
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0, True
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
            return rc, time.monotonic() - t0, True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=30)
            return rc, time.monotonic() - t0, False

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()[-64 * 1024:]
            return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def cli(binary, *args, timeout=60):
    r = subprocess.run([binary, *args], capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"`zyk {' '.join(args)}` exited {r.returncode}: {r.stderr.decode(errors='replace')}{r.stdout.decode(errors='replace')}")
    return r.stdout.decode()


class KillRun:
    """The common start of a kill -9 script: seed and random generator, Results, signal
    handlers with a backstop alarm, a temporary work folder holding a snapshot of the binary
    (so a rebuild cannot swap it mid-run) and the Server. `space_needed(work)` may return a
    complaint (str) when the work folder lacks room. `failed` is set (after printing the FAIL
    set-up line and the closing line) when the run cannot start."""

    @staticmethod
    def add_arguments(ap):
        """The arguments every kill script takes (its own come after)."""
        ap.add_argument("--kills", type=int, default=200, help="number of kill -9 rounds (default 200)")
        ap.add_argument("--deadline", type=float, default=420.0, help="seconds for the whole run; hitting it fails (default 420)")
        ap.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock; printed)")
        ap.add_argument("--bin", default=None, help="zyk binary (default $ZYK_BIN or .build/debug/zyk)")
        ap.add_argument("--workdir", default=None, help="parent folder for the temporary data root")
        ap.add_argument("--keep", action="store_true", help="keep the data root and server log")

    def __init__(self, name, args, space_needed=None):
        import random
        import shutil
        import tempfile
        self.name = name
        self.seed = args.seed if args.seed is not None else int(time.time() * 1000) % (2 ** 31)
        self.rng = random.Random(self.seed)
        self.built = find_binary(args.bin)
        self.res = Results(name)
        self.failed = False
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(int(args.deadline) + 120)  # backstop if something hangs beyond all timeouts
        self.work = tempfile.mkdtemp(prefix=f"zyk-{name.lower()}-", dir=args.workdir)
        self.root = os.path.join(self.work, "data")
        problem = space_needed(self.work) if space_needed else None
        if problem is None:
            try:
                self.binary = snapshot_binary(self.built, os.path.join(self.work, "bin"))
            except SystemExit as e:
                problem = str(e)
        if problem is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            log(f"FAIL {name} set-up: {problem}")
            log("0 passed, 1 failed")
            self.failed = True
            return
        self.srv = Server(self.binary, self.root, free_port(), os.path.join(self.work, "server.log"))

    def finish(self, keep):
        """The common end: the server log tail on failure, the work folder kept (--keep, or
        ZYK_KEEP_ON_FAILURE after a failure) or removed, the closing line. Returns the exit code."""
        import shutil
        if self.res.failed:
            log("server log tail:\n" + self.srv.log_tail(30))
        if keep or (self.res.failed and os.environ.get("ZYK_KEEP_ON_FAILURE")):
            log(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        log(self.res.closing_line())
        return 1 if self.res.failed else 0


def make_teacher(binary, data_root, org="康复职业技术学院", name="王老师"):
    """Creates the organization (if needed) and a teacher; returns the teacher's token."""
    r = subprocess.run([binary, "org", "add", org, "--kind", "higherVocational", "--data-root", data_root], capture_output=True, timeout=60)
    if r.returncode != 0 and b"already exists" not in (r.stderr + r.stdout):
        raise RuntimeError(f"zyk org add failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    out = cli(binary, "user", "add", "--org", org, "--name", name, "--role", "teacher", "--data-root", data_root, "--json")
    return json.loads(out)["token"]


def has_subcommand(binary, name):
    r = subprocess.run([binary, "--help"], capture_output=True, timeout=30)
    text = (r.stdout + r.stderr).decode(errors="replace")
    in_list = False
    for line in text.splitlines():
        if line.strip().upper().startswith("SUBCOMMANDS"):
            in_list = True
            continue
        if in_list and line.strip().split(" ")[:1] == [name]:
            return True
    return False


# --------------------------------------------------------------------------------------------
# HTTP.


def request(port, method, path, headers=None, body=None, timeout=30.0):
    """One request over a fresh connection: (status, lower-case headers, body bytes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        h = {"Connection": "close"}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def request_head(method, path, headers, content_length):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: close", f"Content-Length: {content_length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class Response:
    def __init__(self, status, headers, body, complete):
        self.status = status
        self.headers = headers
        self.body = body
        self.complete = complete

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"Response({self.status}, complete={self.complete}, body={self.body[:300]!r})"


def parse_response(raw):
    """Parses a raw HTTP/1.1 response; returns a Response or None if even the head is missing."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = raw[:end].decode("iso-8859-1").split("\r\n")
    try:
        status = int(head[0].split(" ")[1])
    except (IndexError, ValueError):
        return None
    headers = {}
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    rest = raw[end + 4:]
    if "content-length" in headers:
        n = int(headers["content-length"])
        return Response(status, headers, rest[:n], len(rest) >= n)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, pos = b"", 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                return Response(status, headers, body, False)
            size = int(rest[pos:eol].split(b";")[0] or b"0", 16)
            if size == 0:
                return Response(status, headers, body, True)
            if len(rest) < eol + 2 + size:
                return Response(status, headers, body + rest[eol + 2:], False)
            body += rest[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
    return Response(status, headers, rest, None)  # ends with the connection


def stream_request(port, method, path, headers, body, timeout=60.0, chunk=256 * 1024):
    """Sends a request with a body while watching for an early answer (a server may answer 507
    or 413 before the body is done and close). Returns (Response or None, bytes of body sent,
    error text or None)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    mv = memoryview(body)
    raw = bytearray()
    sent = 0
    err = None
    deadline = time.monotonic() + timeout
    try:
        sock.sendall(request_head(method, path, headers, len(body)))
        sock.setblocking(False)
        sending = True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                err = f"timed out after {timeout:.0f} s ({sent} of {len(body)} body bytes sent)"
                break
            want_write = [sock] if sending and sent < len(body) else []
            r, w, _ = select.select([sock], want_write, [], min(left, 1.0))
            if r:
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError) as e:
                    err = f"connection reset while reading: {e}"
                    break
                if not data:
                    break
                raw += data
                resp = parse_response(bytes(raw))
                if resp is not None and resp.complete:
                    break
            if w:
                try:
                    n = sock.send(mv[sent:sent + chunk])
                    sent += n
                except (BrokenPipeError, ConnectionResetError) as e:
                    sending = False
                    err = f"send failed after {sent} body bytes: {e}"
                    # keep reading: the answer may already be on its way
                except BlockingIOError:
                    pass
    finally:
        sock.close()
    resp = parse_response(bytes(raw))
    if resp is not None and resp.complete is None:
        resp.complete = True  # body delimited by the close
    return resp, sent, err


# --------------------------------------------------------------------------------------------
# Request bodies.


def resource_metadata(title, **over):
    m = {
        "title": title,
        "description": "上肢康复训练的示范视频",
        "keywords": ["康复", "训练"],
        "resourceType": "video",
        "granularity": "asset",
        "educationLevel": "higherVocational",
        "majorCodes": ["520601"],
        "authors": [{"name": "王老师", "role": "author"}],
        "copyrightHolder": "康复职业技术学院",
        "license": "CC-BY-4.0",
        "originality": "original",
        "visibility": "public",
    }
    m.update(over)
    return m


def multipart_body(metadata, filename, data):
    """(content type, body bytes) for POST /v1/resources: the metadata part, then one file part."""
    boundary = "zykproc-" + uuid.uuid4().hex
    meta = json.dumps(metadata, ensure_ascii=False).encode("utf-8")
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="metadata"\r\n'
        "Content-Type: application/json\r\n\r\n").encode() + meta + (
        f"\r\n--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8")
    tail = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", head + data + tail


def video_bytes(rng, size):
    return MP4_HEADER + rng.randbytes(max(0, size - len(MP4_HEADER)))


def auth(token, content_type=None):
    h = {"Authorization": f"Bearer {token}"}
    if content_type:
        h["Content-Type"] = content_type
    return h


def is_problem(resp, status=None, type_suffix=None):
    """(ok, why): the response is an application/problem+json document (with the status and
    type asked for)."""
    if resp is None:
        return False, "no response at all"
    ct = resp.headers.get("content-type", "")
    if not ct.startswith("application/problem+json"):
        return False, f"status {resp.status}, content-type {ct!r}, body {resp.body[:200]!r}"
    try:
        doc = resp.json()
    except ValueError:
        return False, f"status {resp.status}: body is not JSON: {resp.body[:200]!r}"
    if status is not None and resp.status != status:
        return False, f"status {resp.status} (wanted {status}), type {doc.get('type')}, detail {doc.get('detail')!r}"
    if doc.get("status") != resp.status:
        return False, f"problem document status {doc.get('status')} != HTTP status {resp.status}"
    if type_suffix is not None and doc.get("type") != PROBLEM_BASE + type_suffix:
        return False, f"type {doc.get('type')!r} (wanted {PROBLEM_BASE + type_suffix}), detail {doc.get('detail')!r}"
    if not isinstance(doc.get("type"), str) or not doc.get("type"):
        return False, "problem document without a type"
    return True, f"{resp.status} {doc.get('type')}"


# --------------------------------------------------------------------------------------------
# On-disk checks.


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


HEX = set("0123456789abcdef")


class BlobScanner:
    """Walks blobs/ and checks every file hashes to its own name and sits at ab/cd/<sha256>.
    Files already verified and unchanged (same inode, size, mtime) are not hashed again."""

    def __init__(self, data_root):
        self.blobs = os.path.join(data_root, "blobs")
        self.cache = {}

    def scan(self, use_cache=True):
        """Returns (files: {sha256: size}, problems: [text])."""
        files, problems = {}, []
        for dirpath, dirnames, filenames in os.walk(self.blobs):
            rel = os.path.relpath(dirpath, self.blobs)
            depth = 0 if rel == "." else rel.count(os.sep) + 1
            for d in dirnames:
                if depth >= 2 or len(d) != 2 or not set(d) <= HEX:
                    problems.append(f"unexpected folder blobs/{os.path.join(rel, d)}")
            for name in filenames:
                path = os.path.join(dirpath, name)
                relp = os.path.relpath(path, self.blobs)
                if depth != 2 or len(name) != 64 or not set(name) <= HEX or rel != f"{name[:2]}{os.sep}{name[2:4]}":
                    problems.append(f"stray file blobs/{relp}")
                    continue
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
                if not use_cache or self.cache.get(path) != key:
                    digest = sha256_file(path)
                    if digest != name:
                        problems.append(f"partial or corrupt blob blobs/{relp}: {st.st_size} bytes hash to {digest}")
                        self.cache.pop(path, None)
                        continue
                    self.cache[path] = key
                files[name] = st.st_size
        return files, problems


def tmp_uploads(data_root):
    try:
        return sorted(n for n in os.listdir(os.path.join(data_root, "tmp")) if n.startswith("upload-"))
    except FileNotFoundError:
        return []


def blob_path(data_root, sha):
    return os.path.join(data_root, "blobs", sha[:2], sha[2:4], sha)


def open_catalog_ro(data_root):
    path = os.path.join(data_root, "catalog.sqlite")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def check_catalog(data_root, blob_files):
    """integrity_check, foreign_key_check, and every blobs / version_files row against the files
    on disk. `blob_files` is {sha256: size} from BlobScanner.scan. Returns a dict."""
    out = {"integrity": None, "fk": [], "orphans": [], "blob_rows": {}, "unreferenced": []}
    db = open_catalog_ro(data_root)
    try:
        db.execute("BEGIN")  # one snapshot for everything below
        out["integrity"] = "; ".join(r[0] for r in db.execute("PRAGMA integrity_check").fetchall())
        out["fk"] = db.execute("PRAGMA foreign_key_check").fetchall()
        rows = dict(db.execute("SELECT sha256, size FROM blobs").fetchall())
        out["blob_rows"] = rows
        for sha, size in rows.items():
            p = blob_path(data_root, sha)
            if not os.path.exists(p):
                out["orphans"].append(f"blobs row {sha} ({size} bytes): file missing")
            elif os.path.getsize(p) != size:
                out["orphans"].append(f"blobs row {sha}: recorded {size} bytes, file has {os.path.getsize(p)}")
        for rid, ver, name, sha, size in db.execute("SELECT resource_id, version, name, sha256, size FROM version_files"):
            p = blob_path(data_root, sha)
            if not os.path.exists(p):
                out["orphans"].append(f"version_files row {rid} v{ver} {name!r} -> {sha}: file missing")
            elif os.path.getsize(p) != size:
                out["orphans"].append(f"version_files row {rid} v{ver} {name!r}: recorded {size} bytes, file has {os.path.getsize(p)}")
            elif sha in rows and rows[sha] != size:
                out["orphans"].append(f"version_files row {rid} v{ver} {name!r}: size {size} != blobs.size {rows[sha]}")
        for sha, size in blob_files.items():
            if sha not in rows:
                out["unreferenced"].append(sha)
        db.execute("COMMIT")
    finally:
        db.close()
    return out


# --------------------------------------------------------------------------------------------
# Time limits and signals shared by the scripts.


class HardTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise HardTimeout("hard time limit reached")


def on_term(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
