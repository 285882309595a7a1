//! The board's sensors: which it has (found once, at start, and told to
//! each page), and one reading of all of them (`--rate` times a second).
//!
//! `/proc` gives CPU usage (all cores, and each), load, memory, network
//! and disk throughput, and uptime (`procfs.rs` parses its files); `/sys`
//! gives thermal zones, hwmon and IIO sensors (`sysfs.rs`). All are found under a root directory, `/` on
//! the board, so that tests can point discovery at a fixture tree
//! (`tests/fixtures/sysfs/`).
//!
//! Add your own sensors in [`extra_sensors`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

#[path = "procfs.rs"]
mod procfs;
#[path = "sysfs.rs"]
mod sysfs;

use procfs::{
    parse_diskstats, parse_loadavg, parse_meminfo, parse_net_dev, parse_stat, parse_uptime,
    usage_percent, CpuTimes,
};

/// Your own sensors, charted beside the board's: add them here. The page
/// shows every sensor the board lists, so this is all it takes
/// (`docs/dashboard.md`, "Adding your own sensor").
pub fn extra_sensors() -> Vec<Sensor> {
    vec![
        // A number in a file, times a factor: a DS18B20 on the 1-Wire bus
        // writes millidegrees.
        //
        // Sensor::new("greenhouse", "Greenhouse", "°C")
        //     .group(Group::Environment)
        //     .read_file("/sys/bus/w1/devices/28-0316a2796ab1/temperature", 0.001),
        //
        // Anything your code can tell: fn tank_level() -> Option<f64>,
        // `None` when it cannot tell now. It runs on the sampler thread,
        // `--rate` times a second: keep it quick.
        //
        // Sensor::new("tank", "Water tank", "%")
        //     .group(Group::Environment)
        //     .min(0.0)
        //     .max(100.0)
        //     .read_with(tank_level),
    ]
}

/// At most this many sensors are listed: a board with hundreds of hwmon
/// channels (or cores) still gets a page that loads, and readings of a few
/// kilobytes. Per-core CPU usage is the first to go (the all-cores chart
/// tells the same), then what was found last.
pub const MAX_SENSORS: usize = 64;

/// The heading a sensor is shown under, in the page's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    System,
    Temperature,
    Fans,
    Power,
    Environment,
    Motion,
    Network,
    Disk,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::System => "System",
            Group::Temperature => "Temperature",
            Group::Fans => "Fans",
            Group::Power => "Power",
            Group::Environment => "Environment",
            Group::Motion => "Motion",
            Group::Network => "Network",
            Group::Disk => "Disk",
        }
    }
}

/// A reading the page shows: what it is, and where it comes from.
pub struct Sensor {
    /// Stable and JSON-safe: "cpu", "thermal0", "hwmon1.fan1", "iio0.pressure".
    pub id: String,
    pub label: String,
    pub unit: &'static str,
    pub group: Group,
    /// The chart's fixed bounds, where there are natural ones (0 to 100
    /// for percentages); else the page fits the chart to the data.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Information beside the reading, not a bound: the memory there is.
    pub total: Option<f64>,
    /// Digits after the point in readings.
    pub decimals: u8,
    /// Charted, or shown as text only (uptime).
    pub chart: bool,
    source: Source,
    /// Read at most this often; readings in between repeat the last value.
    every: Option<Duration>,
    last: Option<(Instant, f64)>,
}

/// Where a sensor's value comes from.
enum Source {
    /// Computed by [`Board::read`] from the files of `/proc`.
    Proc,
    /// A number in a file: `(number + offset) * factor`.
    File {
        path: PathBuf,
        offset: f64,
        factor: f64,
    },
    /// Anything: `None` leaves the sensor out of this reading.
    With(Box<dyn FnMut() -> Option<f64> + Send>),
}

