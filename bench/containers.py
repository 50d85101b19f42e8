#!/usr/bin/env python3
"""runway's docker-style containers vs podman: the harness behind bench/containers.sh.

Started by containers.sh inside a private mount namespace, with --work on a tmpfs that
already holds the test image (an OCI layout) and its unpacked rootfs. Python stdlib
only; the process helpers (posix_spawn + wait4, parallel runs) are bench.py's, so both
benchmarks add the same constant to every command. Writes the table to stdout and to
WORK/table.md, progress to stderr.
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench/bench.py: spawn, timed, run_many, ...)
from bench import DEVNULL, ErrFile, Failed, log, quiet, reap, run_many, timed  # noqa: E402

IMAGE = "localhost/runway-bench/busybox:latest"
PODMAN_TIMEOUT = 120.0  # a parallel podman start on a busy 2-core machine can be slow


def env_int(name, default):
    v = os.environ.get(name, "")
    if not v:
        return default
    if not v.isdigit() or int(v) <= 0:
        raise SystemExit(f"bench: {name} must be a positive integer")
    return int(v)


class Engines:
    """Both engines' command lines, stores and state under WORK."""

    def __init__(self, work, runway):
        self.work = work
        self.runway = runway
        self.rw = [runway, "--root", f"{work}/rw-root", "--data-root", f"{work}/rw-data"]
        for d in ("pm-tmp", "pm-volumes", "tmp"):
            os.makedirs(f"{work}/{d}", exist_ok=True)
        # podman's defaults that do not work or would leave state outside WORK: its
        # nofile ulimit (1048576) is above this host's hard limit, its events log and
        # tmp dir default to /run and /var. The rest goes on every command line (the
        # `podman container cleanup` conmon runs at exit gets only the flags).
        conf = f"{work}/containers.conf"
        with open(conf, "w") as f:
            f.write(
                "[containers]\n"
                'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                "[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
                'network_backend = "netavark"\n'
                f'events_logfile_path = "{work}/pm-events.log"\n'
                f'tmp_dir = "{work}/pm-tmp"\n'
                f'volume_path = "{work}/pm-volumes"\n'
            )
        os.environ["CONTAINERS_CONF"] = conf
        os.environ["TMPDIR"] = f"{work}/tmp"
        os.environ.pop("CONTAINERS_STORAGE_CONF", None)
        self.podman_bin = shutil.which("podman")
        self.pm = [
            self.podman_bin,
            "--root", f"{work}/pm-root",
            "--runroot", f"{work}/pm-run",
            "--tmpdir", f"{work}/pm-tmp",
            "--storage-driver", "overlay",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
        ]  # fmt: skip
        self.errf = ErrFile(f"{work}/stderr")

    def r(self, *a):
        return self.rw + list(a)

    def p(self, *a):
        return self.pm + list(a)


def lines(text):
    return [x for x in text.split() if x]


class Results:
    def __init__(self):
        self.v = {}  # key -> [ms]
        self.err = {}  # key -> first error
        self.fails = {}
        self.note = {}

    def add(self, key, ms):
        self.v.setdefault(key, []).append(ms)

    def fail(self, key, err):
        self.fails[key] = self.fails.get(key, 0) + 1
        self.err.setdefault(key, err)

    def med(self, key):
        v = self.v.get(key)
        return statistics.median(v) if v else None

    def cell(self, key):
        v = self.v.get(key)
        if not v:
            if key in self.err:
                return f"failed ({bench.clip(self.err[key], 100)})"
            return "—"
        out = bench.fmt_num(statistics.median(v))
        if len(v) > 2:
            out += f" (p90 {bench.fmt_num(bench.pct(v, 90))})"
        if self.fails.get(key):
            out += f", {self.fails[key]} failed: {bench.clip(self.err[key], 100)}"
        if key in self.note:
            out += f"; {self.note[key]}"
        return out


# ---------------------------------------------------------------- set-up


