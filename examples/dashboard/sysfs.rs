//! The sensors the kernel lists in `/sys`: thermal zones, hardware
//! monitors (hwmon: temperatures, fans, voltages, current, power,
//! humidity) and Industrial I/O devices (IIO: the temperature, humidity,
//! pressure, light, motion and ADC chips of a board's I2C and SPI buses).
//!
//! Each is found by listing its directories once, at start, and read as a
//! number in one file, scaled from the unit the kernel's ABI gives
//! (`Documentation/ABI/testing/sysfs-class-hwmon`, `sysfs-bus-iio`,
//! `sysfs-class-thermal`) to the one people expect: °C, %, hPa, lux, m/s²,
//! °/s, V, A, W, RPM.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Group, Sensor};

/// At most this many entries of a directory are looked at, so that a
/// strange board cannot make discovery slow or large.
const MAX_ENTRIES: usize = 256;

/// What discovery found under a root directory.
pub struct Found {
    pub thermal: Vec<Sensor>,
    pub hwmon: Vec<Sensor>,
    pub iio: Vec<Sensor>,
}

/// Every readable thermal zone, hwmon and IIO channel under `root` (`/`
/// on the board, a fixture tree in tests).
pub fn discover(root: &Path) -> Found {
    let (thermal, zone_types) = thermal_zones(root);
    Found {
        thermal,
        hwmon: hwmons(root, &zone_types),
        iio: iio_devices(root),
    }
}

// ---------------------------------------------------------------------------
// What each kind of channel is

/// A kind of channel: how its files are named, and how its number becomes
/// a reading.
struct Kind {
    /// hwmon: `<prefix><N>_input`; IIO: `in_<prefix>[N][_<modifier>]_{input,raw}`.
    prefix: &'static str,
    /// The label's word for it, where the kernel gives none (IIO).
    word: &'static str,
    unit: &'static str,
    /// From the ABI's unit to `unit`.
    factor: f64,
    group: Group,
    decimals: u8,
    min: Option<f64>,
    max: Option<f64>,
}

impl Kind {
    fn sensor(&self, id: String, label: String) -> Sensor {
        let mut sensor = Sensor::new(id, label, self.unit)
            .group(self.group)
            .decimals(self.decimals);
        sensor.min = self.min;
        sensor.max = self.max;
        sensor
    }
}

const fn kind(
    prefix: &'static str,
    word: &'static str,
    unit: &'static str,
    factor: f64,
    group: Group,
    decimals: u8,
) -> Kind {
    Kind {
        prefix,
        word,
        unit,
        factor,
        group,
        decimals,
        min: None,
        max: None,
    }
}

const PERCENT: (Option<f64>, Option<f64>) = (Some(0.0), Some(100.0));

/// hwmon channels (`sysfs-class-hwmon`): millidegrees Celsius, RPM,
/// millivolts, milliamperes, microwatts, milli-percent.
const HWMON: [Kind; 6] = [
    kind("temp", "temperature", "°C", 1e-3, Group::Temperature, 1),
    Kind {
        min: Some(0.0),
        ..kind("fan", "fan", "RPM", 1.0, Group::Fans, 0)
    },
    kind("in", "voltage", "V", 1e-3, Group::Power, 3),
    kind("curr", "current", "A", 1e-3, Group::Power, 3),
    kind("power", "power", "W", 1e-6, Group::Power, 2),
    Kind {
        min: PERCENT.0,
        max: PERCENT.1,
        ..kind("humidity", "humidity", "%", 1e-3, Group::Environment, 1)
    },
];

/// IIO channels (`sysfs-bus-iio`; `_input`, or `(raw + offset) * scale`):
/// millidegrees Celsius, milli-percent, kilopascals (shown in hPa), lux,
/// m/s², rad/s (shown in °/s), millivolts.
const IIO: [Kind; 7] = [
    kind("temp", "temperature", "°C", 1e-3, Group::Temperature, 2),
    Kind {
        min: PERCENT.0,
        max: PERCENT.1,
        ..kind(
            "humidityrelative",
            "humidity",
            "%",
            1e-3,
            Group::Environment,
            1,
        )
    },
    kind("pressure", "pressure", "hPa", 10.0, Group::Environment, 2),
    Kind {
        min: Some(0.0),
        ..kind(
            "illuminance",
            "illuminance",
            "lux",
            1.0,
            Group::Environment,
            1,
        )
    },
    kind("accel", "acceleration", "m/s²", 1.0, Group::Motion, 2),
    kind(
        "anglvel",
        "rotation",
        "°/s",
        180.0 / std::f64::consts::PI,
        Group::Motion,
        1,
    ),
    kind("voltage", "voltage", "V", 1e-3, Group::Power, 3),
];