impl Sensor {
    /// A sensor of the System group, charted, with one decimal and no
    /// fixed bounds.
    pub fn new(id: impl Into<String>, label: impl Into<String>, unit: &'static str) -> Sensor {
        Sensor {
            id: id.into(),
            label: label.into(),
            unit,
            group: Group::System,
            min: None,
            max: None,
            total: None,
            decimals: 1,
            chart: true,
            source: Source::Proc,
            every: None,
            last: None,
        }
    }

    pub fn group(mut self, group: Group) -> Sensor {
        self.group = group;
        self
    }

    pub fn min(mut self, min: f64) -> Sensor {
        self.min = Some(min);
        self
    }

    pub fn max(mut self, max: f64) -> Sensor {
        self.max = Some(max);
        self
    }

    pub fn total(mut self, total: f64) -> Sensor {
        self.total = Some(total);
        self
    }

    pub fn decimals(mut self, decimals: u8) -> Sensor {
        self.decimals = decimals;
        self
    }

    /// Shown as text, not charted.
    pub fn text(mut self) -> Sensor {
        self.chart = false;
        self
    }

    /// Read at most once per `interval`, the readings in between repeating
    /// the last value: for a sensor that is slow to read (a BME280 measures
    /// for tens of milliseconds each time it is asked) or that changes
    /// slowly, so that the sampler keeps its rate.
    pub fn every(mut self, interval: Duration) -> Sensor {
        self.every = Some(interval);
        self
    }

    /// Reads the number in the file at `path`, times `factor`.
    pub fn read_file(self, path: impl Into<PathBuf>, factor: f64) -> Sensor {
        self.read_scaled_file(path, 0.0, factor)
    }

    /// Reads the number in the file at `path`: `(number + offset) * factor`.
    pub fn read_scaled_file(
        mut self,
        path: impl Into<PathBuf>,
        offset: f64,
        factor: f64,
    ) -> Sensor {
        let path = path.into();
        self.source = Source::File {
            path,
            offset,
            factor,
        };
        self
    }

    /// Reads what `read` answers, at each reading; `None` leaves the
    /// sensor out of that one.
    pub fn read_with(mut self, read: impl FnMut() -> Option<f64> + Send + 'static) -> Sensor {
        self.source = Source::With(Box::new(read));
        self
    }

    /// The JSON the page gets, in the info message.
    fn info(&self) -> Value {
        json!({
            "id": self.id,
            "label": self.label,
            "unit": self.unit,
            "group": self.group.name(),
            "min": self.min,
            "max": self.max,
            "total": self.total,
            "decimals": self.decimals,
            "chart": self.chart,
        })
    }
}

/// A source this board does not have, and where it was looked for.
pub struct Missing {
    pub label: String,
    pub source: String,
}

/// The board's sensors, and what is needed to turn counters into rates.
pub struct Board {
    pub sensors: Vec<Sensor>,
    pub missing: Vec<Missing>,
    /// No source at all could be read: a clearly labelled fake one instead.
    pub simulated: bool,
    /// The board's name, for the page's title.
    host: Option<String>,
    root: PathBuf,
    cpu: Window<Vec<(String, CpuTimes)>>,
    net: Window<(u64, u64)>,
    disk: Window<(u64, u64)>,
}

impl Board {
    /// This board's sensors, and [`extra_sensors`].
    pub fn probe() -> Board {
        Board::probe_at(Path::new("/"), extra_sensors())
    }