def setup(E, image_dir, rootfs):
    ok, out = quiet(E.r("image", "import", image_dir, IMAGE), 120)
    if not ok:
        raise SystemExit(f"bench: runway image import failed: {out}")
    # The same OCI layout into podman's store under the same name (skopeo names the
    # destination; `podman pull oci:DIR` would derive the name from DIR's path).
    store = f"containers-storage:[overlay@{E.work}/pm-root+{E.work}/pm-run]{IMAGE}"
    r = subprocess.run(
        ["skopeo", "copy", "-q", f"oci:{image_dir}:latest", store], capture_output=True, timeout=120
    )
    if r.returncode != 0:
        raise SystemExit(f"bench: skopeo copy into podman's store failed: {r.stderr.decode(errors='replace')}")
    ok, out = quiet(E.p("images", "-q", IMAGE), 60)
    if not ok or not lines(out):
        raise SystemExit(f"bench: podman does not see {IMAGE} after the copy")
    # A prepared bundle on the same rootfs: `runway spec`'s config running /bin/true.
    spec_dir = f"{E.work}/spec"
    bundle = f"{E.work}/bundle"
    os.makedirs(spec_dir)
    os.makedirs(bundle)
    ok, _ = quiet([E.runway, "spec", "--bundle", spec_dir])
    if not ok:
        raise SystemExit("bench: runway spec failed")
    with open(f"{spec_dir}/config.json") as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["root"]["path"] = rootfs
    with open(f"{bundle}/config.json", "w") as f:
        json.dump(cfg, f, indent=1)
    # The target's bundle: the one `container create` prepares (its config.json,
    # with the porcelain's mounts and seccomp profile, on its overlay), so the
    # ratio is what the porcelain adds, not a different container.
    ok, out = quiet(E.r("container", "create", "--network", "none", "--name", "bench-bundle", IMAGE, "true"))
    if not ok or not lines(out):
        raise SystemExit(f"bench: container create of the prepared bundle failed: {out}")
    same = f"{E.work}/rw-data/containers/{lines(out)[-1]}/bundle"
    return bundle, same


# ---------------------------------------------------------------- phases


def phase_single(E, R, bundles, rootfs, n, prefix):
    """`run --rm IMAGE true` in both engines and runway's `run` of the bundles, interleaved
    in rotating order; two untimed warm-ups each."""
    seq = [0]
    spec_bundle, same_bundle = bundles

    def bundle_run():
        seq[0] += 1
        return E.r("run", "--bundle", same_bundle, f"{prefix}-b{seq[0]}")

    def spec_run():
        seq[0] += 1
        return E.r("run", "--bundle", spec_bundle, f"{prefix}-s{seq[0]}")

    entries = [
        ("ct_run", lambda: E.r("container", "run", "--rm", "--network", "none", IMAGE, "true")),
        ("pm_run", lambda: E.p("run", "--rm", "--network", "none", IMAGE, "true")),
        ("bundle_run", bundle_run),
        ("spec_run", spec_run),
        ("ct_run_private", lambda: E.r("container", "run", "--rm", "--network", "private", IMAGE, "true")),
        ("floor", lambda: [f"{rootfs}/bin/true"]),
    ]
    for i in range(-2, n):
        k = i % len(entries)
        for key, argv in entries[k:] + entries[:k]:
            try:
                ms, cpu = timed_cpu(argv(), E.errf, PODMAN_TIMEOUT if key == "pm_run" else bench.CMD_TIMEOUT)
                if i >= 0:
                    R.add(key, ms)
                    R.add(key + "_cpu", cpu)
            except Failed as e:
                R.fail(key, str(e))
            reap()
    # --rm must have left nothing.
    ok, out = quiet(E.r("ps", "-aq"))
    left = [c for c in lines(out) if c] if ok else []
    # The prepared bundle's container stays (removed at cleanup).
    if len(left) > 1:
        R.note["ct_run"] = f"{len(left) - 1} containers left after --rm"
    ok, out = quiet(E.p("ps", "-aq"))
    if ok and lines(out):
        R.note["pm_run"] = f"{len(lines(out))} containers left after --rm"


