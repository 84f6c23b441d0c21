#!/usr/bin/env python3
"""R2 (workflow): `kill -9` of the server at random moments during version / publish / restore
traffic, then restart.

Set-up: one organization, a teacher (the owner) and a reviewer of that organization (created
with `zyk org add` / `zyk user add`), and a handful of resources (POST /v1/resources, small
video files). Each round then sends a random mix of requests on those resources from 1-4
threads at once, each thread a chain of 1-3 requests: PATCH (title, keywords, sometimes
majorCodes; sometimes with If-Match), POST .../versions/{n}/restore, POST .../files (replaces
the primary file), submit / recall / withdraw (owner), approve / reject / publish / withdraw
(reviewer), and now and then a new resource. 409 and 412 answers are normal outcomes of the
random mix. The server is SIGKILLed at a random moment: with no traffic ("idle"), right after
the requests start ("early"), at a random point while they run ("during"), or just after every
answer came ("after"). It is restarted, /readyz is awaited, and these are checked after every
restart (all read-only; the checks run while the restarted server is idle):

  (a) PRAGMA integrity_check = ok and PRAGMA foreign_key_check is empty. Python's sqlite3 opens
      catalog.sqlite read-only and cannot load the server's 'zyk' FTS5 tokenizer; the script
      never touches resource_search itself, and should integrity_check ever report that the
      tokenizer is missing (SQLite >= 3.44 checks virtual tables too), that one message - and
      only that one - is ignored. Every other line must be absent;
  (b) `zyk audit verify --data-root DIR` exits 0 (the hash chain and its recorded head);
  (c) no half-written version: for every resource current_version = max(versions.number) and
      its versions are 1..current_version with no gap; every version has at least one
      version_files row and exactly one primary file; every version_files row's blob has its
      `blobs` row and its file on disk with the recorded size; every blob file hashes to its
      name; published_version is NULL or 1..current_version; status is one of the five states,
      'published' means published_version = current_version and 'withdrawn' means no
      published_version; the listing columns (title, resource_majors) follow the version
      readers see (published_version, else current_version);
  (d) the catalog agrees with the audit log written in the same transactions: replaying every
      resource.* entry (create, version, restore, submit, recall, approve, reject, publish,
      withdraw) gives each resource's status, current_version and published_version, each
      version has exactly one entry that created it, and each entry's "from" matches;
  (e) every request answered 2xx before the kill is visible after the restart: a PATCH / files
      / restore answered with version n -> version n exists with the content sent (title and
      majors, the new file's sha256, or equal to the restored version) and current_version >= n;
      every answered action has its audit entry; an approve / publish answered with version v ->
      published_version >= v unless the audit log shows a later withdraw; a withdraw answered ->
      published_version NULL unless a later approve / publish;
  (f) GET /v1/resources/{id} (the owner's token) answers the version, status and
      publishedVersion the catalog has, for every resource;
  (g) no tmp/upload-* file is left after the restart; every answer given before a kill was
      200, 201, 409 or 412, and no connection failed while the server was still alive.

At the end one more round runs without a kill, the server is stopped with SIGTERM (must exit 0),
and (a)-(e) and (g) run once more on the stopped data root with a full re-hash of every blob.
Blob files without a `blobs` row (a kill between moving the bytes into place and the catalog
transaction, or a POST .../files refused after its bytes were stored) are counted and reported,
not failed: nothing refers to them. Prints PASS/FAIL lines, a summary and the closing line
"N passed, M failed"; exits 1 on any failure.

Standard library only; talks to 127.0.0.1 only.
"""

import sys

sys.dont_write_bytecode = True

import argparse
import collections
import hashlib
import json
import os
import signal
import statistics
import subprocess
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zykproc as zp  # noqa: E402

HardTimeout = zp.HardTimeout

KILL_MODES = [("idle", 0.05), ("early", 0.15), ("during", 0.55), ("after", 0.25)]
STATUSES = {"draft", "inReview", "published", "rejected", "withdrawn"}
NORMAL_ANSWERS = {200, 201, 409, 412}
TRANSITIONS = ["submit", "recall", "approve", "reject", "publish", "withdraw"]
VERSIONING_AUDIT = {"resource.create", "resource.version", "resource.restore"}
PRIMARY_NAME = "demo.mp4"
# Actions that make sense from each state (the mix still sends the others sometimes).
LIKELY = {
    "draft": ["patch", "patch", "restore", "files", "submit", "submit", "publish"],
    "inReview": ["approve", "approve", "reject", "recall", "publish", "patch"],
    "published": ["patch", "patch", "restore", "files", "withdraw"],
    "rejected": ["patch", "submit", "publish", "restore"],
    "withdrawn": ["submit", "publish", "patch"],
}
ANY_ACTION = ["patch", "restore", "files"] + TRANSITIONS
TOPICS = ["上肢康复训练", "步态分析", "言语治疗入门", "作业治疗案例", "康复评定量表", "物理因子治疗", "心肺康复", "儿童康复"]


