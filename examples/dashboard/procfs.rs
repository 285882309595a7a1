//! The board's `/proc` files, one small parser per format: CPU times,
//! load, memory, network and disk counters, uptime. Each takes the file's
//! text, whatever it holds: a line it cannot read is skipped (or the
//! file is), and counters add up saturating, so a garbled file gives no
//! reading or a wrong one, never a panic.

use std::collections::HashSet;

use super::sysfs::parse_number;

/// The time one CPU (or all of them) spent busy, and in total, in clock
/// ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

/// The `cpu` lines of `/proc/stat`: all cores ("cpu"), then each ("cpu0",
/// ...). Fields: user nice system idle iowait irq softirq steal (guest time
/// is already in user); idle and iowait count as not busy.
pub fn parse_stat(text: &str) -> Vec<(String, CpuTimes)> {
    text.lines()
        .filter(|line| line.starts_with("cpu"))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            parse_index(&name[3..])?;
            let ticks: Vec<u64> = fields
                .take(8)
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            let total = ticks.iter().fold(0u64, |sum, &t| sum.saturating_add(t));
            let idle = ticks.get(3)?.saturating_add(*ticks.get(4).unwrap_or(&0));
            let busy = total.saturating_sub(idle);
            Some((name.to_string(), CpuTimes { busy, total }))
        })
        .collect()
}

/// "" (all cores) or a core's number.
fn parse_index(digits: &str) -> Option<()> {
    digits.bytes().all(|b| b.is_ascii_digit()).then_some(())
}

/// How busy a CPU was between two snapshots, in percent.
pub fn usage_percent(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total).filter(|&t| t > 0)?;
    let busy = after.busy.saturating_sub(before.busy);
    Some((busy as f64 * 100.0 / total as f64).min(100.0))
}

/// `/proc/loadavg`: "0.52 0.58 0.59 2/345 12345"; the 1-minute average.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    parse_number(text.split_whitespace().next()?)
}

/// The two lines of `/proc/meminfo` that tell how much memory is in use.
#[derive(Debug, PartialEq)]
pub struct Memory {
    pub total_kib: u64,
    pub available_kib: u64,
}

impl Memory {
    /// What programs hold: total less what could be had without swapping.
    pub fn used_kib(&self) -> u64 {
        self.total_kib.saturating_sub(self.available_kib)
    }
}

/// `/proc/meminfo`: "MemTotal:  3884396 kB" and "MemAvailable: ..." lines.
pub fn parse_meminfo(text: &str) -> Option<Memory> {
    let field = |key: &str| -> Option<u64> {
        let line = text.lines().find(|line| line.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        total_kib: field("MemTotal:")?,
        available_kib: field("MemAvailable:")?,
    })
}

/// `/proc/net/dev`: bytes received and sent since boot, summed over every
/// interface but loopback. After two header lines, each line is
/// "  eth0: rx_bytes rx_packets ... (8 receive fields) tx_bytes ...".
pub fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let mut totals = None;
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<&str> = counters.split_whitespace().collect();
        let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) else {
            continue;
        };
        let (rx, tx): (u64, u64) = (rx.parse().ok()?, tx.parse().ok()?);
        let (sum_rx, sum_tx) = totals.unwrap_or((0u64, 0u64));
        totals = Some((sum_rx.saturating_add(rx), sum_tx.saturating_add(tx)));
    }
    totals
}

/// `/proc/diskstats`: bytes read and written since boot, summed over the
/// whole disks. Each line is "major minor name reads merged sectors_read
/// ms writes merged sectors_written ...", in sectors of 512 bytes whatever
/// the disk's. Left out, as they count bytes already counted or no disk
/// at all: a partition ("sda1", "mmcblk0p2", "nvme0n1p1") whose disk is
/// listed, loop devices, RAM disks (ram, zram), and device-mapper and RAID
/// volumes (dm-, md) built on disks. `None` if no disk is listed.
pub fn parse_diskstats(text: &str) -> Option<(u64, u64)> {
    let disks: Vec<(&str, u64, u64)> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().take(10).collect();
            let sectors = |at: usize| fields.get(at)?.parse::<u64>().ok();
            Some((*fields.get(2)?, sectors(5)?, sectors(9)?))
        })
        .collect();
    let names: HashSet<&str> = disks.iter().map(|(name, ..)| *name).collect();
    let is_partition = |name: &str| {
        let disk = name.trim_end_matches(|c: char| c.is_ascii_digit());
        disk.len() < name.len()
            && (names.contains(disk) || disk.strip_suffix('p').is_some_and(|d| names.contains(d)))
    };
    let mut totals = None;
    for (name, read, written) in disks {
        let stacked = ["loop", "ram", "zram", "dm-", "md"];
        if stacked.iter().any(|p| name.starts_with(p)) || is_partition(name) {
            continue;
        }
        let (sum_read, sum_written) = totals.unwrap_or((0u64, 0u64));
        totals = Some((
            sum_read.saturating_add(read.saturating_mul(512)),
            sum_written.saturating_add(written.saturating_mul(512)),
        ));
    }
    totals
}

