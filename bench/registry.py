#!/usr/bin/env python3
"""runway's registry server vs docker-registry: the harness behind bench/registry.sh.

Started by registry.sh inside a new network namespace (only `lo`) and a private mount
namespace, with --work on a tmpfs. Python stdlib only; the bytes are moved by curl (the
same client for both servers), so the numbers are the servers' throughput, not a
client's. Per server and round, on an empty storage directory:

  push      every blob of the test image (POST an upload, PUT ?digest= with the body
            streamed by `curl -T`), then the manifest
  pull      the manifest, then every blob with one curl (keep-alive)
  PAR pulls PAR such curls at once
  peak RSS  VmHWM of the server process at the end of the round
  CPU       the server's own user + system time during the PAR pulls, per GiB served

Writes the table to stdout and to WORK/table.md (and to $BENCH_OUT), progress to stderr.
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

PORT = {"runway": 5001, "docker-registry": 5002}
REPO = "bench/app"


def log(*a):
    print("bench-registry:", *a, file=sys.stderr, flush=True)


def make_image(d, mib):
    """An image of 4 layers of random bytes (incompressible, like compressed layers)."""
    os.makedirs(d, exist_ok=True)
    blobs = []
    left = mib << 20
    for i in range(4):
        n = left // (4 - i)
        left -= n
        h = hashlib.sha256()
        p = os.path.join(d, f"layer{i}")
        with open(p, "wb") as f:
            while n > 0:
                b = os.urandom(min(n, 1 << 20))
                h.update(b)
                f.write(b)
                n -= len(b)
        blobs.append(("sha256:" + h.hexdigest(), p, os.path.getsize(p)))
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [b[0] for b in blobs]},
        }
    ).encode()
    cp = os.path.join(d, "config")
    with open(cp, "wb") as f:
        f.write(cfg)
    config = ("sha256:" + hashlib.sha256(cfg).hexdigest(), cp, len(cfg))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config[0],
                "size": config[2],
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": b[0],
                    "size": b[2],
                }
                for b in blobs
            ],
        }
    ).encode()
    return [config] + blobs, manifest


class Server:
    def __init__(self, kind, work, runway):
        self.kind, self.port = kind, PORT[kind]
        self.root = os.path.join(work, kind)
        shutil.rmtree(self.root, ignore_errors=True)
        os.makedirs(self.root)
        logf = open(os.path.join(work, kind + ".log"), "ab")
        if kind == "runway":
            argv = [runway, "registry", "serve", "--addr", f"127.0.0.1:{self.port}",
                    "--root", self.root]
        else:
            cfg = os.path.join(work, "docker-registry.yml")
            with open(cfg, "w") as f:
                f.write(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.root}\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: bench\n"
                )
            argv = ["docker-registry", "serve", cfg]
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.p.poll() is not None:
                    break
                time.sleep(0.02)
        self.stop()
        raise SystemExit(f"bench: {kind} did not start (see {work}/{kind}.log)")

    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_kib(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self):
        """The server's user + system CPU time so far, seconds."""
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def request(port, method, path, body=b"", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Location"), data


def curl(args):
    r = subprocess.run(["curl", "-sS", "-f", "--noproxy", "*"] + args,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"bench: curl {' '.join(args[:3])}…: {r.stderr.decode().strip()}")


def push(s, blobs, manifest):
    for digest, path, _ in blobs:
        st, loc, body = request(s.port, "POST", f"/v2/{REPO}/blobs/uploads/")
        if st != 202 or not loc:
            raise SystemExit(f"bench: {s.kind}: POST upload: {st} {body[:200]!r}")
        if loc.startswith("/"):
            loc = s.base() + loc
        sep = "&" if "?" in loc else "?"
        curl(["-T", path, "-H", "Content-Type: application/octet-stream",
              f"{loc}{sep}digest={digest}"])
    st, _, body = request(
        s.port, "PUT", f"/v2/{REPO}/manifests/latest", manifest,
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    if st != 201:
        raise SystemExit(f"bench: {s.kind}: PUT manifest: {st} {body[:200]!r}")


def pull_argv(s, blobs):
    argv = ["curl", "-sS", "-f", "--noproxy", "*",
            "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
            "-o", "/dev/null", f"{s.base()}/v2/{REPO}/manifests/latest"]
    for digest, _, _ in blobs:
        argv += ["-o", "/dev/null", f"{s.base()}/v2/{REPO}/blobs/{digest}"]
    return argv


def pull(s, blobs, par):
    procs = [subprocess.Popen(pull_argv(s, blobs), stderr=subprocess.PIPE) for _ in range(par)]
    bad = [p.stderr.read().decode() for p in procs if p.wait() != 0]
    if bad:
        raise SystemExit(f"bench: {s.kind}: {len(bad)} of {par} pulls failed: {bad[0].strip()}")


def timed(f, *a):
    t = time.monotonic()
    f(*a)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--runway", required=True)
    o = ap.parse_args()
    n = int(os.environ.get("BENCH_REG_N", "3"))
    mib = int(os.environ.get("BENCH_REG_MB", "100"))
    par = int(os.environ.get("BENCH_REG_PAR", "50"))
    log(f"test image: {mib} MiB in 4 layers")
    blobs, manifest = make_image(os.path.join(o.work, "image"), mib)
    total = sum(b[2] for b in blobs)
    res = {k: {"push": [], "pull": [], "par": [], "rss": [], "cpu": []} for k in PORT}
    for rnd in range(n):
        for kind in PORT:
            s = Server(kind, o.work, o.runway)
            try:
                res[kind]["push"].append(timed(push, s, blobs, manifest))
                res[kind]["pull"].append(timed(pull, s, blobs, 1))
                c0 = s.cpu_s()
                res[kind]["par"].append(timed(pull, s, blobs, par))
                res[kind]["cpu"].append(s.cpu_s() - c0)
                res[kind]["rss"].append(s.peak_rss_kib())
            finally:
                s.stop()
            r = res[kind]
            log(f"round {rnd + 1}/{n} {kind}: push {r['push'][-1]:.2f}s pull {r['pull'][-1]:.2f}s "
                f"{par} pulls {r['par'][-1]:.2f}s peak RSS {r['rss'][-1] / 1024:.1f} MiB")
    mibs = total / (1 << 20)
    med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in res.items()}
    rw, dr = med["runway"], med["docker-registry"]
    rows = [
        ("push, MiB/s", mibs / rw["push"], mibs / dr["push"], True, 1.5),
        ("pull, MiB/s", mibs / rw["pull"], mibs / dr["pull"], True, 1.5),
        (f"{par} parallel pulls, MiB/s", par * mibs / rw["par"], par * mibs / dr["par"], True, 1.5),
        (f"server CPU for the {par} pulls, s per GiB", rw["cpu"] / (par * mibs / 1024),
         dr["cpu"] / (par * mibs / 1024), False, None),
        ("peak RSS, MiB", max(res["runway"]["rss"]) / 1024,
         max(res["docker-registry"]["rss"]) / 1024, False, 0.25),
    ]
    out = [f"Image {mibs:.0f} MiB (4 layers + config), medians of {n} rounds, curl as the client, "
           "storage on tmpfs, loopback in a private network namespace.", "",
           "| metric | runway | docker-registry | ratio | target | |", "|---|---|---|---|---|---|"]
    for name, a, b, higher, target in rows:
        ratio = a / b if b else float("inf")
        if target is None:
            out.append(f"| {name} | {a:.2f} | {b:.2f} | {ratio:.2f}× | — | — |")
            continue
        ok = ratio >= target if higher else ratio <= target
        tgt = f"≥ {target}×" if higher else f"≤ {target}×"
        out.append(f"| {name} | {a:.1f} | {b:.1f} | {ratio:.2f}× | {tgt} | {'PASS' if ok else 'FAIL'} |")
    table = "\n".join(out) + "\n"
    print(table, end="")
    with open(os.path.join(o.work, "table.md"), "w") as f:
        f.write(table)
    if os.environ.get("BENCH_OUT"):
        with open(os.environ["BENCH_OUT"], "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