    /// Tries each source under `root` once: those that can be read are
    /// listed, the others reported as missing, and `extra` added.
    pub fn probe_at(root: &Path, extra: Vec<Sensor>) -> Board {
        let mut board = Board {
            sensors: Vec::new(),
            missing: Vec::new(),
            simulated: false,
            host: sysfs::read_text(&root.join("proc/sys/kernel/hostname")),
            root: root.to_path_buf(),
            cpu: Window::default(),
            net: Window::default(),
            disk: Window::default(),
        };
        let mut cores = Vec::new();
        match board.proc("stat").map(|text| parse_stat(&text)) {
            Some(cpus) if !cpus.is_empty() => {
                for (name, _) in cpus {
                    let label = match &name[3..] {
                        "" => "CPU usage, all cores".to_string(),
                        core => format!("CPU usage, core {core}"),
                    };
                    let sensor = Sensor::new(name, label, "%").min(0.0).max(100.0);
                    match sensor.id.as_str() {
                        "cpu" => board.sensors.push(sensor),
                        _ => cores.push(sensor),
                    }
                }
            }
            _ => board.lacks("CPU usage", &["proc/stat"]),
        }
        if board
            .proc("loadavg")
            .and_then(|t| parse_loadavg(&t))
            .is_some()
        {
            let load = Sensor::new("load", "Load average, 1 min", "");
            board.sensors.push(load.min(0.0).decimals(2));
        } else {
            board.lacks("Load average", &["proc/loadavg"]);
        }
        if let Some(memory) = board.proc("meminfo").and_then(|t| parse_meminfo(&t)) {
            let total_mib = (memory.total_kib / 1024) as f64;
            let mem = Sensor::new("mem", "Memory used", "MiB");
            board.sensors.push(mem.total(total_mib).decimals(0));
        } else {
            board.lacks("Memory", &["proc/meminfo (MemTotal, MemAvailable)"]);
        }
        if board
            .proc("uptime")
            .and_then(|t| parse_uptime(&t))
            .is_some()
        {
            let uptime = Sensor::new("uptime", "Uptime", "s");
            board.sensors.push(uptime.decimals(0).text());
        } else {
            board.lacks("Uptime", &["proc/uptime"]);
        }
        if board
            .proc("net/dev")
            .and_then(|t| parse_net_dev(&t))
            .is_some()
        {
            for (id, label) in [("rx", "Network in"), ("tx", "Network out")] {
                let sensor = Sensor::new(id, label, "KiB/s").group(Group::Network);
                board.sensors.push(sensor.min(0.0));
            }
        } else {
            board.lacks("Network throughput", &["proc/net/dev"]);
        }
        if board
            .proc("diskstats")
            .and_then(|t| parse_diskstats(&t))
            .is_some()
        {
            for (id, label) in [("disk_read", "Disk read"), ("disk_write", "Disk write")] {
                let sensor = Sensor::new(id, label, "KiB/s").group(Group::Disk);
                board.sensors.push(sensor.min(0.0));
            }
        } else {
            board.lacks("Disk throughput", &["proc/diskstats"]);
        }
        board.sensors.extend(extra);

        let found = sysfs::discover(root);
        let hwmon_temps = found.hwmon.iter().any(|s| s.group == Group::Temperature);
        if found.thermal.is_empty() && !hwmon_temps {
            board.lacks(
                "Temperature",
                &[
                    "sys/class/thermal/thermal_zone*/temp",
                    "sys/class/hwmon/hwmon*/temp*_input",
                ],
            );
        }
        if found.iio.is_empty() {
            board.lacks(
                "Environment and motion sensors (IIO)",
                &["sys/bus/iio/devices/iio:device*"],
            );
        }
        board.sensors.extend(found.thermal);
        board.sensors.extend(found.hwmon);
        board.sensors.extend(found.iio);
        board.bound(cores);

        if board.sensors.is_empty() {
            board.simulated = true;
            let started = Instant::now();
            let sim = Sensor::new("sim", "SIMULATED: no real sensor found", "");
            board.sensors.push(sim.read_with(move || {
                let seconds = started.elapsed().as_secs_f64();
                Some(50.0 + 40.0 * (seconds / 10.0).sin())
            }));
        }
        board
    }