// ---------------------------------------------------------------------------
// Discovery

/// `/sys/class/thermal/thermal_zone<N>/temp` (millidegrees), labelled by
/// the zone's `type` ("cpu-thermal", "x86_pkg_temp", "acpitz"). Also
/// returns every zone's type, to tell their hwmon mirrors.
fn thermal_zones(root: &Path) -> (Vec<Sensor>, Vec<String>) {
    let mut sensors = Vec::new();
    let mut types = Vec::new();
    for (n, dir) in numbered(&root.join("sys/class/thermal"), "thermal_zone") {
        let kind = read_text(&dir.join("type")).unwrap_or_else(|| format!("thermal_zone{n}"));
        let temp = dir.join("temp");
        if read_number(&temp).is_some() {
            sensors.push(
                HWMON[0]
                    .sensor(format!("thermal{n}"), kind.clone())
                    .read_file(temp, 1e-3),
            );
        }
        types.push(kind);
    }
    (sensors, types)
}

/// `/sys/class/hwmon/hwmon<N>/` with a `name`: each `<kind><M>_input`
/// file that reads as a number, labelled by `<kind><M>_label` or else
/// "<name> <kind><M>", and the under-voltage flag of a voltage the driver
/// does not measure (`in<M>_lcrit_alarm` without `in<M>_input`: the
/// Raspberry Pi's `rpi_volt`).
///
/// The kernel mirrors each thermal zone as a hwmon named after its type,
/// with '-' made '_' ("cpu-thermal" becomes "cpu_thermal"): the
/// temperatures of such a hwmon are the zone's, already charted, and are
/// left out. Any other hwmon temperature is kept, even if a zone reads the
/// same chip: the labels tell them apart.
fn hwmons(root: &Path, zone_types: &[String]) -> Vec<Sensor> {
    let mirrors: Vec<String> = zone_types.iter().map(|t| t.replace('-', "_")).collect();
    let mut sensors = Vec::new();
    for (n, dir) in numbered(&root.join("sys/class/hwmon"), "hwmon") {
        // Drivers older than Linux 3.x put their files in `device/`.
        let dir = match dir.join("name").exists() {
            true => dir,
            false => dir.join("device"),
        };
        let Some(name) = read_text(&dir.join("name")) else {
            continue;
        };
        let files = file_names(&dir);
        let mut channels: Vec<(usize, u32, &str)> = files
            .iter()
            .filter_map(|file| {
                let channel = file.strip_suffix("_input")?;
                let (k, index) = hwmon_channel(channel)?;
                Some((k, index, channel))
            })
            .collect();
        channels.sort();
        for (k, _, channel) in channels {
            if k == 0 && mirrors.contains(&name) {
                continue;
            }
            let input = dir.join(format!("{channel}_input"));
            if read_number(&input).is_none() {
                continue;
            }
            let label = read_text(&dir.join(format!("{channel}_label")))
                .unwrap_or_else(|| format!("{name} {channel}"));
            let id = format!("hwmon{n}.{channel}");
            sensors.push(HWMON[k].sensor(id, label).read_file(input, HWMON[k].factor));
        }
        let mut alarms: Vec<(u32, &str)> = files
            .iter()
            .filter_map(|file| {
                let channel = file.strip_suffix("_lcrit_alarm")?;
                let (k, index) = hwmon_channel(channel)?;
                let unmeasured = !files.contains(&format!("{channel}_input"));
                (HWMON[k].prefix == "in" && unmeasured).then_some((index, channel))
            })
            .collect();
        alarms.sort();
        for (_, channel) in alarms {
            let alarm = dir.join(format!("{channel}_lcrit_alarm"));
            if read_number(&alarm).is_none() {
                continue;
            }
            let label = read_text(&dir.join(format!("{channel}_label")))
                .unwrap_or_else(|| format!("{name} {channel}"));
            let sensor = Sensor::new(
                format!("hwmon{n}.{channel}_lcrit_alarm"),
                format!("{label} under-voltage"),
                "",
            );
            sensors.push(
                sensor
                    .group(Group::Power)
                    .min(0.0)
                    .max(1.0)
                    .decimals(0)
                    .read_file(alarm, 1.0),
            );
        }
    }
    sensors
}

/// A hwmon channel's kind (its index in [`HWMON`]) and number: "fan2" is
/// (1, 2); "temp" (no number) or "intrusion0" are not channels.
fn hwmon_channel(channel: &str) -> Option<(usize, u32)> {
    HWMON.iter().enumerate().find_map(|(k, kind)| {
        let digits = channel.strip_prefix(kind.prefix)?;
        Some((k, parse_index(digits)?))
    })
}