def pick(rng, table):
    x = rng.random()
    for name, p in table:
        if x < p:
            return name
        x -= p
    return table[-1][0]


def simulate(status, pub, action):
    """The state after `action` succeeds (to plan a plausible next step of a chain)."""
    if action in ("patch", "restore", "files"):
        return ("draft", pub) if status != "inReview" else (status, pub)
    if action == "submit" and status in ("draft", "rejected", "withdrawn"):
        return "inReview", pub
    if action == "recall" and status == "inReview":
        return "draft", pub
    if action in ("approve",) and status == "inReview":
        return "published", True
    if action == "publish" and status != "published":
        return "published", True
    if action == "reject" and status == "inReview":
        return "rejected", pub
    if action == "withdraw" and pub:
        return (status if status != "published" else "withdrawn"), None
    return status, pub


# --------------------------------------------------------------------------------------------
# Set-up.


def add_user(binary, root, org, name, role):
    out = zp.cli(binary, "user", "add", "--org", org, "--name", name, "--role", role, "--data-root", root, "--json")
    doc = json.loads(out)
    return doc["id"], doc["token"]


def files_body(filename, data, note):
    """(content type, body) for POST /v1/resources/{id}/files: a `changes` part and one file part."""
    boundary = "zykr2-" + os.urandom(12).hex()
    changes = json.dumps({"changeNote": note}, ensure_ascii=False).encode("utf-8")
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="changes"\r\n'
        "Content-Type: application/json\r\n\r\n").encode() + changes + (
        f"\r\n--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8") + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


# --------------------------------------------------------------------------------------------
# Traffic.


class Ctx:
    def __init__(self, port, owner, reviewer, majors, rng):
        self.port = port
        self.owner = owner          # (user id, token)
        self.reviewer = reviewer
        self.majors = majors
        self.rng = rng
        self.serial = 0
        self.latency = 0.03         # running estimate of one request's time, for the kill window
        self.lock = threading.Lock()

    def next_serial(self):
        self.serial += 1
        return self.serial


def plan_round(ctx, known, can_create):
    """A list of chains; each chain is a list of step dicts run in order by one thread."""
    rng = ctx.rng
    chains = []
    ids = sorted(known)
    for _ in range(rng.randint(1, 4)):
        if can_create and rng.random() < 0.06:
            chains.append([plan_step(ctx, "create", None, None)])
            can_create = False
            continue
        rid = rng.choice(ids)
        status, cur, pub = known[rid]
        sim_status, sim_pub = status, pub
        chain = []
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.25:
                action = rng.choice(ANY_ACTION)
            else:
                choices = list(LIKELY[sim_status])
                if sim_pub and sim_status != "published":
                    choices.append("withdraw")
                action = rng.choice(choices)
            chain.append(plan_step(ctx, action, rid, cur))
            sim_status, sim_pub = simulate(sim_status, sim_pub, action)
        chains.append(chain)
    return chains


def plan_step(ctx, action, rid, cur):
    rng = ctx.rng
    n = ctx.next_serial()
    step = {"action": action, "rid": rid, "serial": n, "if_match": rng.random() < 0.3}
    if action == "create":
        data = zp.video_bytes(rng, rng.randint(2048, 24 * 1024))
        step["sha256"] = hashlib.sha256(data).hexdigest()
        step["title"] = f"{rng.choice(TOPICS)} 新建 #{n}"
        step["body"] = zp.multipart_body(zp.resource_metadata(step["title"]), PRIMARY_NAME, data)
    elif action == "patch":
        step["title"] = f"{rng.choice(TOPICS)} 第{n}稿"
        patch = {"title": step["title"], "changeNote": f"r2 edit #{n}", "keywords": ["康复", rng.choice(["训练", "评定", "治疗", "护理"]), f"k{n}"]}
        if ctx.majors and rng.random() < 0.3:
            step["majors"] = sorted(rng.sample(ctx.majors, rng.randint(1, min(3, len(ctx.majors)))))
            patch["majorCodes"] = step["majors"]
        step["body"] = json.dumps(patch, ensure_ascii=False).encode("utf-8")
    elif action == "restore":
        step["from"] = rng.randint(1, max(1, cur))
    elif action == "files":
        data = zp.video_bytes(rng, rng.randint(2048, 32 * 1024))
        step["sha256"] = hashlib.sha256(data).hexdigest()
        step["body"] = files_body(PRIMARY_NAME, data, f"r2 new file #{n}")
    elif action == "reject":
        step["body"] = json.dumps({"reason": f"请补充字幕 (#{n})"}, ensure_ascii=False).encode("utf-8")
    if action in ("submit", "recall", "patch", "restore", "files", "create"):
        step["who"] = "owner"
    elif action in ("approve", "reject", "publish"):
        step["who"] = "reviewer"
    else:  # withdraw: owner or reviewer
        step["who"] = rng.choice(["owner", "reviewer"])
    return step