def timed_cpu(argv, errf, timeout=bench.CMD_TIMEOUT):
    """timed(), also returning the CPU time (user + sys, ms) of the command and the
    descendants it waited for (wait4's rusage)."""
    errf.reset()
    t0 = time.perf_counter_ns()
    pid = bench.spawn(argv, DEVNULL, errf.fd)
    try:
        status, ru = bench.wait_pid(pid, time.monotonic() + timeout)
    except bench.Timeout as e:
        raise Failed(str(e))
    t1 = time.perf_counter_ns()
    if status != 0:
        raise Failed(bench.describe(status, errf.text()))
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1000


def timed_long(argv, errf):
    """timed() with podman's longer timeout."""
    old = bench.CMD_TIMEOUT
    bench.CMD_TIMEOUT = PODMAN_TIMEOUT
    try:
        return timed(argv, errf)
    finally:
        bench.CMD_TIMEOUT = old


def phase_parallel(E, R, par, rounds):
    """par × `run -d IMAGE sleep 60` at once; all must be running after; then one
    `rm -f` of them all (timed too)."""
    engines = [
        ("rw", E.r, ["container", "run", "-d", "--network", "none", IMAGE, "sleep", "60"], ["rm", "-f"]),
        # -t 0: podman's rm -f otherwise waits its stop timeout (10 s) for the SIGTERM
        # that sleep as PID 1 ignores; runway's rm -f sends SIGKILL at once, as docker's.
        ("pm", E.p, ["run", "-d", "--network", "none", IMAGE, "sleep", "60"], ["rm", "-f", "-t", "0"]),
    ]
    for r in range(rounds):
        for who, cmd, run_args, rm_args in engines[r % 2 :] + engines[: r % 2]:
            if R.err.get(f"{who}_par_skip"):
                continue
            timeout = PODMAN_TIMEOUT if who == "pm" else bench.CMD_TIMEOUT
            ms, errs = run_many([cmd(*run_args)] * par, par, E.work, timeout)
            bad = [e for e in errs if e]
            ok, out = quiet(cmd("ps", "-q"), timeout)
            running = len(lines(out)) if ok else -1
            if bad:
                R.fail(f"{who}_par", f"{len(bad)}/{par} failed: {bad[0]}")
            elif running != par:
                R.fail(f"{who}_par", f"{running} of {par} running afterwards")
            else:
                R.add(f"{who}_par", ms)
            log(f"  {who}: {par} × run -d in {ms:.0f} ms, {running} running, {len(bad)} failed")
            ok, out = quiet(cmd("ps", "-aq"), timeout)
            ids = lines(out) if ok else []
            if ids:
                try:
                    ms, _ = (timed_long if who == "pm" else timed)(cmd(*rm_args, *ids), E.errf)
                    R.add(f"{who}_rm", ms)
                except Failed as e:
                    R.fail(f"{who}_rm", str(e))
            reap()
            ok, out = quiet(cmd("ps", "-aq"), timeout)
            if not ok or lines(out):
                R.fail(f"{who}_rm", f"{len(lines(out))} containers left after rm -f")
                remove_all(E, who)
            if bad and who == "pm":
                R.err[f"{who}_par_skip"] = "1"  # podman does not cope: do not try again


def phase_ps(E, R, total, reps, podman_too):
    """`ps -a` with `total` created (never started) containers."""
    todo = [("rw", E.r, ["container", "create", "--network", "none", IMAGE, "true"])]
    if podman_too:
        todo.append(("pm", E.p, ["create", "--network", "none", IMAGE, "true"]))
    jobs = 2 * (os.cpu_count() or 1)
    for who, cmd, args in todo:
        timeout = PODMAN_TIMEOUT if who == "pm" else bench.CMD_TIMEOUT
        ms, errs = run_many([cmd(*args)] * total, jobs, E.work, timeout)
        bad = [e for e in errs if e]
        if bad:
            R.fail(f"{who}_create", f"{len(bad)}/{total} failed: {bad[0]}")
        else:
            R.add(f"{who}_create", ms)
        log(f"  {who}: {total} × create in {ms:.0f} ms ({jobs} at a time), {len(bad)} failed")
        ok, out = quiet(cmd("ps", "-aq"), timeout)
        have = len(lines(out)) if ok else -1
        if have != total:
            R.fail(f"{who}_ps", f"{have} containers listed, {total} expected")
        try:
            timed_long(cmd("ps", "-a"), E.errf)  # warm-up
        except Failed:
            pass
    for k in range(reps):
        for who, cmd, _ in todo[k % len(todo) :] + todo[: k % len(todo)]:
            try:
                ms, _ = (timed_long if who == "pm" else timed)(cmd("ps", "-a"), E.errf)
                R.add(f"{who}_ps", ms)
            except Failed as e:
                R.fail(f"{who}_ps", str(e))
    for who, _, _ in todo:
        t0 = time.monotonic()
        left = remove_all(E, who)
        R.note[f"{who}_cleanup"] = f"{time.monotonic() - t0:.1f} s" + (f", {left} left" if left else "")
        log(f"  {who}: removed in {R.note[f'{who}_cleanup']}")


