#!/usr/bin/env python3
"""runway vs crun vs runc: timings, footprint, and a Markdown table with targets.

Started by bench/run.sh inside a private mount namespace (cgroup2 unmounted, tmpfs at
--work). Python stdlib only. Every command is started with posix_spawn and reaped
with wait4, so the harness adds the same small constant to every runtime and the
rusage of the wait gives the peak RSS of the runtime and its waited-for children.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time

CMD_TIMEOUT = 30.0  # seconds for any single command
PR_SET_CHILD_SUBREAPER = 36


class Timeout(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

DEVNULL = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)


def spawn(argv, out=DEVNULL, err=DEVNULL):
    return os.posix_spawn(
        argv[0],
        argv,
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, DEVNULL, 0),
            (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, err, 2),
        ],
    )


def wait_pid(pid, deadline):
    """wait4 the child, SIGKILL it at the deadline. Returns (status, rusage)."""
    fd = os.pidfd_open(pid)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.wait4(pid, 0)
                raise Timeout(f"timed out after {CMD_TIMEOUT:.0f}s")
            if p.poll(left * 1000):
                break
    finally:
        os.close(fd)
    _, status, ru = os.wait4(pid, 0)
    return status, ru


class ErrFile:
    """One reusable file for a child's stderr, read back only on failure."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def reset(self):
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)

    def text(self):
        os.lseek(self.fd, 0, os.SEEK_SET)
        data = os.read(self.fd, 4096).decode(errors="replace")
        lines = [ln.strip() for ln in data.splitlines() if ln.strip()]
        return lines[-1] if lines else ""


def describe(status, errtext):
    if os.WIFSIGNALED(status):
        why = f"killed by signal {os.WTERMSIG(status)}"
    else:
        why = f"exit {os.waitstatus_to_exitcode(status)}"
    return f"{why}: {errtext}" if errtext else why


class Failed(Exception):
    pass


def timed(argv, errf, out=DEVNULL):
    """Run argv, return (milliseconds, peak RSS KiB); raise Failed on non-zero exit."""
    errf.reset()
    t0 = time.perf_counter_ns()
    pid = spawn(argv, out, errf.fd)
    try:
        status, ru = wait_pid(pid, time.monotonic() + CMD_TIMEOUT)
    except Timeout as e:
        raise Failed(str(e))
    t1 = time.perf_counter_ns()
    if status != 0:
        raise Failed(describe(status, errf.text()))
    return (t1 - t0) / 1e6, ru.ru_maxrss


def quiet(argv, timeout=CMD_TIMEOUT):
    """Untimed helper command; returns (ok, stdout)."""
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return False, ""
    return r.returncode == 0, r.stdout.decode(errors="replace")