def build_request(ctx, step, version):
    """(method, path, headers, body) for a step; `version` is the chain's idea of the newest version."""
    token = ctx.owner[1] if step["who"] == "owner" else ctx.reviewer[1]
    a, rid = step["action"], step["rid"]
    if a == "create":
        ctype, body = step["body"]
        return "POST", "/v1/resources", zp.auth(token, ctype), body
    if a == "patch":
        method, path, headers, body = "PATCH", f"/v1/resources/{rid}", zp.auth(token, "application/json"), step["body"]
    elif a == "restore":
        method, path, headers, body = "POST", f"/v1/resources/{rid}/versions/{step['from']}/restore", zp.auth(token), None
    elif a == "files":
        ctype, body = step["body"]
        method, path, headers = "POST", f"/v1/resources/{rid}/files", zp.auth(token, ctype)
    elif a == "reject":
        method, path, headers, body = "POST", f"/v1/resources/{rid}/reject", zp.auth(token, "application/json"), step["body"]
    else:
        method, path, headers, body = "POST", f"/v1/resources/{rid}/{a}", zp.auth(token), None
    if step["if_match"] and version:
        headers["If-Match"] = f'"v{version}"'
    return method, path, headers, body


def run_chain(ctx, chain, version, stop, out):
    for step in chain:
        if stop.is_set():
            return
        method, path, headers, body = build_request(ctx, step, version)
        rec = {"step": step, "t0": time.monotonic(), "t1": None, "status": None, "doc": None, "error": None}
        out.append(rec)
        try:
            st, _, data = zp.request(ctx.port, method, path, headers, body, timeout=20.0)
            rec["status"] = st
            try:
                rec["doc"] = json.loads(data.decode("utf-8")) if data else None
            except ValueError:
                rec["doc"] = {"_raw": data[:300].decode("utf-8", "replace")}
            doc = rec["doc"] if isinstance(rec["doc"], dict) else {}
            if 200 <= st < 300 and isinstance(doc.get("version"), int):
                version = doc["version"]
            elif st == 412 and isinstance(doc.get("currentVersion"), (int, float)):
                version = int(doc["currentVersion"])
        except Exception as e:  # the kill: reset, refused, incomplete read
            rec["error"] = f"{type(e).__name__}: {e}"
        rec["t1"] = time.monotonic()
        if rec["status"] is not None:
            with ctx.lock:
                ctx.latency = 0.8 * ctx.latency + 0.2 * (rec["t1"] - rec["t0"])


def traffic_round(ctx, srv, chains, known, mode, kill=True):
    """Runs the chains and (if kill) SIGKILLs the server at the moment `mode` says.
    Returns (records, in flight at the kill, kill time)."""
    rng = ctx.rng
    stop = threading.Event()
    out = []
    threads = []
    if mode != "idle" or not kill:
        for chain in chains:
            rid = chain[0]["rid"]
            t = threading.Thread(target=run_chain, args=(ctx, chain, known[rid][1] if rid else None, stop, out), daemon=True)
            threads.append(t)
        for t in threads:
            t.start()
    if not kill:
        for t in threads:
            t.join(60)
        return out, 0, None
    if mode == "idle":
        time.sleep(rng.uniform(0, 0.01))
    elif mode == "early":
        time.sleep(rng.uniform(0, 0.004))
    elif mode == "during":
        # from the moment the first request is on its way to a random point in the chains' run
        end = time.monotonic() + 0.2
        while not out and time.monotonic() < end:
            time.sleep(0.0005)
        longest = max(len(c) for c in chains)
        time.sleep(rng.uniform(0, ctx.latency * longest * 1.2))
    else:  # after: every answer is in
        for t in threads:
            t.join(60)
        time.sleep(rng.uniform(0, 0.01))
    stop.set()
    in_flight = sum(1 for r in list(out) if r["t1"] is None)
    kill_t = time.monotonic()
    srv.kill9()
    for t in threads:
        t.join(30)
    return out, in_flight, kill_t


# --------------------------------------------------------------------------------------------
# Checks.


def snapshot(root):
    """One read transaction over what the checks need."""
    db = zp.open_catalog_ro(root)
    try:
        db.execute("BEGIN")
        s = {}
        s["integrity"] = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
        s["fk"] = db.execute("PRAGMA foreign_key_check").fetchall()
        s["resources"] = {
            r[0]: {"status": r[1], "cur": r[2], "pub": r[3], "title": r[4], "owner": r[5]}
            for r in db.execute("SELECT id, status, current_version, published_version, title, owner_id FROM resources")}
        s["versions"] = {}
        s["bad_metadata"] = []
        for rid, n, meta in db.execute("SELECT resource_id, number, metadata FROM versions"):
            try:
                s["versions"][(rid, n)] = json.loads(meta)
            except ValueError:
                s["bad_metadata"].append(f"{rid[:8]} v{n}")
                s["versions"][(rid, n)] = {}
        s["files"] = collections.defaultdict(list)
        for rid, n, name, sha, size, media, role, pos in db.execute(
                "SELECT resource_id, version, name, sha256, size, media_type, role, position FROM version_files ORDER BY resource_id, version, position"):
            s["files"][(rid, n)].append((name, sha, size, media, role, pos))
        s["blob_rows"] = dict(db.execute("SELECT sha256, size FROM blobs").fetchall())
        s["majors"] = collections.defaultdict(set)
        for rid, code in db.execute("SELECT resource_id, major_code FROM resource_majors"):
            s["majors"][rid].add(code)
        s["audit"] = [
            {"seq": r[0], "action": r[1], "rid": r[2], "version": r[3], "details": r[4], "actor": r[5]}
            for r in db.execute(
                "SELECT seq, action, resource_id, version, details, actor_id FROM audit_log "
                "WHERE resource_id IS NOT NULL AND action LIKE 'resource.%' ORDER BY seq")]
        db.execute("COMMIT")
        return s
    finally:
        db.close()


