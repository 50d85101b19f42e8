#!/usr/bin/env python3
"""runway's container networks vs podman + netavark: the harness behind bench/networks.sh.

Started by networks.sh inside a private mount namespace and a NEW NETWORK NAMESPACE (only
`lo`), with --work on a tmpfs that already holds the test image (an OCI layout). Python
stdlib only; the process helpers are bench.py's, so every benchmark adds the same
constant to every command. Writes the table to stdout and to WORK/table.md, progress to
stderr.

Also its own DNS client: `networks.py --dns-client SERVER NAME WANT N` sends N A queries
for NAME to SERVER:53 one after another and prints each answer's latency (ns), one a
line, or `bad ...` for an answer that is not WANT. networks.py runs it under nsenter in a
client container's network namespace.
"""

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench/bench.py: spawn, timed, run_many, ...)
from bench import DEVNULL, ErrFile, Failed, log, quiet, reap  # noqa: E402

IMAGE = "localhost/runway-bench/busybox:latest"
PODMAN_TIMEOUT = 120.0
NET = "benchnet"
# Explicit, distinct subnets: both engines share the namespace, and each one's automatic
# choice (podman: 10.88.0.0/16 default, 10.89.x user networks; runway: 10.89.x default)
# must not depend on the other's.
SUBNETS = {"rw": "10.91.0.0/24", "pm": "10.92.0.0/24"}


def env_int(name, default):
    v = os.environ.get(name, "")
    if not v:
        return default
    if not v.isdigit() or int(v) <= 0:
        raise SystemExit(f"bench: {name} must be a positive integer")
    return int(v)


def not_host_netns():
    """networks.sh's namespace, not the one it was started in nor PID 1's."""
    me = os.readlink("/proc/self/ns/net")
    outer = os.environ.get("RUNWAY_BENCH_NET_OUTER", "")
    try:
        host = os.readlink("/proc/1/ns/net")
    except OSError:
        host = ""
    if not me or not outer or me in (outer, host):
        raise SystemExit("bench: refusing to run outside networks.sh's own network namespace")


# ---------------------------------------------------------------- the DNS client


def dns_query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def dns_first_a(r):
    """(rcode, first A record as text or None) of a response."""
    rcode = r[3] & 0xF
    an = struct.unpack(">H", r[6:8])[0]
    p = 12
    while r[p] != 0:  # the question's name (never compressed in our echo)
        if r[p] & 0xC0:
            p += 1
            break
        p += r[p] + 1
    p += 1 + 4
    for _ in range(an):
        while True:  # the record's name
            if r[p] & 0xC0 == 0xC0:
                p += 2
                break
            if r[p] == 0:
                p += 1
                break
            p += r[p] + 1
        ty, _, _, rdlen = struct.unpack(">HHIH", r[p : p + 10])
        p += 10
        if ty == 1 and rdlen == 4:
            return rcode, socket.inet_ntoa(r[p : p + 4])
        p += rdlen
    return rcode, None


