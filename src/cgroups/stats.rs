//! runc's `events --stats` "data" object, read from whichever hierarchy owns
//! each controller. Field names and the omission of zero values follow
//! runc's types (Go's `omitempty`), so tools parsing runc's output work.

use super::{files, Cgroup, Hierarchy};
use crate::error::Result;
use serde_json::{json, Map, Value};

/// A JSON object builder that drops zero/empty values the way Go's
/// omitempty would, for the fields runc marks so.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn num(mut self, k: &str, v: u64) -> Self {
        self.0.insert(k.to_string(), json!(v));
        self
    }
    fn num_opt(self, k: &str, v: u64) -> Self {
        if v == 0 {
            self
        } else {
            self.num(k, v)
        }
    }
    fn list_opt(mut self, k: &str, v: Vec<Value>) -> Self {
        if !v.is_empty() {
            self.0.insert(k.to_string(), Value::Array(v));
        }
        self
    }
    fn val(mut self, k: &str, v: Value) -> Self {
        self.0.insert(k.to_string(), v);
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn get(kv: &[(String, u64)], k: &str) -> u64 {
    kv.iter().find(|(x, _)| x == k).map_or(0, |(_, v)| *v)
}

fn u64_or0(dir: &str, f: &str) -> u64 {
    files::read_u64(dir, f).unwrap_or(0)
}

fn keyed(dir: &str, f: &str) -> Vec<(String, u64)> {
    files::read(dir, f)
        .map(|t| files::flat_keyed(&t))
        .unwrap_or_default()
}

fn owner<'a>(cg: &'a Cgroup, v1: &str, v2: &str) -> Option<&'a Hierarchy> {
    cg.hierarchies.iter().find(|h| {
        h.controllers
            .iter()
            .any(|c| if h.unified { c == v2 } else { c == v1 })
    })
}

pub fn collect(cg: &Cgroup) -> Result<Value> {
    let cpu = match (owner(cg, "cpuacct", "cpu"), owner(cg, "cpu", "cpu")) {
        (Some(acct), Some(c)) if !acct.unified => cpu_v1(&acct.dir, &c.dir),
        (_, Some(c)) if c.unified => cpu_v2(&c.dir),
        // The cpu hierarchy is not mounted: usage from cpu.stat of the
        // unified directory, which has it on every kernel since 4.15.
        _ => match cg.unified() {
            Some(u) => cpu_v2(&u.dir),
            None => Obj::default().done(),
        },
    };
    let memory = match owner(cg, "memory", "memory") {
        Some(h) if h.unified => memory_v2(&h.dir),
        Some(h) => memory_v1(&h.dir),
        None => Obj::default().done(),
    };
    let pids = match owner(cg, "pids", "pids") {
        Some(h) => {
            let limit = files::read_trim(&h.dir, "pids.max")
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            Obj::default()
                .num_opt("current", u64_or0(&h.dir, "pids.current"))
                .num_opt("limit", limit)
                .done()
        }
        None => Obj::default().done(),
    };
    let blkio = match owner(cg, "blkio", "io") {
        Some(h) if h.unified => blkio_v2(&h.dir),
        Some(h) => blkio_v1(&h.dir),
        None => Obj::default().done(),
    };
    let hugetlb = match owner(cg, "hugetlb", "hugetlb") {
        Some(h) => hugetlb(&h.dir, h.unified),
        None => Obj::default().done(),
    };
    let mut out = Obj::default().val("cpu", cpu);
    if let Some(h) = owner(cg, "cpuset", "cpuset") {
        out = out.val("cpuset", cpuset(&h.dir, h.unified));
    }
    Ok(out
        .val("memory", memory)
        .val("pids", pids)
        .val("blkio", blkio)
        .val("hugetlb", hugetlb)
        .val("intel_rdt", json!({}))
        .val("network_interfaces", Value::Null)
        .done())
}

/// Nanoseconds per USER_HZ tick of cpuacct.stat.
fn tick_ns() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

fn cpu_v1(acct: &str, cpu: &str) -> Value {
    let percpu: Vec<Value> = files::read(acct, "cpuacct.usage_percpu")
        .map(|t| {
            t.split_whitespace()
                .filter_map(|s| s.parse::<u64>().ok())
                .map(Value::from)
                .collect()
        })
        .unwrap_or_default();
    // cpuacct.usage_all: "cpu user system" then one line per cpu.
    let (mut pk, mut pu) = (Vec::new(), Vec::new());
    if let Ok(t) = files::read(acct, "cpuacct.usage_all") {
        for l in t.lines().skip(1) {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect();
            if f.len() == 3 {
                pu.push(Value::from(f[1]));
                pk.push(Value::from(f[2]));
            }
        }
    }
    let st = keyed(acct, "cpuacct.stat");
    let ns = tick_ns();
    let usage = Obj::default()
        .num_opt("total", u64_or0(acct, "cpuacct.usage"))
        .list_opt("percpu", percpu)
        .list_opt("percpu_kernel", pk)
        .list_opt("percpu_user", pu)
        .num("kernel", get(&st, "system") * ns)
        .num("user", get(&st, "user") * ns)
        .done();
    let th = keyed(cpu, "cpu.stat");
    let throttling = Obj::default()
        .num_opt("periods", get(&th, "nr_periods"))
        .num_opt("throttled_periods", get(&th, "nr_throttled"))
        .num_opt("throttled_time", get(&th, "throttled_time"))
        .done();
    json!({ "usage": usage, "throttling": throttling })
}