def integrity_problems(lines):
    """integrity_check lines other than 'ok' and the missing-'zyk'-tokenizer message (see docstring)."""
    return [ln for ln in lines if ln != "ok" and not ("tokenizer" in ln and "zyk" in ln)]


def check_invariants(s, root, bad):
    res, versions, files = s["resources"], s["versions"], s["files"]
    have = collections.defaultdict(set)
    for rid, n in versions:
        have[rid].add(n)
        if rid not in res:
            bad["versions"].append(f"version {rid[:8]} v{n} without its resource row")
    for m in s["bad_metadata"]:
        bad["versions"].append(f"version {m}: metadata is not JSON")
    for rid, r in res.items():
        cur, pub, st = r["cur"], r["pub"], r["status"]
        ns = have.get(rid, set())
        if ns != set(range(1, cur + 1)):
            missing = sorted(set(range(1, cur + 1)) - ns)
            extra = sorted(ns - set(range(1, cur + 1)))
            bad["versions"].append(f"{rid[:8]}: current_version {cur} but versions missing {missing[:5]} / beyond it {extra[:5]}")
        if st not in STATUSES:
            bad["state"].append(f"{rid[:8]}: status {st!r}")
        if pub is not None and not (1 <= pub <= cur):
            bad["state"].append(f"{rid[:8]}: published_version {pub} with current_version {cur}")
        if st == "published" and pub != cur:
            bad["state"].append(f"{rid[:8]}: status published but published_version {pub}, current_version {cur}")
        if st == "withdrawn" and pub is not None:
            bad["state"].append(f"{rid[:8]}: status withdrawn but published_version {pub}")
        shown = pub if pub is not None else cur
        meta = versions.get((rid, shown))
        if meta is not None:
            if r["title"] != meta.get("title"):
                bad["listing"].append(f"{rid[:8]}: resources.title {r['title']!r} but version {shown} has {meta.get('title')!r}")
            if s["majors"].get(rid, set()) != set(meta.get("majorCodes") or []):
                bad["listing"].append(f"{rid[:8]}: resource_majors {sorted(s['majors'].get(rid, set()))} but version {shown} has {meta.get('majorCodes')}")
    for key in versions:
        fl = files.get(key, [])
        if not fl:
            bad["files"].append(f"{key[0][:8]} v{key[1]}: version without version_files rows")
        elif sum(1 for f in fl if f[4] == "primary") != 1:
            bad["files"].append(f"{key[0][:8]} v{key[1]}: {sum(1 for f in fl if f[4] == 'primary')} primary files")
    for key, fl in files.items():
        if key not in versions:
            bad["files"].append(f"version_files rows for {key[0][:8]} v{key[1]} without a versions row")
        for name, sha, size, _, _, _ in fl:
            if s["blob_rows"].get(sha) is None:
                bad["files"].append(f"{key[0][:8]} v{key[1]} {name}: blob {sha[:12]} has no blobs row")
            p = zp.blob_path(root, sha)
            if not os.path.exists(p):
                bad["files"].append(f"{key[0][:8]} v{key[1]} {name}: blob file {sha[:12]} missing")
            elif os.path.getsize(p) != size:
                bad["files"].append(f"{key[0][:8]} v{key[1]} {name}: blob file {sha[:12]} has {os.path.getsize(p)} bytes, row says {size}")
    replay_audit(s, bad)