    /// Keeps at most [`MAX_SENSORS`], with `cores` where there is room,
    /// and puts them in the page's order: by group, each core after the
    /// all-cores usage. The labels are made unique: a repeated one gets
    /// its id ("acpitz (thermal1)").
    fn bound(&mut self, mut cores: Vec<Sensor>) {
        let room = MAX_SENSORS.saturating_sub(self.sensors.len());
        let dropped: Vec<&str> = (self.sensors.iter().skip(MAX_SENSORS))
            .chain(cores.iter().skip(room))
            .map(|s| s.id.as_str())
            .collect();
        if !dropped.is_empty() {
            let mut ids = dropped[..dropped.len().min(8)].join(", ");
            if dropped.len() > 8 {
                ids.push_str(", ...");
            }
            self.missing.push(Missing {
                label: format!("{} more sensors (at most {MAX_SENSORS})", dropped.len()),
                source: ids,
            });
        }
        self.sensors.truncate(MAX_SENSORS);
        cores.truncate(room);
        let after_cpu = self
            .sensors
            .iter()
            .position(|s| s.id == "cpu")
            .map_or(0, |at| at + 1);
        self.sensors.splice(after_cpu..after_cpu, cores);
        self.sensors.sort_by_key(|s| s.group);

        let mut seen = HashSet::new();
        let repeated: HashSet<String> = self
            .sensors
            .iter()
            .filter(|s| !seen.insert(s.label.as_str()))
            .map(|s| s.label.clone())
            .collect();
        for sensor in &mut self.sensors {
            if repeated.contains(&sensor.label) {
                sensor.label = format!("{} ({})", sensor.label, sensor.id);
            }
        }
    }

    /// Notes a source this board lacks, and the files (under the root)
    /// where it was looked for.
    fn lacks(&mut self, label: &str, files: &[&str]) {
        let files: Vec<String> = files
            .iter()
            .map(|file| self.root.join(file).display().to_string())
            .collect();
        self.missing.push(Missing {
            label: label.into(),
            source: files.join(", "),
        });
    }