def run_many(argvs, jobs, errdir, timeout=CMD_TIMEOUT):
    """Run commands with at most `jobs` at once. Returns (wall ms, [error or None])."""
    results = [None] * len(argvs)
    jobs = max(1, min(jobs, len(argvs)))
    pool = [ErrFile(os.path.join(errdir, f"err{j}")) for j in range(jobs)]
    running = {}  # pid -> (index, pidfd, deadline, errfile)
    nxt = 0
    t0 = time.perf_counter_ns()
    try:
        while nxt < len(argvs) or running:
            while nxt < len(argvs) and pool:
                ef = pool.pop()
                ef.reset()
                pid = spawn(argvs[nxt], DEVNULL, ef.fd)
                running[pid] = (nxt, os.pidfd_open(pid), time.monotonic() + timeout, ef)
                nxt += 1
            p = select.poll()
            byfd = {}
            for pid, (_, fd, _, _) in running.items():
                p.register(fd, select.POLLIN)
                byfd[fd] = pid
            left = min(d for (_, _, d, _) in running.values()) - time.monotonic()
            ready = p.poll(max(left, 0) * 1000)
            now = time.monotonic()
            done = {byfd[fd] for fd, _ in ready}
            done |= {pid for pid, (_, _, d, _) in running.items() if d <= now}
            for pid in done:
                idx, fd, d, ef = running.pop(pid)
                os.close(fd)
                if d <= now:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                _, status, _ = os.wait4(pid, 0)
                if status != 0:
                    results[idx] = describe(status, ef.text())
                pool.append(ef)
    finally:
        for pid, (_, fd, _, ef) in running.items():
            os.close(fd)
            try:
                os.kill(pid, signal.SIGKILL)
                os.wait4(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            pool.append(ef)
        for ef in pool:
            os.close(ef.fd)
    return (time.perf_counter_ns() - t0) / 1e6, results


def reap():
    """Container inits re-parent to us (we are a subreaper): collect their zombies.
    Only called when no timed child is outstanding."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---------------------------------------------------------------- runtimes


class Runtime:
    def __init__(self, name, path, work):
        self.name = name
        self.path = path
        self.root = os.path.join(work, f"root-{name}")
        os.makedirs(self.root, exist_ok=True)
        self.errf = ErrFile(os.path.join(work, f"stderr-{name}"))
        self.ids = set()  # every id we ever asked it to create, for cleanup

    def cmd(self, *args):
        return [self.path, "--root", self.root, *args]


def rotations(rts, i):
    k = i % len(rts)
    return rts[k:] + rts[:k]


class Metrics:
    """metric -> runtime -> {'v': [samples], 'err': str|None, 'fails': int}"""

    def __init__(self):
        self.m = {}
        self.cgroups = {}  # runtime -> memory cgroup of a running container
        self.load_start = "?"
        self.dentries_start = "?"

    def slot(self, metric, who):
        return self.m.setdefault(metric, {}).setdefault(who, {"v": [], "err": None, "fails": 0})

    def add(self, metric, who, value):
        self.slot(metric, who)["v"].append(value)

    def fail(self, metric, who, err):
        s = self.slot(metric, who)
        s["fails"] += 1
        if s["err"] is None:
            s["err"] = err


def wait_stopped(rt, cid, limit=5.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        reap()
        ok, out = quiet(rt.cmd("state", cid))
        if ok:
            try:
                if json.loads(out).get("status") == "stopped":
                    return True
            except ValueError:
                return False
        else:
            return False
        time.sleep(0.002)
    return False


def memory_cgroup(pid):
    """The process's path in the v1 memory hierarchy, or None."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for ln in f:
                parts = ln.rstrip("\n").split(":", 2)
                if len(parts) == 3 and "memory" in parts[1].split(","):
                    return parts[2]
    except OSError:
        pass
    return None


def cgroup_of(rt, cid):
    """Where the container's init sits: shows whether the runtime did cgroup work
    at all (one that skips it is not comparable)."""
    ok, out = quiet(rt.cmd("state", cid))
    try:
        pid = int(json.loads(out)["pid"]) if ok else 0
    except (ValueError, KeyError, TypeError):
        pid = 0
    return (memory_cgroup(pid) if pid > 0 else None) or "?"


def force_delete(rt, cid):
    quiet(rt.cmd("delete", "--force", cid))


# ---------------------------------------------------------------- phases


def phase_version(rts, floors, n, M):
    """--version of each runtime, and the floors, interleaved."""
    entries = [("version", rt.name, [rt.path, "--version"], rt.errf) for rt in rts] + floors
    for i in range(n):
        for metric, who, argv, ef in rotations(entries, i):
            try:
                ms, _ = timed(argv, ef)
                M.add(metric, who, ms)
            except Failed as e:
                M.fail(metric, who, str(e))


def phase_run(rts, bundle_true, n, prefix, M):
    for i in range(n):
        for rt in rotations(rts, i):
            cid = f"{prefix}-{rt.name}-run-{i}"
            rt.ids.add(cid)
            try:
                ms, _ = timed(rt.cmd("run", "--bundle", bundle_true, cid), rt.errf)
                M.add("run", rt.name, ms)
            except Failed as e:
                M.fail("run", rt.name, str(e))
                force_delete(rt, cid)
        reap()


def rss_wrapper(rss_bin, out):
    """argv prefix that reports peak RSS in KiB into `out` (see rss.c for why the
    harness cannot read it from its own wait4)."""
    if rss_bin:
        return [rss_bin, out]
    if os.path.exists("/usr/bin/time"):
        return ["/usr/bin/time", "-f", "%M", "-o", out]
    return None


def phase_rss(rts, bundle_true, rootfs, n, prefix, rss_bin, work, M):
    out = os.path.join(work, "rss.out")
    wrap = rss_wrapper(rss_bin, out)
    if wrap is None:
        for rt in rts:
            M.fail("rss", rt.name, "no rss helper (cc) and no /usr/bin/time")
        return
    entries = [(rt.name, rt.cmd("run", "--bundle", bundle_true), rt) for rt in rts]
    entries.append(("floor", [os.path.join(rootfs, "bin", "true")], None))
    for i in range(n):
        for who, argv, rt in rotations(entries, i):
            full = wrap + argv
            if rt is not None:
                cid = f"{prefix}-{rt.name}-rss-{i}"
                rt.ids.add(cid)
                full = full + [cid]
            try:
                os.unlink(out)
            except FileNotFoundError:
                pass
            metric = "rss" if rt is not None else "floor-rss"
            try:
                timed(full, rt.errf if rt is not None else M.floor_err)
                with open(out) as f:
                    M.add(metric, who, int(f.read().split()[-1]) / 1024.0)
            except (Failed, OSError, ValueError, IndexError) as e:
                M.fail(metric, who, str(e))
                if rt is not None:
                    force_delete(rt, cid)
        reap()


def phase_lifecycle(rts, bundle_sleep, n, prefix, M):
    for i in range(n):
        for rt in rotations(rts, i):
            cid = f"{prefix}-{rt.name}-life-{i}"
            rt.ids.add(cid)
            steps = [
                ("create", rt.cmd("create", "--bundle", bundle_sleep, cid)),
                ("start", rt.cmd("start", cid)),
                ("state", rt.cmd("state", cid)),
                ("kill", rt.cmd("kill", cid, "KILL")),
                ("delete", rt.cmd("delete", cid)),
            ]
            clean = False
            for k, (step, argv) in enumerate(steps):
                if step == "delete" and not wait_stopped(rt, cid):
                    M.fail("delete", rt.name, "container did not reach 'stopped' after kill")
                    break
                try:
                    ms, _ = timed(argv, rt.errf)
                    M.add(step, rt.name, ms)
                    clean = step == "delete"
                except Failed as e:
                    M.fail(step, rt.name, str(e))
                    # The remaining steps depend on this one.
                    for later, _ in steps[k + 1 :]:
                        M.fail(later, rt.name, f"skipped: {step} failed")
                    break
            if not clean:
                force_delete(rt, cid)
            reap()


def phase_parallel(rts, bundle_sleep, rounds, par, list_reps, prefix, work, M):
    """par containers started at once (run -d), list with them present, delete -f each."""
    for r in range(rounds):
        order = rotations(rts, r)
        ids = {}
        failed_start = set()
        for rt in order:
            ids[rt.name] = [f"{prefix}-{rt.name}-par{r}-{j}" for j in range(par)]
            rt.ids.update(ids[rt.name])
            argvs = [rt.cmd("run", "--detach", "--bundle", bundle_sleep, c) for c in ids[rt.name]]
            ms, errs = run_many(argvs, par, work)
            bad = [e for e in errs if e]
            if bad:
                M.fail("parallel", rt.name, f"{len(bad)}/{par} failed: {bad[0]}")
                M.fail("delete_force", rt.name, "skipped: parallel start failed")
                failed_start.add(rt.name)
            else:
                M.add("parallel", rt.name, ms)
        reap()
        if r == 0:
            for rt in order:
                M.cgroups[rt.name] = cgroup_of(rt, ids[rt.name][0])
        for k in range(list_reps):
            for rt in rotations(order, k):
                try:
                    ms, _ = timed(rt.cmd("list"), rt.errf)
                    M.add("list_small", rt.name, ms)
                except Failed as e:
                    M.fail("list_small", rt.name, str(e))
        for rt in order:
            if rt.name in failed_start:
                for c in ids[rt.name]:
                    force_delete(rt, c)
                reap()
                continue
            t0 = time.perf_counter_ns()
            err = None
            for c in ids[rt.name]:
                try:
                    timed(rt.cmd("delete", "--force", c), rt.errf)
                except Failed as e:
                    err = err or str(e)
                # As a real system's reaper would: a runtime may wait for the
                # killed init to be gone, not just dead.
                reap()
            ms = (time.perf_counter_ns() - t0) / 1e6
            if err:
                M.fail("delete_force", rt.name, err)
                for c in ids[rt.name]:
                    force_delete(rt, c)
            else:
                M.add("delete_force", rt.name, ms)
            reap()


def phase_list_big(rts, bundle_true, bundle_sleep, total, running, reps, prefix, work, M):
    """list with `total` containers present: `running` sleeping ones and the rest
    stopped (run -d of /bin/true, state kept until delete). Stopped containers are
    real state for every runtime but cost no memory; 1000 created-and-waiting inits
    would hold one runtime process each (tens of MiB per runc init)."""
    jobs = max(2, 2 * (os.cpu_count() or 1))
    for rt in rts:
        t0 = time.monotonic()
        stopped = [f"{prefix}-{rt.name}-big-s{j}" for j in range(total - running)]
        live = [f"{prefix}-{rt.name}-big-r{j}" for j in range(running)]
        rt.ids.update(stopped)
        rt.ids.update(live)
        argvs = [rt.cmd("run", "--detach", "--bundle", bundle_true, c) for c in stopped]
        argvs += [rt.cmd("run", "--detach", "--bundle", bundle_sleep, c) for c in live]
        _, errs = run_many(argvs, jobs, work)
        reap()
        bad = [i for i, e in enumerate(errs) if e]
        if bad:
            # Setting up the list is not what is measured: retry one at a time, and say so.
            first = errs[bad[0]]
            left = bad
            for _ in range(5):
                for i in left:
                    force_delete(rt, argvs[i][-1])
                _, errs2 = run_many([argvs[i] for i in left], 1, work)
                reap()
                left = [i for i, e in zip(left, errs2) if e]
                if not left:
                    break
            if left:
                M.fail("list_big", rt.name, f"{len(left)}/{total} containers failed to start")
            M.slot("list_big", rt.name)["footnote"] = (
                f"{rt.name}: {len(bad)}/{total} setup `run -d` failed with {jobs} at once and were "
                f"retried one by one (not timed); first error: {first}"
            )
        log(f"  {rt.name}: {total} containers in {time.monotonic() - t0:.1f}s")
    reap()
    ok_rts = [rt for rt in rts if not M.slot("list_big", rt.name)["err"]]
    for k in range(reps):
        for rt in rotations(ok_rts, k) if ok_rts else []:
            try:
                ms, _ = timed(rt.cmd("list"), rt.errf)
                M.add("list_big", rt.name, ms)
            except Failed as e:
                M.fail("list_big", rt.name, str(e))
    # The same list just after the root changed (as a create or delete changes
    # it): no runtime can answer from what it read before.
    for k in range(reps):
        for rt in rotations(ok_rts, k) if ok_rts else []:
            touch = os.path.join(rt.root, "bench-touch")
            os.mkdir(touch)
            os.rmdir(touch)
            try:
                ms, _ = timed(rt.cmd("list"), rt.errf)
                M.add("list_big_changed", rt.name, ms)
            except Failed as e:
                M.fail("list_big_changed", rt.name, str(e))
    for rt in rts:
        t0 = time.monotonic()
        mine = [c for c in rt.ids if "-big-" in c]
        run_many([rt.cmd("delete", "--force", c) for c in mine], jobs, work)
        rt.ids.difference_update(mine)
        reap()
        log(f"  {rt.name}: deleted in {time.monotonic() - t0:.1f}s")


# ---------------------------------------------------------------- footprint


def elf_info(path):
    """(static, has .symtab) from the ELF headers."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None, None
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x36)
    interp = any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))
    symtab = any(struct.unpack_from("<I", data, shoff + i * shentsize + 4)[0] == 2 for i in range(shnum))
    return not interp, symtab


def phase_size(rts, work, M):
    for rt in rts:
        size = os.stat(rt.path).st_size
        static, symtab = elf_info(rt.path)
        stripped = size
        if symtab and shutil.which("strip"):
            tmp = os.path.join(work, f"strip-{rt.name}")
            shutil.copyfile(rt.path, tmp)
            if quiet(["strip", "-o", tmp + ".s", tmp])[0]:
                stripped = os.stat(tmp + ".s").st_size
        M.add("size", rt.name, stripped / 1048576.0)
        M.slot("size", rt.name)["note"] = ("static" if static else "dynamic") + (
            "" if not symtab else f", {size / 1048576.0:.2f} unstripped"
        )


# ---------------------------------------------------------------- report


ROWS = [
    # key, label, unit, target kind, target value
    ("run", "`run` /bin/true, per container", "ms", "ratio", 0.5),
    ("create", "`create`", "ms", "ratio", 0.5),
    ("start", "`start`", "ms", "ratio", 0.5),
    ("state", "`state`", "ms", "ratio", 0.5),
    ("kill", "`kill` KILL", "ms", "ratio", 0.5),
    ("delete", "`delete` (stopped)", "ms", "ratio", 0.5),
    ("version", "`--version`", "ms", "abs", 1.0),
    ("rss", "peak RSS during `run` (runtime + children)", "MiB", "ratio", 0.5),
    ("parallel", "{par} × `run -d` in parallel, wall", "ms", "ratio", 0.5),
    ("list_small", "`list`, {par} containers", "ms", "ratio", 0.5),
    ("list_big", "`list`, {big} containers", "ms", "abs", 10.0),
    ("list_big_changed", "`list`, {big} containers, just after the root changed", "ms", "info", None),
    ("delete_force", "`delete --force` × {par} running, wall", "ms", "ratio", 0.5),
    ("size", "binary size, stripped", "MiB", "abs", 1.0),
]


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def fmt_num(x):
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def clip(text, n=160):
    text = (text or "").replace("|", "/").replace("\n", " ")
    return text if len(text) <= n else text[: n - 3] + "..."


def cell(s, key, notes):
    if s is None:
        return "—"

    def footnote(text):
        notes.append(clip(text))
        return f"[{len(notes)}]"

    vals = s["v"]
    if not vals:
        out = f"n/a (error: {clip(s['err'] or 'no data', 70)})"
        if s.get("footnote"):
            out += " " + footnote(s["footnote"])
        return out
    med = statistics.median(vals)
    out = fmt_num(med)
    if key != "size" and len(vals) > 2:
        out += f" (p90 {fmt_num(pct(vals, 90))})"
    if s.get("note"):
        out += f" ({s['note']})"
    if s["fails"]:
        out += f" {s['fails']} failed " + footnote(s["err"])
    if s.get("footnote"):
        out += " " + footnote(s["footnote"])
    return out


def median_of(M, key, who):
    s = M.m.get(key, {}).get(who)
    if not s or not s["v"]:
        return None
    return statistics.median(s["v"])


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def dentries():
    """Dentries in the kernel's cache and how many are negative. Every removed
    cgroup directory leaves negative ones behind (9 per container on a v1 host)
    and nothing reclaims them without memory pressure; hundreds of thousands of
    them slow every path lookup, for every runtime."""
    try:
        with open("/proc/sys/fs/dentry-state") as f:
            v = f.read().split()
        return f"{int(v[0])} ({int(v[4])} negative)"
    except (OSError, ValueError, IndexError):
        return "?"


def machine_line():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{os.cpu_count()} × {cpu}, Linux {platform.release()}, {date}"


def report(M, rts, cfg):
    names = [rt.name for rt in rts]
    cols = ["runway", "crun", "runc"]
    lines = []
    lines.append("# runway benchmark results")
    lines.append("")
    lines.append(f"Machine: {machine_line()}  ")
    lines.append(f"Load average at start: {M.load_start}, at end: {loadavg()}  ")
    lines.append(f"Dentry cache at start: {M.dentries_start}, at end: {dentries()}  ")
    vers = []
    for rt in rts:
        ok, out = quiet([rt.path, "--version"])
        first = out.splitlines()[0] if ok and out else "?"
        vers.append(f"{rt.name}: {first}")
    lines.append("Runtimes: " + "; ".join(vers) + "  ")
    missing = [c for c in cols if c not in names]
    if missing:
        lines.append("Not installed (skipped): " + ", ".join(missing) + "  ")
    lines.append(
        f"Settings: N={cfg['n']} per-container iterations, {cfg['rounds']} parallel rounds of "
        f"{cfg['par']}, list({cfg['big']}) ×{cfg['n']}, {'quick' if cfg['quick'] else 'full'} mode"
    )
    if M.cgroups:
        cg = "; ".join(f"{k}: `{v}`" for k, v in M.cgroups.items())
        lines.append(f"Memory cgroup of a running container: {cg}  ")
        mine = memory_cgroup("self")
        for k, v in M.cgroups.items():
            if v == mine or v == "/":
                lines.append(
                    f"**{k} left its container in the caller's cgroup (`{v}`): it skipped the cgroup "
                    "work the others do, so its numbers are not yet comparable.**  "
                )
    lines.append("")
    lines.append("Median (p90) over the samples; lower is better. Ratio = runway / crun medians.")
    lines.append("")
    lines.append("| metric | runway | crun | runc | runway/crun | target | result |")
    lines.append("|---|---|---|---|---|---|---|")
    notes = []
    for key, label, unit, kind, target in ROWS:
        label = label.format(par=cfg["par"], big=cfg["big"])
        cells = [cell(M.m.get(key, {}).get(c), key, notes) if c in names else "not installed" for c in cols]
        rw = median_of(M, key, "runway")
        cr = median_of(M, key, "crun")
        ratio = f"{rw / cr:.2f}×" if rw is not None and cr else "n/a"
        if kind == "ratio":
            tgt = f"≤ {target}× crun"
            ok = None if (rw is None or not cr) else rw / cr <= target
        elif kind == "info":
            tgt, ok = "—", None
        else:
            tgt = f"≤ {target:g} {unit}" + (" static" if key == "size" else "")
            ok = None if rw is None else rw <= target
            if key == "size" and ok and "dynamic" in (M.slot("size", "runway").get("note") or ""):
                ok = False
        res = "—" if kind == "info" else "n/a" if ok is None else ("PASS" if ok else "FAIL")
        errs = M.m.get(key, {}).get("runway", {}).get("fails", 0)
        if errs:
            # A target is not met by a command that sometimes fails.
            res = f"FAIL ({errs} errors)"
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + f" | {ratio} | {tgt} | {res} |")
    lines.append("")
    lines.append("Floors (same harness, no runtime):")
    lines.append("")
    for key, label in [
        ("floor-exec", "static exec of busybox `true`"),
        ("floor-unshare", "`unshare --pid --mount --uts --ipc --net --fork <rootfs>/bin/true`"),
        ("floor-rss", "peak RSS of busybox `true` alone (same RSS probe)"),
    ]:
        s = M.m.get(key, {}).get("floor")
        unit = "MiB" if key == "floor-rss" else "ms"
        lines.append(f"- {label}: {cell(s, key, notes)} {unit}")
    lines.append("")
    if notes:
        lines.append("Notes:")
        lines.append("")
        for i, text in enumerate(notes, 1):
            lines.append(f"[{i}] {text}  ")
        lines.append("")
    lines.append("How it was measured (details in bench/README.md): all runtimes run in one private")
    lines.append("mount namespace with /sys/fs/cgroup/unified unmounted; state roots and the busybox")
    lines.append("bundle sit on one tmpfs; each command is started by posix_spawn and reaped by wait4;")
    lines.append("runtimes alternate in rotating order (A B C, B C A, …) so drift cancels. Peak RSS is")
    lines.append("the maxrss of the `run` process tree (largest single process, the container's busybox")
    lines.append(f"included) read by a small static probe. `list` with {cfg['big']} uses {cfg['par']} running")
    lines.append("containers plus stopped ones (`run -d` of /bin/true: real state, no memory held).")
    lines.append("\"Just after the root changed\": a directory made and removed in each runtime's root")
    lines.append("before each `list`, as a create or delete would; runway's list cache cannot be used then.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- setup


def make_bundles(runway, work):
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise SystemExit("bench: busybox not found (apt-get install busybox-static)")
    static, _ = elf_info(os.path.realpath(busybox))
    if not static:
        raise SystemExit(f"bench: {busybox} is not static (install busybox-static)")
    rootfs = os.path.join(work, "rootfs")
    bindir = os.path.join(rootfs, "bin")
    os.makedirs(bindir)
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(os.path.realpath(busybox), os.path.join(bindir, "busybox"))
    ok, out = quiet([os.path.join(bindir, "busybox"), "--list"])
    if not ok:
        raise SystemExit("bench: busybox --list failed")
    for applet in out.split():
        # The list names busybox itself: a link there would replace the binary.
        if applet == "busybox" or "/" in applet:
            continue
        dst = os.path.join(bindir, applet)
        if not os.path.lexists(dst):
            os.symlink("busybox", dst)
    spec_dir = os.path.join(work, "spec")
    os.makedirs(spec_dir)
    ok, _ = quiet([runway, "spec", "--bundle", spec_dir])
    if not ok:
        ok, _ = quiet(["sh", "-c", f'cd "{spec_dir}" && "{runway}" spec'])
    if not ok:
        raise SystemExit("bench: runway spec failed")
    with open(os.path.join(spec_dir, "config.json")) as f:
        base = json.load(f)
    bundles = {}
    for name, args in (("true", ["/bin/true"]), ("sleep", ["/bin/sleep", "1000"])):
        b = os.path.join(work, f"bundle-{name}")
        os.makedirs(b)
        cfg = json.loads(json.dumps(base))
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = args
        # Shared rootfs by absolute path: every bundle is the same image.
        cfg["root"]["path"] = rootfs
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        bundles[name] = b
    return rootfs, bundles


def cleanup(rts, prefix):
    reap()
    for rt in rts:
        ids = set(rt.ids)
        ok, out = quiet(rt.cmd("list", "--quiet"))
        if ok:
            ids.update(c for c in out.split() if c.startswith(prefix))
        if ids:
            run_many([rt.cmd("delete", "--force", c) for c in sorted(ids)], 8, os.path.dirname(rt.root), 20)
        reap()
    # Whatever is left of our process tree re-parented to us: end it.
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
    time.sleep(0.05)
    reap()
    # Cgroups the runtimes left behind under our ids (only ours: the prefix is unique).
    base = "/sys/fs/cgroup"
    left = []
    for ctrl in os.listdir(base) if os.path.isdir(base) else []:
        if ctrl == "unified":  # our private tmpfs (run.sh), gone with the namespace
            continue
        top = os.path.join(base, ctrl)
        for dirpath, dirnames, _ in os.walk(top, topdown=False):
            if prefix in os.path.basename(dirpath):
                try:
                    os.rmdir(dirpath)
                    log(f"removed leftover cgroup {dirpath}")
                except FileNotFoundError:
                    pass
                except OSError as e:
                    left.append(f"{dirpath}: {e.strerror}")
    if left:
        log(f"warning: {len(left)} cgroup dirs with prefix {prefix} could not be removed, e.g. {left[:3]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--runway", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rss", default="", help="the rss helper built from rss.c")
    args = ap.parse_args()

    quick = bool(os.environ.get("BENCH_QUICK"))
    n = int(os.environ.get("BENCH_N", 5 if quick else 50))
    par = int(os.environ.get("BENCH_PAR", 10 if quick else 50))
    big = int(os.environ.get("BENCH_LIST", 100 if quick else 1000))
    rounds = max(2, n // 10)
    cfg = {"n": n, "par": par, "big": max(big, par), "rounds": rounds, "quick": quick}

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("warning: cannot become a subreaper; zombies of stopped containers may linger")

    work = args.work
    rts = [Runtime("runway", args.runway, work)]
    for name in ("crun", "runc"):
        p = shutil.which(name)
        if p:
            rts.append(Runtime(name, os.path.realpath(p), work))
        else:
            log(f"{name} not installed, skipped")
    prefix = f"rwb{os.getpid()}x{int(time.time()) % 100000}"
    M = Metrics()
    M.load_start = loadavg()
    M.dentries_start = dentries()
    t_start = time.monotonic()
    interrupted = None
    exit_code = 0
    try:
        rootfs, bundles = make_bundles(args.runway, work)
        floor_err = ErrFile(os.path.join(work, "stderr-floor"))
        M.floor_err = floor_err
        floors = [("floor-exec", "floor", [os.path.join(rootfs, "bin", "true")], floor_err)]
        unshare = shutil.which("unshare")
        if unshare:
            floors.append(
                (
                    "floor-unshare",
                    "floor",
                    [unshare, "--pid", "--mount", "--uts", "--ipc", "--net", "--fork", os.path.join(rootfs, "bin", "true")],
                    floor_err,
                )
            )
        phases = [
            ("--version and floors", lambda: phase_version(rts, floors, n, M)),
            ("run /bin/true", lambda: phase_run(rts, bundles["true"], n, prefix, M)),
            (
                "peak RSS of run",
                lambda: phase_rss(rts, bundles["true"], rootfs, min(n, 10), prefix, args.rss, work, M),
            ),
            ("create/start/state/kill/delete", lambda: phase_lifecycle(rts, bundles["sleep"], n, prefix, M)),
            (
                f"{par} in parallel, list, delete -f",
                lambda: phase_parallel(rts, bundles["sleep"], rounds, par, max(3, n // 5), prefix, work, M),
            ),
            (
                f"list with {cfg['big']}",
                lambda: phase_list_big(rts, bundles["true"], bundles["sleep"], cfg["big"], par, n, prefix, work, M),
            ),
            ("binary size", lambda: phase_size(rts, work, M)),
        ]
        for title, fn in phases:
            t0 = time.monotonic()
            log(f"phase: {title}")
            try:
                fn()
            except (SystemExit, KeyboardInterrupt) as e:
                # Timed out or interrupted: clean up, then still show what was measured.
                interrupted = f"{title} (exit {getattr(e, 'code', 130)})"
                exit_code = getattr(e, "code", 130) or 1
                break
            log(f"  done in {time.monotonic() - t0:.1f}s")
    finally:
        log("cleanup")
        cleanup(rts, prefix)
    text = report(M, rts, cfg)
    if interrupted:
        text += f"\n**Interrupted during phase: {interrupted}; the table is partial.**\n"
    text += f"\nTotal benchmark time: {time.monotonic() - t_start:.0f} s.\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    try:
        with open(args.out, "w") as f:
            f.write(text)
        log(f"table written to {args.out}")
    except OSError as e:
        log(f"cannot write {args.out}: {e}")
    if exit_code:
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