def replay_audit(s, bad):
    """Replays the resource.* audit entries and compares with the resources rows and versions."""
    state = {}
    created = collections.defaultdict(list)
    for e in s["audit"]:
        rid, a, v = e["rid"], e["action"], e["version"]
        try:
            det = json.loads(e["details"])
        except ValueError:
            det = {}
        tag = f"audit #{e['seq']} {a} {rid[:8]} v{v}"
        if a == "resource.create":
            if rid in state:
                bad["audit_replay"].append(f"{tag}: second create")
            state[rid] = ["draft", 1, None]
            created[rid].append(v)
            if v != 1:
                bad["audit_replay"].append(f"{tag}: create of a version other than 1")
            continue
        if rid not in state:
            if a in VERSIONING_AUDIT or a[len("resource."):] in TRANSITIONS:
                bad["audit_replay"].append(f"{tag}: entry before the resource's create")
            continue
        st = state[rid]
        frm = det.get("from")
        if a in ("resource.version", "resource.restore"):
            created[rid].append(v)
            if v != st[1] + 1:
                bad["audit_replay"].append(f"{tag}: new version {v} after version {st[1]}")
            if frm is not None and frm != st[0]:
                bad["audit_replay"].append(f"{tag}: from {frm!r} but the replayed status is {st[0]}")
            st[0], st[1] = "draft", v
        elif a[len("resource."):] in TRANSITIONS:
            act = a[len("resource."):]
            if v != st[1]:
                bad["audit_replay"].append(f"{tag}: acted on version {v}, replayed current version {st[1]}")
            if frm is not None and frm != st[0]:
                bad["audit_replay"].append(f"{tag}: from {frm!r} but the replayed status is {st[0]}")
            if act == "withdraw":
                # A newer version being drafted or reviewed keeps its status; only the published one goes.
                pending = st[2] is not None and st[2] < st[1]
                st[0] = st[0] if pending else "withdrawn"
                st[2] = None
            else:
                st[0] = {"submit": "inReview", "recall": "draft", "approve": "published", "publish": "published",
                         "reject": "rejected"}[act]
                if act in ("approve", "publish"):
                    st[2] = st[1]
            if det.get("to") is not None and det.get("to") != st[0]:
                bad["audit_replay"].append(f"{tag}: to {det.get('to')!r}, expected {st[0]}")
    for rid, r in s["resources"].items():
        st = state.get(rid)
        if st is None:
            bad["audit_replay"].append(f"{rid[:8]}: resource without a resource.create audit entry")
            continue
        if (r["status"], r["cur"], r["pub"]) != tuple(st):
            bad["audit_replay"].append(
                f"{rid[:8]}: catalog has ({r['status']}, v{r['cur']}, published {r['pub']}), the audit log replays to ({st[0]}, v{st[1]}, published {st[2]})")
        if sorted(created[rid]) != list(range(1, r["cur"] + 1)):
            bad["audit_replay"].append(f"{rid[:8]}: versions 1..{r['cur']} but version-creating entries for {sorted(created[rid])[:12]}")
    for rid in state:
        if rid not in s["resources"]:
            bad["audit_replay"].append(f"{rid[:8]}: audited create but no resource row")


def check_acked(records, s, tag, bad, counts):
    """(e): every answer 2xx before the kill is visible in snapshot `s`."""
    res, versions, files = s["resources"], s["versions"], s["files"]
    by_rid = collections.defaultdict(list)
    for e in s["audit"]:
        by_rid[e["rid"]].append(e)
    for rec in records:
        st = rec["status"]
        if st is None or not (200 <= st < 300):
            continue
        step, doc = rec["step"], rec["doc"] if isinstance(rec["doc"], dict) else {}
        a = step["action"]
        counts[a] += 1
        rid = doc.get("id") if a == "create" else step["rid"]
        v = doc.get("version")
        where = f"{tag}: {a} #{step['serial']} on {str(rid)[:8]} answered {st} version {v}"
        if not isinstance(v, int) or not rid:
            bad["acked"].append(f"{where}: answer without id/version: {str(doc)[:200]}")
            continue
        r = res.get(rid)
        if r is None:
            bad["acked"].append(f"{where}: the resource is gone")
            continue
        entries = by_rid.get(rid, [])
        if a in ("create", "patch", "files", "restore"):
            want = {"create": "resource.create", "restore": "resource.restore"}.get(a, "resource.version")
            if a == "create" and v != 1:
                bad["acked"].append(f"{where}: a new resource should be version 1")
            if (rid, v) not in versions or r["cur"] < v:
                bad["acked"].append(f"{where}: after the restart current_version {r['cur']}, version {v} exists: {(rid, v) in versions}")
                continue
            if sum(1 for e in entries if e["action"] == want and e["version"] == v) != 1:
                bad["acked"].append(f"{where}: {sum(1 for e in entries if e['action'] == want and e['version'] == v)} {want} audit entries for version {v}")
            meta = versions[(rid, v)]
            if a in ("create", "patch") and meta.get("title") != step["title"]:
                bad["acked"].append(f"{where}: version {v} has title {meta.get('title')!r}, sent {step['title']!r}")
            if a == "patch" and "majors" in step and sorted(meta.get("majorCodes") or []) != step["majors"]:
                bad["acked"].append(f"{where}: version {v} has majors {meta.get('majorCodes')}, sent {step['majors']}")
            if a in ("create", "files"):
                got = [f for f in files.get((rid, v), []) if f[0] == PRIMARY_NAME]
                if not got or got[0][1] != step["sha256"]:
                    bad["acked"].append(f"{where}: version {v} file {PRIMARY_NAME} is {got[:1]}, sent sha256 {step['sha256'][:12]}")
            if a == "restore":
                m = step["from"]
                if versions.get((rid, m)) != meta:
                    bad["acked"].append(f"{where}: version {v} metadata differs from the restored version {m}")
                fa = [f[:5] for f in files.get((rid, m), [])]
                fb = [f[:5] for f in files.get((rid, v), [])]
                if fa != fb:
                    bad["acked"].append(f"{where}: version {v} files {fb} differ from the restored version {m}'s {fa}")
            continue
        # a workflow action
        mine = [e for e in entries if e["action"] == f"resource.{a}" and e["version"] == v]
        if not mine:
            bad["acked"].append(f"{where}: no resource.{a} audit entry for version {v}")
            continue
        last = max(e["seq"] for e in mine)
        if a in ("approve", "publish"):
            later_withdraw = any(e["action"] == "resource.withdraw" and e["seq"] > last for e in entries)
            if r["pub"] is None and not later_withdraw:
                bad["acked"].append(f"{where}: published_version is NULL after the restart and no later withdraw")
            elif r["pub"] is not None and r["pub"] < v:
                bad["acked"].append(f"{where}: published_version {r['pub']} < {v} after the restart")
        elif a == "withdraw":
            later_pub = any(e["action"] in ("resource.approve", "resource.publish") and e["seq"] > last for e in entries)
            if r["pub"] is not None and not later_pub:
                bad["acked"].append(f"{where}: published_version {r['pub']} after the restart and no later approve/publish")