/// `/sys/bus/iio/devices/iio:device<N>/` with a `name`: each channel of a
/// kind in [`IIO`], read from `in_<channel>_input` (processed by the
/// driver), or else from `in_<channel>_raw` with its `_scale` and
/// `_offset` (the channel's own, or its kind's: `in_accel_scale` serves
/// `in_accel_x_raw`). A raw channel without a scale has no unit and is
/// left out. Scale and offset are read once: drivers change them only
/// when told to. Temperature, humidity, pressure and light are read once
/// a second, motion and voltages at each sample.
fn iio_devices(root: &Path) -> Vec<Sensor> {
    let mut sensors = Vec::new();
    for (n, dir) in numbered(&root.join("sys/bus/iio/devices"), "iio:device") {
        let Some(name) = read_text(&dir.join("name")) else {
            continue;
        };
        let files = file_names(&dir);
        // Each channel once, processed if the driver offers it, by kind
        // then name.
        let mut channels: Vec<(usize, &str, bool)> = files
            .iter()
            .filter_map(|file| {
                let (channel, processed) = match file.strip_suffix("_input") {
                    Some(channel) => (channel, true),
                    None => (file.strip_suffix("_raw")?, false),
                };
                let channel = channel.strip_prefix("in_")?;
                Some((iio_kind(channel)?, channel, !processed))
            })
            .collect();
        channels.sort();
        channels.dedup_by(|b, a| a.1 == b.1);
        for (k, channel, raw) in channels {
            let kind = &IIO[k];
            let attribute = |suffix: &str| {
                [channel, kind.prefix]
                    .iter()
                    .find_map(|c| read_number(&dir.join(format!("in_{c}_{suffix}"))))
            };
            let (path, offset, scale) = if raw {
                let Some(scale) = attribute("scale") else {
                    continue;
                };
                let offset = attribute("offset").unwrap_or(0.0);
                (dir.join(format!("in_{channel}_raw")), offset, scale)
            } else {
                (dir.join(format!("in_{channel}_input")), 0.0, 1.0)
            };
            if read_number(&path).is_none() {
                continue;
            }
            let label = match read_text(&dir.join(format!("in_{channel}_label"))) {
                Some(label) => format!("{name} {label}"),
                None => format!("{name} {}", iio_words(kind, channel)),
            };
            let mut sensor = kind.sensor(format!("iio{n}.{channel}"), label);
            // A temperature, humidity or pressure chip measures each time
            // it is asked (a BME280, for up to 40 ms): once a second is
            // enough for the air, and leaves the sampler its rate.
            if matches!(kind.group, Group::Temperature | Group::Environment) {
                sensor = sensor.every(Duration::from_secs(1));
            }
            sensors.push(sensor.read_scaled_file(path, offset, scale * kind.factor));
        }
    }
    sensors
}

/// The kind (index in [`IIO`]) of an IIO channel such as "temp",
/// "accel_x", "voltage0", "illuminance0", "temp_ambient" or
/// "voltage0-voltage1"; `None` for other kinds and for attributes that
/// are not channels ("temp_offset" has no `_raw` suffix, so never comes
/// here).
fn iio_kind(channel: &str) -> Option<usize> {
    if !channel
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return None;
    }
    IIO.iter().position(|kind| {
        channel.strip_prefix(kind.prefix).is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with(|c: char| c.is_ascii_digit() || c == '_' || c == '-')
        })
    })
}

/// A channel's name in words: "accel_x" is "acceleration x", "voltage0"
/// is "voltage 0", "humidityrelative" is "humidity".
fn iio_words(kind: &Kind, channel: &str) -> String {
    let rest = channel[kind.prefix.len()..].replace('_', " ");
    match rest.starts_with(|c: char| c.is_ascii_digit()) {
        true => format!("{} {rest}", kind.word),
        false => format!("{}{rest}", kind.word),
    }
}

// ---------------------------------------------------------------------------
// Reading sysfs files

/// The entries `<prefix><N>` of `dir`, by N: "hwmon2" before "hwmon10".
fn numbered(dir: &Path, prefix: &str) -> Vec<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = file_names(dir)
        .into_iter()
        .filter_map(|name| {
            let n = parse_index(name.strip_prefix(prefix)?)?;
            Some((n, dir.join(name)))
        })
        .collect();
    found.sort();
    found
}