fn cpu_v2(dir: &str) -> Value {
    let st = keyed(dir, "cpu.stat");
    let usage = Obj::default()
        .num_opt("total", get(&st, "usage_usec") * 1000)
        .num("kernel", get(&st, "system_usec") * 1000)
        .num("user", get(&st, "user_usec") * 1000)
        .done();
    let throttling = Obj::default()
        .num_opt("periods", get(&st, "nr_periods"))
        .num_opt("throttled_periods", get(&st, "nr_throttled"))
        .num_opt("throttled_time", get(&st, "throttled_usec") * 1000)
        .done();
    json!({ "usage": usage, "throttling": throttling })
}

fn mem_entry(dir: &str, prefix: &str) -> Value {
    Obj::default()
        .num("limit", u64_or0(dir, &format!("{prefix}.limit_in_bytes")))
        .num_opt("usage", u64_or0(dir, &format!("{prefix}.usage_in_bytes")))
        .num_opt("max", u64_or0(dir, &format!("{prefix}.max_usage_in_bytes")))
        .num("failcnt", u64_or0(dir, &format!("{prefix}.failcnt")))
        .done()
}

fn raw(kv: Vec<(String, u64)>) -> Value {
    let m: Map<String, Value> = kv.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
    Value::Object(m)
}

fn memory_v1(dir: &str) -> Value {
    let stat = keyed(dir, "memory.stat");
    let mut o = Obj::default()
        .num_opt("cache", get(&stat, "cache"))
        .val("usage", mem_entry(dir, "memory"));
    if files::exists(dir, "memory.memsw.usage_in_bytes") {
        o = o.val("swap", mem_entry(dir, "memory.memsw"));
    } else {
        o = o.val("swap", json!({"limit": 0, "failcnt": 0}));
    }
    o = o
        .val("kernel", mem_entry(dir, "memory.kmem"))
        .val("kernelTCP", mem_entry(dir, "memory.kmem.tcp"));
    if !stat.is_empty() {
        o = o.val("raw", raw(stat));
    }
    o.done()
}

fn memory_v2(dir: &str) -> Value {
    let stat = keyed(dir, "memory.stat");
    let usage = u64_or0(dir, "memory.current");
    let events = keyed(dir, "memory.events");
    let limit = u64_or0(dir, "memory.max");
    // runc reports v2 swap as memory+swap, the v1 meaning.
    let swap_cur = u64_or0(dir, "memory.swap.current");
    let swap_max = u64_or0(dir, "memory.swap.max");
    let o = Obj::default()
        .num_opt("cache", get(&stat, "file"))
        .val(
            "usage",
            Obj::default()
                .num("limit", limit)
                .num_opt("usage", usage)
                .num_opt("max", u64_or0(dir, "memory.peak"))
                .num("failcnt", get(&events, "max"))
                .done(),
        )
        .val(
            "swap",
            Obj::default()
                .num("limit", swap_max.saturating_add(limit))
                .num_opt("usage", swap_cur + usage)
                .num("failcnt", 0)
                .done(),
        )
        .val("kernel", json!({"limit": 0, "failcnt": 0}))
        .val("kernelTCP", json!({"limit": 0, "failcnt": 0}));
    if stat.is_empty() {
        o.done()
    } else {
        o.val("raw", raw(stat)).done()
    }
}

/// "8:0 Read 123" lines into runc's BlkioEntry list; totals are skipped.
pub fn parse_blkio_v1(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, v) = match f.as_slice() {
                [dev, op, v] => (*dev, *op, *v),
                [dev, v] if dev.contains(':') => (*dev, "", *v),
                _ => return None,
            };
            let (ma, mi) = dev.split_once(':')?;
            Some(
                Obj::default()
                    .num_opt("major", ma.parse().ok()?)
                    .num_opt("minor", mi.parse().ok()?)
                    .val("op", Value::from(op))
                    .num_opt("value", v.parse().ok()?)
                    .done(),
            )
        })
        .map(|mut v| {
            if v["op"] == "" {
                if let Some(o) = v.as_object_mut() {
                    o.remove("op");
                }
            }
            v
        })
        .collect()
}