def check_api(port, token, s, tag, bad):
    """(f): the restarted server answers what the catalog has."""
    for rid, r in sorted(s["resources"].items()):
        try:
            st, _, data = zp.request(port, "GET", f"/v1/resources/{rid}", zp.auth(token), timeout=20.0)
        except OSError as e:
            bad["api"].append(f"{tag}: GET {rid[:8]} failed: {e!r}")
            continue
        if st != 200:
            bad["api"].append(f"{tag}: GET {rid[:8]} -> {st} {data[:200]!r}")
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            bad["api"].append(f"{tag}: GET {rid[:8]} -> 200 with a body that is not JSON: {data[:200]!r}")
            continue
        got = (doc.get("version"), doc.get("status"), doc.get("publishedVersion"))
        if got != (r["cur"], r["status"], r["pub"]):
            bad["api"].append(f"{tag}: GET {rid[:8]} answers (version, status, publishedVersion) {got}, catalog has {(r['cur'], r['status'], r['pub'])}")


def check_answers(records, kill_t, tag, bad, stats):
    """(g): answers before the kill are normal ones; connections fail only because of the kill."""
    for rec in records:
        a = rec["step"]["action"]
        if rec["status"] is not None:
            stats["answers"][rec["status"]] += 1
            if rec["status"] not in NORMAL_ANSWERS:
                bad["answers"].append(f"{tag}: {a} #{rec['step']['serial']} answered {rec['status']}: {str(rec['doc'])[:300]}")
        elif rec["t1"] is None:
            bad["answers"].append(f"{tag}: {a} #{rec['step']['serial']} still had no answer 30 s after the kill")
        elif rec["error"] is not None:
            stats["unanswered"] += 1
            if kill_t is None or rec["t1"] < kill_t:
                bad["answers"].append(f"{tag}: {a} #{rec['step']['serial']} failed while the server was alive: {rec['error']}")


def audit_verify(binary, root):
    r = subprocess.run([binary, "audit", "verify", "--data-root", root], capture_output=True, timeout=120)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()[-400:]


def run_checks(ctx, binary, root, scanner, records, tag, bad, stats, api=True, full_rehash=False):
    """Everything after a restart (or after the final stop when api=False). Returns the snapshot."""
    files_on_disk, partial = scanner.scan(use_cache=not full_rehash)
    for p in partial:
        bad["partial"].append(f"{tag}: {p}")
    stale = zp.tmp_uploads(root)
    if stale:
        bad["tmp"].append(f"{tag}: {stale[:3]}")
    s = snapshot(root)
    integ = integrity_problems(s["integrity"])
    if integ:
        bad["integrity"].append(f"{tag}: {'; '.join(integ)[:300]}")
    if s["fk"]:
        bad["fk"].append(f"{tag}: {s['fk'][:5]}")
    check_invariants(s, root, bad)
    check_acked(records, s, tag, bad, stats["acked"])
    rc, text = audit_verify(binary, root)
    stats["audit_verify_runs"] += 1
    if rc != 0:
        bad["audit_verify"].append(f"{tag}: exit {rc}: {text}")
    if api:
        check_api(ctx.port, ctx.owner[1], s, tag, bad)
    stats["unreferenced_files"] = sum(1 for sha in files_on_disk if sha not in s["blob_rows"])
    # POST .../files answered 409/412 (not killed) whose bytes were nevertheless stored in blobs/
    for rec in records:
        if rec["step"]["action"] == "files" and rec["status"] in (409, 412):
            sha = rec["step"]["sha256"]
            if sha in files_on_disk and sha not in s["blob_rows"]:
                stats["refused_leaks"].add((sha, rec["status"]))
    return s


