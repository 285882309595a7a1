//! What `/proc` says about a process: memory, threads, CPU time, stacks.

use std::collections::HashMap;
use std::io;

/// Fields of `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status {
    /// `VmRSS` in KiB: resident memory, all threads.
    pub rss_kib: u64,
    /// `VmSize` in KiB: address space reserved.
    pub vm_kib: u64,
    /// `Threads`.
    pub threads: u64,
}

/// Reads `/proc/PID/status`.
pub fn status(pid: u32) -> io::Result<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut status = Status::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        match key {
            "VmRSS:" => status.rss_kib = value,
            "VmSize:" => status.vm_kib = value,
            "Threads:" => status.threads = value,
            _ => {}
        }
    }
    Ok(status)
}

/// User plus system CPU time of a process, all its threads, in seconds
/// (`/proc/PID/stat`, 100 ticks a second). `pid` 0 means this process.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let path = if pid == 0 {
        "/proc/self/stat".to_string()
    } else {
        format!("/proc/{pid}/stat")
    };
    let text = std::fs::read_to_string(path)?;
    // The command name may hold spaces: fields count from after its ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(u), Some(s)) => Ok((u + s) as f64 / 100.0),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "bad stat")),
    }
}

/// The machine's CPU time so far, from the `cpu` line of `/proc/stat`, in
/// ticks: (stolen, all). On a VM, "stolen" is time the hypervisor ran
/// something else while this machine had work: a share of it over a
/// measurement says how much of the machine the measurement really had.
pub fn steal_ticks() -> io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no cpu line"))?;
    // user nice system idle iowait irq softirq steal guest guest_nice;
    // guest time is already counted in user time.
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    if ticks.len() < 8 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "short cpu line"));
    }
    Ok((ticks[7], ticks.iter().sum()))
}

/// The share of all cores' time stolen between two [`steal_ticks`]
/// readings.
pub fn steal_share(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((s0, t0), (s1, t1)) = (before?, after?);
    let all = t1.checked_sub(t0).filter(|&t| t > 0)?;
    Some(crate::round3(s1.saturating_sub(s0) as f64 / all as f64))
}

/// Rust's standard library gives every thread an alternate signal stack
/// (for its stack overflow message): a guard page and 8 KiB, which look
/// like a tiny thread stack. Mappings this small are not counted as stacks.
const MAX_ALTSTACK: u64 = 16 << 10;

/// Thread stacks in `/proc/PID/maps`: each is a `rw-p` anonymous mapping
/// over 16 KiB right above a 4 KiB `---p` guard page. Returns (size in KiB, count) of
/// the most common size, and how many stacks there were in all.
pub fn thread_stacks(pid: u32) -> io::Result<(u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let mut sizes: HashMap<u64, u64> = HashMap::new();
    let mut previous: Option<(u64, u64, String)> = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(range), Some(perms)) = (words.next(), words.next()) else {
            continue;
        };
        let path = words.nth(3).unwrap_or("");
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        if let Some((p_start, p_end, p_perms)) = &previous {
            if p_perms == "---p"
                && p_end - p_start == 4096
                && *p_end == start
                && perms == "rw-p"
                && path.is_empty()
                && end - start > MAX_ALTSTACK
            {
                *sizes.entry((end - start) / 1024).or_default() += 1;
            }
        }
        previous = Some((start, end, perms.to_string()));
    }
    let total = sizes.values().sum();
    let (size, count) = sizes
        .into_iter()
        .max_by_key(|&(size, count)| (count, size))
        .unwrap_or((0, 0));
    Ok((size, count, total))
}

/// Resident memory by kind, from `/proc/PID/smaps`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Breakdown {
    /// Thread stacks (as [`thread_stacks`] finds them).
    pub stacks_kib: u64,
    /// Other anonymous memory: the malloc heap and arenas.
    pub heap_kib: u64,
    /// File-backed memory: the binary and shared libraries.
    pub file_kib: u64,
}

/// Splits the resident memory of `pid` into stacks, heap and files.
pub fn breakdown(pid: u32) -> io::Result<Breakdown> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut out = Breakdown::default();
    // (start, end, perms, anonymous) of the previous and current mapping.
    let mut previous: Option<(u64, u64, String)> = None;
    let mut current: Option<(u64, u64, String, bool, bool)> = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            {
                let perms = words.next().unwrap_or("").to_string();
                let path = words.nth(3).unwrap_or("");
                let anonymous = path.is_empty() || path.starts_with('[');
                if let Some((s, e, p, _, _)) = current.take() {
                    previous = Some((s, e, p));
                }
                let is_stack = matches!(&previous, Some((ps, pe, pp))
                    if pp == "---p" && pe - ps == 4096 && *pe == start)
                    && perms == "rw-p"
                    && path.is_empty()
                    && end - start > MAX_ALTSTACK;
                current = Some((start, end, perms, anonymous, is_stack));
                continue;
            }
        }
        if first == "Rss:" {
            let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match &current {
                Some((_, _, _, _, true)) => out.stacks_kib += kib,
                Some((_, _, _, true, false)) => out.heap_kib += kib,
                Some(_) => out.file_kib += kib,
                None => {}
            }
        }
    }
    Ok(out)
}

/// TCP segments this machine has sent (`OutSegs` of `/proc/net/snmp`):
/// machine-wide, every process's.
pub fn tcp_out_segments() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp")?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "no Tcp lines");
    let (names, values) = (tcp.next().ok_or_else(bad)?, tcp.next().ok_or_else(bad)?);
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "OutSegs")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(bad)
}