fn blkio_v1(dir: &str) -> Value {
    // CFQ's files, else BFQ's, else the throttle layer's (always there).
    let pick = |base: &str| -> Vec<Value> {
        for pre in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
            if let Ok(t) = files::read(dir, &format!("{pre}{base}")) {
                let v = parse_blkio_v1(&t);
                if !v.is_empty() {
                    return v;
                }
            }
        }
        Vec::new()
    };
    Obj::default()
        .list_opt(
            "ioServiceBytesRecursive",
            pick("io_service_bytes_recursive"),
        )
        .list_opt("ioServicedRecursive", pick("io_serviced_recursive"))
        .done()
}

/// io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") as runc maps it.
pub fn parse_io_stat(text: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(ma), Ok(mi)) = (ma.parse::<u64>(), mi.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(
                Obj::default()
                    .num_opt("major", ma)
                    .num_opt("minor", mi)
                    .val("op", Value::from(op))
                    .num_opt("value", v)
                    .done(),
            );
        }
    }
    (bytes, ios)
}

fn blkio_v2(dir: &str) -> Value {
    let (b, i) = parse_io_stat(&files::read(dir, "io.stat").unwrap_or_default());
    Obj::default()
        .list_opt("ioServiceBytesRecursive", b)
        .list_opt("ioServicedRecursive", i)
        .done()
}

/// Page sizes as cgroup file names spell them: 2048kB -> "2MB".
pub fn page_size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

fn hugetlb(dir: &str, unified: bool) -> Value {
    let mut out = Map::new();
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Value::Object(out);
    };
    let mut sizes: Vec<u64> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    sizes.sort_unstable();
    for kb in sizes {
        let s = page_size_name(kb);
        let v = if unified {
            let ev = keyed(dir, &format!("hugetlb.{s}.events"));
            Obj::default()
                .num_opt("usage", u64_or0(dir, &format!("hugetlb.{s}.current")))
                .num("failcnt", get(&ev, "max"))
                .done()
        } else {
            Obj::default()
                .num_opt(
                    "usage",
                    u64_or0(dir, &format!("hugetlb.{s}.usage_in_bytes")),
                )
                .num_opt(
                    "max",
                    u64_or0(dir, &format!("hugetlb.{s}.max_usage_in_bytes")),
                )
                .num("failcnt", u64_or0(dir, &format!("hugetlb.{s}.failcnt")))
                .done()
        };
        out.insert(s, v);
    }
    Value::Object(out)
}

/// "0-2,4" -> [0,1,2,4].
pub fn parse_cpu_list(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    // Bounded so a corrupt file cannot make us allocate much.
                    out.extend(a..=b.min(a + 65_536));
                }
            }
            None => {
                if let Ok(v) = part.parse() {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn cpuset(dir: &str, unified: bool) -> Value {
    let (cpus_f, mems_f) = if unified {
        ("cpuset.cpus.effective", "cpuset.mems.effective")
    } else {
        ("cpuset.cpus", "cpuset.mems")
    };
    let list = |f: &str| -> Vec<Value> {
        parse_cpu_list(&files::read(dir, f).unwrap_or_default())
            .into_iter()
            .map(Value::from)
            .collect()
    };
    let mut o = Obj::default()
        .list_opt("cpus", list(cpus_f))
        .list_opt("mems", list(mems_f));
    if !unified {
        for (k, f) in [
            ("cpu_exclusive", "cpuset.cpu_exclusive"),
            ("mem_hardwall", "cpuset.mem_hardwall"),
            ("mem_exclusive", "cpuset.mem_exclusive"),
            ("memory_migrate", "cpuset.memory_migrate"),
            ("memory_spread_page", "cpuset.memory_spread_page"),
            ("memory_spread_slab", "cpuset.memory_spread_slab"),
            ("memory_pressure", "cpuset.memory_pressure"),
            ("sched_load_balance", "cpuset.sched_load_balance"),
        ] {
            o = o.num(k, u64_or0(dir, f));
        }
        let relax = files::read_trim(dir, "cpuset.sched_relax_domain_level")
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        o = o.val("sched_relax_domain_level", Value::from(relax));
    }
    o.done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let v = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n");
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], json!({"major": 8, "op": "Read", "value": 4096}));
        assert_eq!(v[1], json!({"major": 8, "op": "Write"}));
    }

    #[test]
    fn io_stat_lines() {
        let (b, i) = parse_io_stat("8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            b[0],
            json!({"major": 8, "minor": 16, "op": "Read", "value": 10})
        );
        assert_eq!(b[1]["value"], 20);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn sizes_and_lists() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1_048_576), "1GB");
        assert_eq!(page_size_name(64), "64KB");
        assert_eq!(parse_cpu_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list(""), Vec::<u64>::new());
    }

    #[test]
    fn omitempty() {
        let v = Obj::default()
            .num_opt("a", 0)
            .num("b", 0)
            .list_opt("c", vec![])
            .done();
        assert_eq!(v, json!({"b": 0}));
    }
}