def known_from(s):
    return {rid: (r["status"], r["cur"], r["pub"]) for rid, r in s["resources"].items()}


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    zp.KillRun.add_arguments(ap)
    ap.add_argument("--resources", type=int, default=6, help="resources created before the first kill (default 6)")
    ap.add_argument("--max-resources", type=int, default=10, help="rounds create new resources up to this many (default 10)")
    args = ap.parse_args()
    if args.kills < 1 or args.resources < 1 or args.max_resources < args.resources:
        ap.error("need --kills >= 1, --resources >= 1 and --max-resources >= --resources")

    run = zp.KillRun("R2", args)
    if run.failed:
        return 1
    seed, rng, res, built, binary, work, root, srv = run.seed, run.rng, run.res, run.built, run.binary, run.work, run.root, run.srv
    zp.log(f"R2: {args.kills} kills, {args.resources}-{args.max_resources} resources, seed {seed}, deadline {args.deadline:g} s")
    zp.log(f"R2: binary {built} (run from a copy), data root {root}, port {srv.port}")

    t0 = time.monotonic()
    bad = collections.defaultdict(list)
    stats = {
        "kills": 0, "modes": collections.Counter(), "actions": collections.Counter(), "answers": collections.Counter(),
        "acked": collections.Counter(), "unanswered": 0, "in_flight": collections.Counter(), "restart": [],
        "audit_verify_runs": 0, "unreferenced_files": 0, "sent": 0, "refused_leaks": set(),
    }
    scanner = zp.BlobScanner(root)
    deadline_hit = False
    aborted = None
    setup_ok = False
    ctx = None
    final_records = []
    try:
        srv.start()
        srv.wait_ready()
        org = "康复职业技术学院"
        zp.cli(binary, "org", "add", org, "--kind", "higherVocational", "--data-root", root)
        owner = add_user(binary, root, org, "王老师", "teacher")
        reviewer = add_user(binary, root, org, "李审核", "reviewer")
        db = zp.open_catalog_ro(root)
        try:
            majors = [r[0] for r in db.execute(
                "SELECT code FROM majors WHERE item_level = 'major' AND education_level = 'higherVocational' ORDER BY code LIMIT 40")]
        finally:
            db.close()
        ctx = Ctx(srv.port, owner, reviewer, majors, rng)
        for i in range(args.resources):
            step = plan_step(ctx, "create", None, None)
            method, path, headers, body = build_request(ctx, step, None)
            st, _, data = zp.request(srv.port, method, path, headers, body, timeout=60)
            if st != 201:
                raise RuntimeError(f"creating resource {i + 1} answered {st}: {data[:300]!r}")
        s = run_checks(ctx, binary, root, scanner, [], "set-up", bad, stats)
        known = known_from(s)
        setup_ok = True

        for i in range(args.kills):
            if time.monotonic() - t0 > args.deadline:
                deadline_hit = True
                break
            mode = pick(rng, KILL_MODES)
            chains = plan_round(ctx, known, len(known) < args.max_resources)
            stats["modes"][mode] += 1
            if mode != "idle":
                for c in chains:
                    for step in c:
                        stats["actions"][step["action"]] += 1
            records, in_flight, kill_t = traffic_round(ctx, srv, chains, known, mode)
            stats["kills"] += 1
            stats["sent"] += len(records)
            stats["in_flight"][min(in_flight, 4)] += 1
            tag = f"kill {i + 1} ({mode}, {len(records)} sent, {in_flight} in flight)"
            check_answers(records, kill_t, tag, bad, stats)
            srv.start()
            try:
                stats["restart"].append(srv.wait_ready())
            except RuntimeError as e:
                bad["restart"].append(f"{tag}: {e}")
                raise
            s = run_checks(ctx, binary, root, scanner, records, tag, bad, stats)
            known = known_from(s)
            if (i + 1) % 20 == 0:
                nbad = sum(len(v) for v in bad.values())
                zp.log(f"  {i + 1} kills, {len(known)} resources, {sum(r[1] for r in known.values())} versions, "
                       f"{sum(stats['acked'].values())} answered 2xx before a kill, {nbad} problems, {time.monotonic() - t0:.0f} s")

        # one last round without a kill, then a graceful stop
        chains = plan_round(ctx, known, False)
        final_records, _, _ = traffic_round(ctx, srv, chains, known, "after", kill=False)
        stats["sent"] += len(final_records)
        check_answers(final_records, None, "final round", bad, stats)
    except HardTimeout as e:
        aborted = str(e)
    except KeyboardInterrupt as e:
        aborted = f"interrupted ({e})"
    except Exception as e:  # report, then clean up
        aborted = f"{type(e).__name__}: {e}"

    elapsed_loop = time.monotonic() - t0
    stop_rc, stop_s, graceful = (None, 0.0, True)
    final_bad = collections.defaultdict(list)
    final_done = False
    try:
        stop_rc, stop_s, graceful = srv.stop()
        if setup_ok and os.path.exists(os.path.join(root, "catalog.sqlite")):
            fstats = dict(stats, acked=collections.Counter(), audit_verify_runs=0)
            run_checks(ctx, binary, root, scanner, final_records, "after SIGTERM", final_bad, fstats, api=False, full_rehash=True)
            stats["unreferenced_files"] = fstats["unreferenced_files"]
            stats["final_acked"] = sum(fstats["acked"].values())
            final_done = True
    except Exception as e:
        final_bad["checks"].append(f"final checks failed: {type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        if srv.alive():
            srv.kill9()

    n = stats["kills"]
    elapsed = time.monotonic() - t0

    def ex(items, k=4):
        return "; ".join(items[:k]) + (f" (+{len(items) - k} more)" if len(items) > k else "")

    zp.log("")
    if aborted:
        res.check(False, "run completed", aborted)
    res.check(not deadline_hit and n == args.kills, f"{args.kills} kills within the {args.deadline:g} s deadline",
              f"{n} kills in {elapsed_loop:.1f} s" + ("; DEADLINE HIT" if deadline_hit else ""))
    rs = stats["restart"]
    res.check(len(rs) == n and not bad["restart"], "server restarted and answered /readyz after every kill",
              ex(bad["restart"]) or (f"median {statistics.median(rs):.2f} s, max {max(rs):.2f} s" if rs else "no restarts"))
    res.check(not bad["integrity"], "integrity_check ok after every restart", ex(bad["integrity"]))
    res.check(not bad["fk"], "foreign_key_check empty after every restart", ex(bad["fk"]))
    res.check(not bad["audit_verify"], f"zyk audit verify exits 0 after every restart ({stats['audit_verify_runs']} runs)", ex(bad["audit_verify"]))
    res.check(not bad["versions"], "no version half-written: current_version = max(number), versions 1..current without gaps", ex(bad["versions"]))
    res.check(not bad["files"], "every version has its files (one primary), every file row its blob row and blob file", ex(bad["files"]))
    res.check(not bad["partial"], "every blob file hashes to its name after every restart", ex(bad["partial"]))
    res.check(not bad["state"], "status valid; published_version NULL or <= current_version; published/withdrawn consistent", ex(bad["state"]))
    res.check(not bad["listing"], "listing columns (title, majors) follow the version readers see", ex(bad["listing"]))
    res.check(not bad["audit_replay"], "catalog state = replay of the audit log (status, versions, published_version)", ex(bad["audit_replay"]))
    acked = sum(stats["acked"].values())
    res.check(not bad["acked"], f"every action answered 2xx before a kill is visible after the restart ({acked} such)", ex(bad["acked"]))
    res.check(not bad["api"], "GET /v1/resources/{id} after every restart answers what the catalog has", ex(bad["api"]))
    res.check(not bad["answers"], "every answer before a kill was 200/201/409/412, no connection failed while the server was alive", ex(bad["answers"]))
    res.check(not bad["tmp"], "0 stale tmp/upload-* files after every restart", ex(bad["tmp"]))
    res.check(graceful and stop_rc == 0, "SIGTERM stops the server with exit code 0", f"exit {stop_rc} after {stop_s:.1f} s")
    if final_done or final_bad:
        fb = [f"{k}: {v}" for k, vs in sorted(final_bad.items()) for v in vs]
        res.check(not fb, "final checks after SIGTERM (integrity, fk, audit verify, versions, files, full re-hash, state, audit replay, "
                  f"{stats.get('final_acked', 0)} answers of the last round)", ex(fb))
    else:
        res.check(False, "final checks after SIGTERM", "not run (set-up failed)")

    zp.log("")
    zp.log(f"R2: kill modes {dict(stats['modes'])}, requests in flight at the kill {dict(sorted(stats['in_flight'].items()))} (4 = 4 or more)")
    zp.log(f"R2: actions planned {dict(stats['actions'])}; {stats['sent']} requests sent (the last round included), answers {dict(sorted(stats['answers'].items()))}, "
           f"{stats['unanswered']} cut off by a kill")
    zp.log(f"R2: answered 2xx before a kill {dict(stats['acked'])}; blob files without a blobs row at the end: {stats['unreferenced_files']} (reported, not failed)")
    if stats["refused_leaks"]:
        by = collections.Counter(st for _, st in stats["refused_leaks"])
        zp.log(f"NOTE {len(stats['refused_leaks'])} of those were left by POST .../files requests the server refused "
               f"({dict(by)} by status): their bytes entered blobs/ before the refusal (nothing refers to them; gc material)")
    if ctx is not None:
        try:
            s = snapshot(root)
            zp.log(f"R2: {len(s['resources'])} resources, {len(s['versions'])} versions, {len(s['audit'])} resource audit entries, "
                   f"statuses {dict(collections.Counter(r['status'] for r in s['resources'].values()))}")
        except Exception:
            pass
    zp.log(f"R2: {n} kills, {elapsed:.1f} s, typical request {ctx.latency * 1000 if ctx else 0:.0f} ms (seed {seed})")
    return run.finish(args.keep)


if __name__ == "__main__":
    sys.exit(main())