/// `/proc/uptime`: "12345.67 23456.78", seconds since boot first.
pub fn parse_uptime(text: &str) -> Option<f64> {
    parse_number(text.split_whitespace().next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "\
cpu  100 0 50 800 50 0 0 0 0 0
cpu0 60 0 20 400 20 0 0 0 0 0
cpu1 40 0 30 400 30 0 0 0 0 0
intr 1488369 0 0
ctxt 4917341
";

    #[test]
    fn stat_has_all_cores_then_each() {
        let cpus = parse_stat(STAT);
        let names: Vec<&str> = cpus.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cpu", "cpu0", "cpu1"]);
        let times = |busy, total| CpuTimes { busy, total };
        assert_eq!(cpus[0].1, times(150, 1000));
        assert_eq!(cpus[1].1, times(80, 500));
    }

    #[test]
    fn stat_of_an_old_kernel_with_four_fields() {
        let cpus = parse_stat("cpu 10 0 10 80\n");
        assert_eq!(
            cpus[0].1,
            CpuTimes {
                busy: 20,
                total: 100
            }
        );
    }

    #[test]
    fn stat_garbage_is_skipped_and_huge_counters_saturate() {
        assert_eq!(parse_stat("cpu x y z\ncpufreq 1 2 3 4\ncpu0 1 2\n"), []);
        let max = u64::MAX;
        let cpus = parse_stat(&format!("cpu {max} {max} {max} {max} {max}\n"));
        assert_eq!(
            cpus[0].1,
            CpuTimes {
                busy: 0,
                total: max
            }
        );
        assert_eq!(parse_stat("cpu 99999999999999999999999 0 0 0\n"), []);
    }

    #[test]
    fn usage_between_snapshots() {
        let before = CpuTimes {
            busy: 150,
            total: 1000,
        };
        let after = CpuTimes {
            busy: 175,
            total: 1100,
        };
        assert_eq!(usage_percent(before, after), Some(25.0));
        assert_eq!(usage_percent(after, after), None, "no time passed");
        assert_eq!(usage_percent(after, before), None, "counters went back");
    }

    #[test]
    fn loadavg_first_field() {
        assert_eq!(parse_loadavg("0.51 0.65 0.39 5/111 25844\n"), Some(0.51));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("NaN 1 1"), None);
    }

    #[test]
    fn meminfo_used_is_total_less_available() {
        let text = "MemTotal:        3884396 kB\nMemFree:          123456 kB\nMemAvailable:    2860332 kB\n";
        let memory = parse_meminfo(text).unwrap();
        assert_eq!(
            memory,
            Memory {
                total_kib: 3884396,
                available_kib: 2860332
            }
        );
        assert_eq!(memory.used_kib(), 1024064);
        assert_eq!(
            parse_meminfo("MemTotal: 100 kB\n"),
            None,
            "kernel older than 3.14"
        );
        assert_eq!(parse_meminfo("MemTotal: -1 kB\nMemAvailable: 2 kB\n"), None);
        let odd = parse_meminfo("MemTotal: 1 kB\nMemAvailable: 2 kB\n").unwrap();
        assert_eq!(odd.used_kib(), 0);
    }

    #[test]
    fn net_dev_sums_interfaces_but_loopback() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9999 10 0 0 0 0 0 0 9999 10 0 0 0 0 0 0
  eth0: 1000 20 0 0 0 0 0 0 300 5 0 0 0 0 0 0
 wlan0:500 7 0 0 0 0 0 0 200 3 0 0 0 0 0 0
";
        assert_eq!(parse_net_dev(text), Some((1500, 500)));
        assert_eq!(parse_net_dev(&text[..text.find("    lo").unwrap()]), None);
        let max = u64::MAX;
        let huge = format!("\n\neth0: {max} 0 0 0 0 0 0 0 1\neth1: 5 0 0 0 0 0 0 0 1\n");
        assert_eq!(parse_net_dev(&huge), Some((max, 2)));
        assert_eq!(parse_net_dev("\n\neth0: x 0 0 0 0 0 0 0 1\n"), None);
    }

    const DISKSTATS: &str = "\
   7       0 loop0 96 0 2310 30 0 0 0 0 0 50 30 0 0 0 0 0 0
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 179       0 mmcblk0 1000 10 20000 500 300 20 6000 900 0 800 1400 0 0 0 0 0 0
 179       1 mmcblk0p1 100 0 2000 50 3 0 6 9 0 50 59 0 0 0 0 0 0
 179       2 mmcblk0p2 900 10 18000 450 297 20 5994 891 0 750 1341 0 0 0 0 0 0
   8       0 sda 10 0 100 5 1 0 8 1 0 6 6 0 0 0 0 0 0
   8       1 sda1 10 0 100 5 1 0 8 1 0 6 6 0 0 0 0 0 0
 259       0 nvme0n1 5 0 40 1 2 0 16 1 0 2 2 0 0 0 0 0 0
 259       1 nvme0n1p1 5 0 40 1 2 0 16 1 0 2 2 0 0 0 0 0 0
 253       0 dm-0 900 0 18000 400 300 0 6000 900 0 700 1300 0 0 0 0 0 0
";

    #[test]
    fn diskstats_sums_whole_disks() {
        let sectors = (20000 + 100 + 40, 6000 + 8 + 16);
        assert_eq!(
            parse_diskstats(DISKSTATS),
            Some((sectors.0 * 512, sectors.1 * 512))
        );
        // A partition whose disk is not listed counts.
        assert_eq!(
            parse_diskstats(" 179 2 mmcblk0p2 900 10 18000 450 297 20 5994 891\n"),
            Some((18000 * 512, 5994 * 512))
        );
        assert_eq!(parse_diskstats(DISKSTATS.lines().next().unwrap()), None);
        assert_eq!(parse_diskstats(""), None);
        assert_eq!(parse_diskstats("8 0 sda x y z\n8 0\n"), None);
        let max = u64::MAX;
        let huge = format!("8 0 sda 0 0 {max} 0 0 0 {max}\n8 16 sdb 0 0 1 0 0 0 1\n");
        assert_eq!(parse_diskstats(&huge), Some((max, max)));
    }

    #[test]
    fn uptime_seconds() {
        assert_eq!(parse_uptime("1532.04 2639.55\n"), Some(1532.04));
        assert_eq!(parse_uptime("1e999 0\n"), None);
    }
}