def remove_all(E, who):
    """rm -f every container of one engine, 100 ids a command, 2 commands at once.
    Returns how many are left."""
    cmd = E.r if who == "rw" else E.p
    rm = ["rm", "-f"] if who == "rw" else ["rm", "-f", "-t", "0"]
    ok, out = quiet(cmd("ps", "-aq"), PODMAN_TIMEOUT)
    ids = lines(out) if ok else []
    batches = [cmd(*rm, *ids[i : i + 100]) for i in range(0, len(ids), 100)]
    if batches:
        run_many(batches, 2, E.work, PODMAN_TIMEOUT)
    reap()
    ok, out = quiet(cmd("ps", "-aq"), PODMAN_TIMEOUT)
    return len(lines(out)) if ok else -1


def cleanup(E):
    # timeout(1) signals the whole process group and containers.sh passes its own SIGTERM
    # on: a second signal must not cut the cleanup short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reap()
    left = {}
    for who in ("rw", "pm"):
        try:
            left[who] = remove_all(E, who)
        except Exception as e:  # noqa: BLE001  (cleanup goes on whatever happens)
            left[who] = str(e)
    try:
        subprocess.run(E.p("rmi", "-a", "-f"), capture_output=True, timeout=60)
    except Exception:  # noqa: BLE001
        pass
    # Whatever re-parented to us (monitors, conmons, container inits): end it.
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
    for who, n in left.items():
        if n:
            log(f"warning: {who}: {n} containers could not be removed")


# ---------------------------------------------------------------- the table


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


def verdict(ok):
    return "—" if ok is None else ("PASS" if ok else "FAIL")