def dns_client(server, name, want, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    s.connect((server, 53))
    rnd = random.Random(os.getpid())
    out = []
    for _ in range(n):
        qid = rnd.randrange(65536)
        q = dns_query(qid, name)
        t0 = time.perf_counter_ns()
        s.send(q)
        try:
            while True:
                r = s.recv(1500)
                if r[:2] == q[:2]:
                    break
        except socket.timeout:
            out.append("bad timeout")
            continue
        t1 = time.perf_counter_ns()
        rcode, a = dns_first_a(r)
        out.append(str(t1 - t0) if rcode == 0 and a == want else f"bad rcode {rcode} answer {a}")
    sys.stdout.write("\n".join(out) + "\n")


# ---------------------------------------------------------------- the engines


class Engines:
    """Both engines' command lines, stores and state under WORK."""

    def __init__(self, work, runway):
        self.work = work
        self.runway = runway
        self.rw = [runway, "--root", f"{work}/rw-root", "--data-root", f"{work}/rw-data"]
        for d in ("pm-tmp", "pm-volumes", "tmp", "pm-networks"):
            os.makedirs(f"{work}/{d}", exist_ok=True)
        conf = f"{work}/containers.conf"
        with open(conf, "w") as f:
            f.write(
                "[containers]\n"
                'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                "[network]\n"
                'network_backend = "netavark"\n'
                f'network_config_dir = "{work}/pm-networks"\n'
                "[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
                'runtime = "runc"\n'
                f'events_logfile_path = "{work}/pm-events.log"\n'
                f'tmp_dir = "{work}/pm-tmp"\n'
                f'volume_path = "{work}/pm-volumes"\n'
            )
        os.environ["CONTAINERS_CONF"] = conf
        os.environ["TMPDIR"] = f"{work}/tmp"
        os.environ.pop("CONTAINERS_STORAGE_CONF", None)
        self.podman_bin = shutil.which("podman")
        self.pm = [
            self.podman_bin or "podman",
            "--root", f"{work}/pm-root",
            "--runroot", f"{work}/pm-run",
            "--tmpdir", f"{work}/pm-tmp",
            "--runtime", "/usr/sbin/runc",
            "--network-config-dir", f"{work}/pm-networks",
            "--storage-driver", "overlay",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
        ]  # fmt: skip
        self.errf = ErrFile(f"{work}/stderr")

    def cmd(self, who, *a):
        return (self.rw if who == "rw" else self.pm) + list(a)


def lines(text):
    return [x for x in text.split() if x]


class Results:
    def __init__(self):
        self.v = {}
        self.err = {}
        self.fails = {}
        self.note = {}

    def add(self, key, x):
        self.v.setdefault(key, []).append(x)

    def fail(self, key, err):
        self.fails[key] = self.fails.get(key, 0) + 1
        self.err.setdefault(key, err)

    def med(self, key):
        v = self.v.get(key)
        return statistics.median(v) if v else None

    def cell(self, key, scale=1.0):
        v = self.v.get(key)
        if not v:
            if key in self.err:
                return f"failed ({bench.clip(self.err[key], 100)})"
            return "—"
        out = bench.fmt_num(statistics.median(v) * scale)
        if len(v) > 2:
            out += f" (p90 {bench.fmt_num(bench.pct(v, 90) * scale)})"
        if self.fails.get(key):
            out += f", {self.fails[key]} failed: {bench.clip(self.err[key], 100)}"
        if key in self.note:
            out += f"; {self.note[key]}"
        return out


# ---------------------------------------------------------------- set-up


def setup(E, R, engines, image_dir):
    ok_engines = []
    if "rw" in engines:
        ok, out = quiet(E.cmd("rw", "image", "import", image_dir, IMAGE), 120)
        if not ok:
            R.fail("rw_setup", f"image import: {out.strip()}")
        else:
            ok, out = quiet(E.cmd("rw", "network", "create", "--subnet", SUBNETS["rw"], NET))
            if ok:
                ok_engines.append("rw")
            else:
                err = subprocess.run(
                    E.cmd("rw", "network", "create", "--subnet", SUBNETS["rw"], NET), capture_output=True
                ).stderr.decode(errors="replace")
                R.fail("rw_setup", f"network create: {bench.clip(err.strip(), 120)}")
    if "pm" in engines:
        store = f"containers-storage:[overlay@{E.work}/pm-root+{E.work}/pm-run]{IMAGE}"
        r = subprocess.run(
            ["skopeo", "copy", "-q", f"oci:{image_dir}:latest", store], capture_output=True, timeout=120
        )
        if r.returncode != 0:
            raise SystemExit(f"bench: skopeo copy into podman's store failed: {r.stderr.decode(errors='replace')}")
        ok, out = quiet(E.cmd("pm", "info", "--format", "{{.Host.NetworkBackend}} {{.Host.OCIRuntime.Path}}"))
        if not ok or not out.startswith("netavark "):
            raise SystemExit(f"bench: podman is not on netavark here: {out.strip()}")
        R.note["pm_backend"] = out.strip()
        r = subprocess.run(E.cmd("pm", "network", "create", "--subnet", SUBNETS["pm"], NET), capture_output=True)
        if r.returncode != 0:
            raise SystemExit(f"bench: podman network create failed: {r.stderr.decode(errors='replace')}")
        ok_engines.append("pm")
    return ok_engines


# ---------------------------------------------------------------- phases


def timed_ms(argv, errf, timeout):
    errf.reset()
    t0 = time.perf_counter_ns()
    pid = bench.spawn(argv, DEVNULL, errf.fd)
    try:
        status, _ = bench.wait_pid(pid, time.monotonic() + timeout)
    except bench.Timeout as e:
        raise Failed(str(e))
    t1 = time.perf_counter_ns()
    if status != 0:
        raise Failed(bench.describe(status, errf.text()))
    return (t1 - t0) / 1e6


def phase_run(E, R, engines, n):
    """`run --rm IMAGE true` with --network none, on the default network and on NET, for
    each engine, interleaved in rotating order; two untimed warm-ups each."""
    variants = [("none", ["--network", "none"]), ("def", []), ("user", ["--network", NET])]
    entries = []
    for who in engines:
        for v, flags in variants:
            argv = E.cmd(who, *(["container"] if who == "rw" else []), "run", "--rm", *flags, IMAGE, "true")
            entries.append((f"{who}_{v}", argv, PODMAN_TIMEOUT if who == "pm" else bench.CMD_TIMEOUT))
    for i in range(-2, n):
        k = i % len(entries)
        got = {}
        for key, argv, timeout in entries[k:] + entries[:k]:
            try:
                ms = timed_ms(argv, E.errf, timeout)
                if i >= 0:
                    R.add(key, ms)
                    got[key] = ms
            except Failed as e:
                R.fail(key, str(e))
            reap()
        # Paired per round: drift between rounds cancels.
        for who in engines:
            for v in ("def", "user"):
                if f"{who}_{v}" in got and f"{who}_none" in got:
                    R.add(f"{who}_{v}_pair", got[f"{who}_{v}"] - got[f"{who}_none"])
        if i >= 0 and (i + 1) % 5 == 0:
            log(f"  round {i + 1}/{n}")
    for who in engines:
        ok, out = quiet(E.cmd(who, "ps", "-aq"), PODMAN_TIMEOUT)
        if ok and lines(out):
            R.note[f"{who}_def"] = f"{len(lines(out))} containers left after --rm"


def inspect(E, who, name):
    ok, out = quiet(E.cmd(who, *(["container"] if who == "rw" else []), "inspect", name), PODMAN_TIMEOUT)
    if not ok:
        return None
    try:
        j = json.loads(out)
        return j[0] if isinstance(j, list) else j
    except (ValueError, IndexError):
        return None


def dns_procs(work):
    """(pid, engine) of the DNS servers in this namespace: aardvark-dns by name; runway's
    (a fork of the runway command that started the network's first container) by the
    dns.pid file of each network under its data root."""
    found = []
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            with open(f"/proc/{ent}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if os.path.basename(argv0.decode(errors="replace")) == "aardvark-dns":
            found.append((int(ent), "pm"))
    nets = f"{work}/rw-data/networks"
    for n in os.listdir(nets) if os.path.isdir(nets) else []:
        try:
            with open(f"{nets}/{n}/dns.pid") as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        found.append((pid, "rw"))
    return found


def leftovers():
    """Processes in this network namespace that are neither this harness nor its
    ancestors: what the engines left running."""
    mine = os.readlink("/proc/self/ns/net")
    keep = set()
    p = os.getpid()
    while p > 1:
        keep.add(p)
        try:
            with open(f"/proc/{p}/status") as f:
                p = int(next(ln.split()[1] for ln in f if ln.startswith("PPid:")))
        except (OSError, StopIteration, ValueError):
            break
    out = []
    for ent in os.listdir("/proc"):
        if not ent.isdigit() or int(ent) in keep:
            continue
        try:
            if os.readlink(f"/proc/{ent}/ns/net") != mine:
                continue
            with open(f"/proc/{ent}/comm") as f:
                out.append(f"{f.read().strip()} ({ent})")
        except OSError:
            continue
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return None


def phase_dns(E, R, engines, total, me):
    """A `web` and a `cli` container per engine on NET; from cli's network namespace,
    `total` A queries for `web` to cli's nameserver (its network's gateway), in rounds of
    250 alternating between the engines. Every answer must be web's address."""
    targets = {}
    for who in engines:
        base = E.cmd(who, *(["container"] if who == "rw" else []), "run", "-d", "--network", NET)
        ok_all = True
        for name in ("web", "cli"):
            r = subprocess.run(base + ["--name", name, IMAGE, "sleep", "600"], capture_output=True, timeout=PODMAN_TIMEOUT)
            if r.returncode != 0:
                R.fail(f"{who}_dns", f"run -d {name}: {bench.clip(r.stderr.decode(errors='replace').strip(), 100)}")
                ok_all = False
                break
        if not ok_all:
            continue
        web, cli = inspect(E, who, "web"), inspect(E, who, "cli")
        try:
            want = web["NetworkSettings"]["Networks"][NET]["IPAddress"]
            server = cli["NetworkSettings"]["Networks"][NET]["Gateway"]
            pid = int(cli["State"]["Pid"])
        except (TypeError, KeyError, ValueError) as e:
            R.fail(f"{who}_dns", f"inspect: no {e}")
            continue
        # The nameserver the container really has (first line): the gateway by contract.
        try:
            with open(f"/proc/{pid}/root/etc/resolv.conf") as f:
                ns = [ln.split()[1] for ln in f if ln.startswith("nameserver")]
            R.note[f"{who}_resolv"] = ns[0] if ns else "none"
        except OSError:
            pass
        targets[who] = (pid, server, want)
        log(f"  {who}: web {want}, cli pid {pid}, asking {server}")
    # Servers are up once the first query answers; warm-up 50 each.
    per_round = 250
    rounds = max(1, (total + per_round - 1) // per_round)
    order = list(targets)
    for r in range(-1, rounds):
        for who in order[r % max(1, len(order)) :] + order[: r % max(1, len(order))]:
            pid, server, want = targets[who]
            n = 50 if r < 0 else per_round
            argv = ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-B", me, "--dns-client", server, "web", want, str(n)]
            try:
                p = subprocess.run(argv, capture_output=True, timeout=120)
            except subprocess.TimeoutExpired:
                R.fail(f"{who}_dns", "client timed out")
                continue
            if p.returncode != 0:
                R.fail(f"{who}_dns", bench.clip(p.stderr.decode(errors="replace").strip(), 100))
                continue
            for ln in p.stdout.decode().splitlines():
                if ln.startswith("bad"):
                    R.fail(f"{who}_dns", ln)
                elif r >= 0:
                    R.add(f"{who}_dns", int(ln) / 1000.0)  # µs
    for pid, who in dns_procs(E.work):
        k = rss_kib(pid)
        if k is not None and who in targets:
            R.add(f"{who}_dns_rss", k)


def remove_all(E, who):
    rm = ["rm", "-f"] if who == "rw" else ["rm", "-f", "-t", "0"]
    ok, out = quiet(E.cmd(who, "ps", "-aq"), PODMAN_TIMEOUT)
    ids = lines(out) if ok else []
    if ids:
        quiet(E.cmd(who, *rm, *ids), PODMAN_TIMEOUT)
    reap()
    ok, out = quiet(E.cmd(who, "ps", "-aq"), PODMAN_TIMEOUT)
    return len(lines(out)) if ok else -1


def cleanup(E, engines, R):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reap()
    for who in engines:
        try:
            left = remove_all(E, who)
            if left:
                log(f"warning: {who}: {left} containers could not be removed")
            quiet(E.cmd(who, "network", "rm", NET), PODMAN_TIMEOUT)
            if who == "rw":
                quiet(E.cmd(who, "network", "prune", "-f"), PODMAN_TIMEOUT)
        except Exception as e:  # noqa: BLE001  (cleanup goes on whatever happens)
            log(f"warning: {who}: cleanup: {e}")
    # What each engine left in the namespace after removing everything: links, DNS servers.
    ok, out = quiet(["ip", "-o", "link", "show"])
    links = [ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines() if ":" in ln] if ok else []
    R.note["left_links"] = ", ".join(x for x in links if x != "lo") or "none"
    reap()
    R.note["left_procs"] = ", ".join(leftovers()) or "none"
    if "pm" in engines:
        try:
            subprocess.run(E.cmd("pm", "rmi", "-a", "-f"), capture_output=True, timeout=60)
        except Exception:  # noqa: BLE001
            pass
    me = str(os.getpid())
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            with open(f"/proc/{ent}/status") as f:
                ppid = next((ln.split()[1] for ln in f if ln.startswith("PPid:")), None)
        except OSError:
            continue
        if ppid == me:
            try:
                os.kill(int(ent), signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.1)
    reap()


# ---------------------------------------------------------------- the table


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


def diff_cell(R, who, v):
    a, b = R.med(f"{who}_{v}"), R.med(f"{who}_none")
    if a is None or b is None:
        return "—", None
    d = a - b
    pair = R.med(f"{who}_{v}_pair")
    return f"{bench.fmt_num(d)} (paired per round: {bench.fmt_num(pair)})", d


def report(E, R, engines, cfg, load_start):
    rw_def, rw_d = diff_cell(R, "rw", "def")
    pm_def, pm_d = diff_cell(R, "pm", "def")
    rw_user, rw_u = diff_cell(R, "rw", "user")
    pm_user, pm_u = diff_cell(R, "pm", "user")
    dns_rw, dns_pm = R.med("rw_dns"), R.med("pm_dns")
    rows = [
        ("`run --rm IMAGE true --network none` (ms)", R.cell("rw_none"), R.cell("pm_none"),
         ratio(R.med("rw_none"), R.med("pm_none")), "—", "—"),
        ("`run --rm IMAGE true`, default network (ms)", R.cell("rw_def"), R.cell("pm_def"),
         ratio(R.med("rw_def"), R.med("pm_def")), "—", "—"),
        ("`run --rm IMAGE true --network benchnet` (user network, DNS server) (ms)", R.cell("rw_user"),
         R.cell("pm_user"), ratio(R.med("rw_user"), R.med("pm_user")), "—", "—"),
        ("**network setup + teardown per container**: default network − none (ms)", rw_def, pm_def,
         ratio(rw_d, pm_d), "≤ 0.2× podman",
         "—" if rw_d is None or pm_d is None else ("PASS" if rw_d <= 0.2 * pm_d else "FAIL")),
        ("the same on the user network (DNS server started and stopped with the container) (ms)",
         rw_user, pm_user, ratio(rw_u, pm_u), "—", "—"),
        ("DNS answer latency, container name, from a container on the same network (µs)",
         R.cell("rw_dns"), R.cell("pm_dns"), ratio(dns_rw, dns_pm), "—", "—"),
        ("DNS server RSS with 2 containers (KiB)", R.cell("rw_dns_rss"), R.cell("pm_dns_rss"),
         ratio(R.med("rw_dns_rss"), R.med("pm_dns_rss")), "—", "—"),
    ]  # fmt: skip
    rv = quiet([E.runway, "--version"])[1].splitlines() if E.runway else []
    pv = quiet([E.podman_bin, "--version"])[1].strip() if E.podman_bin else ""
    nv = quiet(["/usr/lib/podman/netavark", "--version"])[1].strip()
    av = quiet(["/usr/lib/podman/aardvark-dns", "--version"])[1].strip()
    out = [
        "## Network benchmark",
        "",
        f"Machine: {bench.machine_line()}  ",
        f"Load average at start: {load_start}, at end: {bench.loadavg()}  ",
        f"runway: {rv[0] if rv else 'not run'}; peer: {pv or 'not run'} (runc, {nv}, {av}, iptables-nft, conmon, overlay, cgroupfs)  ",
        "All in a network namespace of the benchmark's own (only `lo` up before the engines); image: static busybox, one gzip layer, in both stores; stores on one tmpfs.  ",
        f"Each command started with posix_spawn and reaped with wait4; medians (p90) of {cfg['n']} runs after 2 warm-ups, interleaved in rotating order. "
        f"Network cost = median(default network) − median(`--network none`); \"paired\" is the median of the per-round differences. "
        f"DNS: {cfg['q']} UDP A queries per engine for `web`, one at a time, from a Python client in the `cli` container's network namespace to its nameserver, in rounds of 250 alternating engines; every answer checked.",
        "",
        "| metric | runway | podman + netavark | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    out += [f"| {' | '.join(r)} |" for r in rows]
    out.append("")
    ns = [f"{w}: {R.note[k]}" for w, k in (("runway", "rw_resolv"), ("podman", "pm_resolv")) if k in R.note]
    if ns:
        out.append(f"The `cli` containers' first nameserver: {', '.join(ns)}.  ")
    for k in ("rw_setup", "rw_dns", "pm_dns"):
        if k in R.err and not R.v.get(k):
            out.append(f"{k}: {R.err[k]}  ")
    out.append(f"Left in the namespace after removing every container and network: links {R.note.get('left_links', '?')}; processes {R.note.get('left_procs', '?')}.  ")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dns-client", nargs=4, metavar=("SERVER", "NAME", "WANT", "N"))
    ap.add_argument("--work")
    ap.add_argument("--image")
    ap.add_argument("--runway", default="")
    ap.add_argument("--engines", default="runway podman")
    args = ap.parse_args()
    if args.dns_client:
        server, name, want, n = args.dns_client
        dns_client(server, name, want, int(n))
        return
    not_host_netns()
    cfg = {"n": env_int("BENCH_NET_N", 20), "q": env_int("BENCH_NET_Q", 2000)}
    words = args.engines.split()
    engines = [w for w, name in (("rw", "runway"), ("pm", "podman")) if name in words]
    if "rw" in engines and not args.runway:
        engines.remove("rw")

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(bench.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("warning: cannot become a subreaper; zombies may linger")
    load_start = bench.loadavg()
    t_start = time.monotonic()
    E = Engines(args.work, args.runway)
    R = Results()
    interrupted = None
    ran = list(engines)
    try:
        engines = setup(E, R, engines, args.image)
        phases = [
            (f"run --rm true × {cfg['n']} (none, default, {NET})", lambda: phase_run(E, R, engines, cfg["n"])),
            (f"DNS: {cfg['q']} queries per engine", lambda: phase_dns(E, R, engines, cfg["q"], os.path.abspath(__file__))),
        ]  # fmt: skip
        for title, fn in phases:
            t0 = time.monotonic()
            log(f"phase: {title}")
            try:
                fn()
            except (SystemExit, KeyboardInterrupt) as e:
                interrupted = f"{title} (exit {getattr(e, 'code', 130)})"
                break
            log(f"  done in {time.monotonic() - t0:.1f}s")
    finally:
        log("cleanup")
        cleanup(E, ran, R)
    text = report(E, R, ran, cfg, load_start)
    if interrupted:
        text += f"\n**Interrupted during phase: {interrupted}; the table is partial.**\n"
    text += f"\nTotal benchmark time: {time.monotonic() - t_start:.0f} s.\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    with open(f"{args.work}/table.md", "w") as f:
        f.write(text)
    if interrupted:
        sys.exit(1)


if __name__ == "__main__":
    main()