    /// A file of `/proc`, at most 1 MiB of it (all a board's are smaller;
    /// the lines wanted come first).
    fn proc(&self, file: &str) -> Option<String> {
        let bytes = sysfs::read_head(&self.root.join("proc").join(file), 1 << 20)?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The first message to each client: what the readings will contain.
    pub fn info(&self, rate: u32, rates: &[u32]) -> Value {
        let sensors: Vec<Value> = self.sensors.iter().map(Sensor::info).collect();
        let missing: Vec<Value> = self
            .missing
            .iter()
            .map(|m| json!({ "label": m.label, "source": m.source }))
            .collect();
        json!({
            "type": "info",
            "host": self.host,
            "rate": rate,
            "rates": rates,
            "hz": rate,
            "sensors": sensors,
            "missing": missing,
            "simulated": self.simulated,
        })
    }

    /// One sample of every sensor, by id, rounded to its decimals. A
    /// sensor that cannot be read now (or reads a number JSON cannot
    /// hold) is left out of this sample; rates need a second sample.
    pub fn read(&mut self, now: Instant) -> Map<String, Value> {
        let mut proc = self.read_proc(now);
        let mut values = Map::new();
        for sensor in &mut self.sensors {
            let recent = match (sensor.every, sensor.last) {
                (Some(every), Some((at, value))) if now.duration_since(at) < every => Some(value),
                _ => None,
            };
            let value = recent.or_else(|| match &mut sensor.source {
                Source::Proc => proc.remove(&sensor.id),
                Source::File {
                    path,
                    offset,
                    factor,
                } => sysfs::read_number(path).map(|n| (n + *offset) * *factor),
                Source::With(read) => read(),
            });
            if let (Some(value), None, Some(_)) = (value, recent, sensor.every) {
                sensor.last = Some((now, value));
            }
            if let Some(value) = value.and_then(|v| rounded(v, sensor.decimals)) {
                values.insert(sensor.id.clone(), value);
            }
        }
        values
    }

    /// The values computed from `/proc`, by sensor id.
    fn read_proc(&mut self, now: Instant) -> HashMap<String, f64> {
        let mut values = HashMap::new();
        if let Some(cpus) = self.proc("stat").map(|text| parse_stat(&text)) {
            if let Some((_, before, after)) = self.cpu.push(now, cpus) {
                for (name, times) in after {
                    let earlier = before.iter().find(|(n, _)| n == name);
                    if let Some(percent) = earlier.and_then(|(_, b)| usage_percent(*b, *times)) {
                        values.insert(name.clone(), percent);
                    }
                }
            }
        }
        if let Some(load) = self.proc("loadavg").and_then(|t| parse_loadavg(&t)) {
            values.insert("load".into(), load);
        }
        if let Some(memory) = self.proc("meminfo").and_then(|t| parse_meminfo(&t)) {
            values.insert("mem".into(), memory.used_kib() as f64 / 1024.0);
        }
        if let Some(seconds) = self.proc("uptime").and_then(|t| parse_uptime(&t)) {
            values.insert("uptime".into(), seconds);
        }
        let kib_per_second = |seconds: f64, before: u64, after: u64| {
            after.saturating_sub(before) as f64 / seconds / 1024.0
        };
        if let Some(bytes) = self.proc("net/dev").and_then(|t| parse_net_dev(&t)) {
            if let Some((seconds, before, after)) = self.net.push(now, bytes) {
                values.insert("rx".into(), kib_per_second(seconds, before.0, after.0));
                values.insert("tx".into(), kib_per_second(seconds, before.1, after.1));
            }
        }
        if let Some(bytes) = self.proc("diskstats").and_then(|t| parse_diskstats(&t)) {
            if let Some((seconds, before, after)) = self.disk.push(now, bytes) {
                values.insert(
                    "disk_read".into(),
                    kib_per_second(seconds, before.0, after.0),
                );
                values.insert(
                    "disk_write".into(),
                    kib_per_second(seconds, before.1, after.1),
                );
            }
        }
        values
    }
}

/// `value` with `decimals` digits after the point, as JSON: an integer
/// for none. `None` for what JSON cannot hold (infinity, NaN).
fn rounded(value: f64, decimals: u8) -> Option<Value> {
    let scale = 10f64.powi(i32::from(decimals));
    let value = (value * scale).round() / scale;
    match value.is_finite() {
        true if decimals == 0 && value.abs() < 9e15 => Some(json!(value as i64)),
        true => Some(json!(value)),
        false => None,
    }
}

/// Snapshots of counters over the last second or so, so that CPU usage
/// and throughput are averaged over a second whatever the sample rate (at
/// 10 Hz, one sample's worth of `/proc/stat` is a mere 10 ticks per core).
struct Window<T> {
    samples: VecDeque<(Instant, T)>,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            samples: VecDeque::new(),
        }
    }
}

impl<T> Window<T> {
    /// Adds a snapshot; returns the seconds since the one of about a second
    /// ago, that one and the new one (`None` for the very first).
    fn push(&mut self, now: Instant, value: T) -> Option<(f64, &T, &T)> {
        self.samples.push_back((now, value));
        while self.samples.len() > 2
            && now.duration_since(self.samples[1].0) >= Duration::from_secs(1)
        {
            self.samples.pop_front();
        }
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        (seconds > 0.0).then_some((seconds, &first.1, &last.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_json() {
        assert_eq!(rounded(48.312, 1), Some(json!(48.3)));
        assert_eq!(rounded(1000.06, 0), Some(json!(1000)));
        assert_eq!(rounded(-0.1196, 2), Some(json!(-0.12)));
        assert_eq!(rounded(1e300, 0), Some(json!(1e300)));
        assert_eq!(rounded(1e306, 3), None, "overflows when scaled");
        assert_eq!(rounded(f64::NAN, 1), None);
        assert_eq!(rounded(f64::INFINITY, 0), None);
    }

    #[test]
    fn window_compares_with_about_a_second_ago() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut window = Window::default();
        assert_eq!(window.push(at(0), 0), None);
        assert_eq!(window.push(at(500), 5), Some((0.5, &0, &5)));
        assert_eq!(window.push(at(1000), 10), Some((1.0, &0, &10)));
        assert_eq!(window.push(at(1600), 16), Some((1.1, &5, &16)));
    }
}