def report(E, R, cfg, load_start, dentries_start):
    ct, pm, bd = R.med("ct_run"), R.med("pm_run"), R.med("bundle_run")
    rows = [
        (
            "`container run --rm IMAGE true` vs `podman run --rm` (ms)",
            R.cell("ct_run"), R.cell("pm_run"), ratio(ct, pm), "≤ 0.1× podman",
            verdict(None if ct is None or pm is None else ct <= 0.1 * pm),
        ),
        (
            "`container run --rm IMAGE true` vs runway `run` of the bundle `container create` prepared (ms)",
            R.cell("ct_run"), R.cell("bundle_run"), ratio(ct, bd), "≤ 2× `run`",
            verdict(None if ct is None or bd is None else ct <= 2 * bd),
        ),
        (
            "the same vs runway `run` of `runway spec`'s default bundle (no seccomp, fewer mounts) (ms)",
            R.cell("ct_run"), R.cell("spec_run"), ratio(ct, R.med("spec_run")), "—", "—",
        ),
        (
            "the same, CPU time (user + sys of the command and the children it waits for) (ms)",
            R.cell("ct_run_cpu"), R.cell("bundle_run_cpu"), ratio(R.med("ct_run_cpu"), R.med("bundle_run_cpu")),
            "—", "—",
        ),
        (
            "`container run --rm --network private IMAGE true` (a private namespace, loopback only) (ms)",
            R.cell("ct_run_private"), R.cell("pm_run"), ratio(R.med("ct_run_private"), pm), "—", "—",
        ),
        (
            f"{cfg['par']} × `run -d IMAGE sleep 60` in parallel, wall (ms)",
            R.cell("rw_par"), R.cell("pm_par"), ratio(R.med("rw_par"), R.med("pm_par")), "—",
            verdict(None if not R.v.get("rw_par") else not R.fails.get("rw_par")),
        ),
        (
            f"`rm -f` of those {cfg['par']} running, one command (ms)",
            R.cell("rw_rm"), R.cell("pm_rm"), ratio(R.med("rw_rm"), R.med("pm_rm")), "—", "—",
        ),
        (
            f"{cfg['ps']} × `container create`, {2 * (os.cpu_count() or 1)} at a time, wall (ms)",
            R.cell("rw_create"), R.cell("pm_create") if cfg["podman_ps"] else "not run",
            ratio(R.med("rw_create"), R.med("pm_create")), "—", "—",
        ),
        (
            f"`ps -a` with {cfg['ps']} containers (ms)",
            R.cell("rw_ps"), R.cell("pm_ps") if cfg["podman_ps"] else "not run",
            ratio(R.med("rw_ps"), R.med("pm_ps")), "≤ 20 ms",
            verdict(None if R.med("rw_ps") is None else R.med("rw_ps") <= 20 and not R.fails.get("rw_ps")),
        ),
    ]  # fmt: skip
    rv = quiet([E.runway, "--version"])[1].splitlines()
    pv = quiet([E.podman_bin, "--version"])[1].strip()
    crun = shutil.which("crun")
    cv = quiet([crun, "--version"])[1].splitlines() if crun else []
    out = [
        "## Container benchmark",
        "",
        f"Machine: {bench.machine_line()}  ",
        f"Load average at start: {load_start}, at end: {bench.loadavg()}; dentries at start: {dentries_start}, at end: {bench.dentries()}  ",
        f"runway: {rv[0] if rv else '?'}; peer: {pv} ({cv[0] if cv else 'crun ?'}, conmon, overlay driver, cgroupfs, events to a file)  ",
        "Image: static busybox in one gzip layer, OCI layout, imported into both stores; everything on one tmpfs; `--network none` for both unless noted.  ",
        f"Each command started with posix_spawn and reaped with wait4; medians (p90) of {cfg['n']} runs after 2 warm-ups, interleaved in rotating order; parallel start: {cfg['rounds']} round(s) per engine; `ps -a`: {cfg['ps_n']} runs.",
        "",
        "| metric | runway | peer | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    out += [f"| {' | '.join(r)} |" for r in rows]
    out.append("")
    out.append(f"Floor (posix_spawn + wait4 of static busybox `true`): {R.cell('floor')} ms.  ")
    cl = [f"{w}: {R.note[k]}" for w, k in (("runway", "rw_cleanup"), ("podman", "pm_cleanup")) if k in R.note]
    if cl:
        out.append(f"Removing the `ps -a` containers (`rm -f`, 100 ids a command, 2 at once): {', '.join(cl)}.  ")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--runway", required=True)
    args = ap.parse_args()
    cfg = {
        "n": env_int("BENCH_CT_N", 20),
        "par": env_int("BENCH_CT_PAR", 50),
        "rounds": env_int("BENCH_CT_ROUNDS", 2),
        "ps": env_int("BENCH_CT_PS", 1000),
        "ps_n": env_int("BENCH_CT_PS_N", 10),
        "podman_ps": os.environ.get("BENCH_CT_PODMAN_PS") == "1",
    }

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(bench.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("warning: cannot become a subreaper; zombies may linger")
    load_start, dentries_start = bench.loadavg(), bench.dentries()
    t_start = time.monotonic()
    E = Engines(args.work, args.runway)
    R = Results()
    prefix = f"rwct{os.getpid()}"
    interrupted = None
    try:
        bundles = setup(E, args.image, args.rootfs)
        phases = [
            (f"run --rm true × {cfg['n']}", lambda: phase_single(E, R, bundles, args.rootfs, cfg["n"], prefix)),
            (f"{cfg['par']} × run -d in parallel", lambda: phase_parallel(E, R, cfg["par"], cfg["rounds"])),
            (f"ps -a with {cfg['ps']}", lambda: phase_ps(E, R, cfg["ps"], cfg["ps_n"], cfg["podman_ps"])),
        ]
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
        cleanup(E)
    text = report(E, R, cfg, load_start, dentries_start)
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