/// The names in `dir` (at most [`MAX_ENTRIES`] of them, sorted), or none
/// if it cannot be listed.
fn file_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .take(MAX_ENTRIES)
        .collect();
    names.sort();
    names
}

/// "0", "12": a channel or device number; not "", "+1" or "007x".
fn parse_index(digits: &str) -> Option<u32> {
    match digits.bytes().all(|b| b.is_ascii_digit()) {
        true => digits.parse().ok(),
        false => None,
    }
}

/// The start of a file, at most `limit` bytes of it: all the program ever
/// holds of one, whatever is in it.
pub fn read_head(path: &Path, limit: usize) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(limit as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// A sysfs file of one number ("48312\n", "101.325000000\n", "-12\n").
/// `None` if the file is absent or unreadable (a sensor that is asleep
/// answers EIO or ENODATA), or does not hold one finite number.
pub fn read_number(path: &Path) -> Option<f64> {
    const LIMIT: usize = 64;
    let bytes = read_head(path, LIMIT)?;
    if bytes.len() == LIMIT {
        return None; // no number is that long
    }
    parse_number(std::str::from_utf8(&bytes).ok()?)
}

/// A number as sysfs writes it, finite ("inf", "NaN" and "1e999" are
/// not readings).
pub fn parse_number(text: &str) -> Option<f64> {
    let value: f64 = text.trim().parse().ok()?;
    value.is_finite().then_some(value)
}

/// The first line of a short text file (a `name`, `type` or `label`),
/// without control characters and at most 64 characters long; `None` if
/// absent or empty.
pub fn read_text(path: &Path) -> Option<String> {
    let bytes = read_head(path, 256)?;
    let text = String::from_utf8_lossy(&bytes);
    let line: String = text
        .lines()
        .next()?
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let line = line.trim();
    (!line.is_empty()).then(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_sysfs_writes_them() {
        assert_eq!(parse_number("48312\n"), Some(48312.0));
        assert_eq!(parse_number("-12\n"), Some(-12.0));
        assert_eq!(parse_number("101.325000000\n"), Some(101.325));
        assert_eq!(parse_number("99999999999999999999999"), Some(1e23));
        for garbage in [
            "", "\n", "abc", "12 34", "inf", "NaN", "1e999", "0x10", "--1",
        ] {
            assert_eq!(parse_number(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn hwmon_channels_by_kind_and_number() {
        assert_eq!(hwmon_channel("temp1"), Some((0, 1)));
        assert_eq!(hwmon_channel("fan12"), Some((1, 12)));
        assert_eq!(hwmon_channel("in0"), Some((2, 0)));
        assert_eq!(hwmon_channel("curr1"), Some((3, 1)));
        assert_eq!(hwmon_channel("power1"), Some((4, 1)));
        assert_eq!(hwmon_channel("humidity1"), Some((5, 1)));
        for other in [
            "temp",
            "intrusion0",
            "temp1_crit",
            "in0_min",
            "pwm1",
            "fan+1",
        ] {
            assert_eq!(hwmon_channel(other), None, "{other}");
        }
    }

    #[test]
    fn iio_channels_by_kind() {
        let kind = |channel| iio_kind(channel).map(|k| IIO[k].prefix);
        assert_eq!(kind("temp"), Some("temp"));
        assert_eq!(kind("temp_ambient"), Some("temp"));
        assert_eq!(kind("humidityrelative"), Some("humidityrelative"));
        assert_eq!(kind("pressure"), Some("pressure"));
        assert_eq!(kind("illuminance0"), Some("illuminance"));
        assert_eq!(kind("accel_x"), Some("accel"));
        assert_eq!(kind("anglvel_z"), Some("anglvel"));
        assert_eq!(kind("voltage0-voltage1"), Some("voltage"));
        for other in [
            "intensity_ir",
            "proximity",
            "temperature",
            "accel_x\"",
            "Temp",
        ] {
            assert_eq!(kind(other), None, "{other}");
        }
    }

    #[test]
    fn iio_channels_in_words() {
        let words = |channel| iio_words(&IIO[iio_kind(channel).unwrap()], channel);
        assert_eq!(words("temp"), "temperature");
        assert_eq!(words("humidityrelative"), "humidity");
        assert_eq!(words("accel_x"), "acceleration x");
        assert_eq!(words("voltage0"), "voltage 0");
        assert_eq!(words("temp_object"), "temperature object");
    }

    #[test]
    fn indexes_are_plain_digits() {
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("10"), Some(10));
        for other in ["", "+1", "1a", "-1", "99999999999"] {
            assert_eq!(parse_index(other), None, "{other}");
        }
    }
}
