//! The dashboard's sensor discovery, run against fixture trees that mimic
//! what boards expose in `/proc` and `/sys` (`tests/fixtures/sysfs/`): a
//! Raspberry Pi 4 with a BME280 and other I2C sensors, an x86 laptop, and
//! a system with `/proc` only. Then readings (rates from two samples a
//! second apart, with no sleeping: the instants are given), files of
//! garbage, a board with too many sensors, and sensors of one's own.

#[allow(dead_code)]
#[path = "../examples/dashboard/board.rs"]
mod board;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use board::{Board, Group, Sensor, MAX_SENSORS};
use serde_json::{json, Map, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sysfs")
        .join(name)
}

/// Each sensor as (id, label, unit, group), in the page's order.
fn listed(board: &Board) -> Vec<(String, String, String, String)> {
    let info = board.info(10, &[1, 10]);
    info["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |key: &str| s[key].as_str().unwrap().to_string();
            (text("id"), text("label"), text("unit"), text("group"))
        })
        .collect()
}

fn expect(rows: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    rows.iter()
        .map(|(id, label, unit, group)| {
            (
                id.to_string(),
                label.to_string(),
                unit.to_string(),
                group.to_string(),
            )
        })
        .collect()
}

/// Two readings a second apart (rates need two); the second.
fn read_twice(board: &mut Board) -> Map<String, Value> {
    let start = Instant::now();
    board.read(start);
    board.read(start + Duration::from_secs(1))
}

/// Each value expected, exactly (they are rounded to the sensor's
/// decimals); and no other.
fn assert_values(values: &Map<String, Value>, expected: &[(&str, f64)]) {
    for (id, value) in expected {
        assert_eq!(
            values.get(*id).and_then(Value::as_f64),
            Some(*value),
            "{id}: {values:?}"
        );
    }
    let mut ids: Vec<&str> = values.keys().map(String::as_str).collect();
    let mut expected_ids: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
    ids.sort();
    expected_ids.sort();
    assert_eq!(ids, expected_ids);
}

const SYSTEM_QUAD: [(&str, &str, &str, &str); 8] = [
    ("cpu", "CPU usage, all cores", "%", "System"),
    ("cpu0", "CPU usage, core 0", "%", "System"),
    ("cpu1", "CPU usage, core 1", "%", "System"),
    ("cpu2", "CPU usage, core 2", "%", "System"),
    ("cpu3", "CPU usage, core 3", "%", "System"),
    ("load", "Load average, 1 min", "", "System"),
    ("mem", "Memory used", "MiB", "System"),
    ("uptime", "Uptime", "s", "System"),
];

const NETWORK_AND_DISK: [(&str, &str, &str, &str); 4] = [
    ("rx", "Network in", "KiB/s", "Network"),
    ("tx", "Network out", "KiB/s", "Network"),
    ("disk_read", "Disk read", "KiB/s", "Disk"),
    ("disk_write", "Disk write", "KiB/s", "Disk"),
];

/// The values of the fixtures' `/proc` files, the same in each, read twice
/// a second apart: no CPU time passed (so no usage), nothing moved.
const PROC_VALUES: [(&str, f64); 7] = [
    ("load", 0.42),
    ("mem", 1000.0),
    ("uptime", 12346.0),
    ("rx", 0.0),
    ("tx", 0.0),
    ("disk_read", 0.0),
    ("disk_write", 0.0),
];

#[test]
fn raspberry_pi_with_a_bme280() {
    let mut board = Board::probe_at(&fixture("rpi4-bme280"), Vec::new());
    let mut expected = SYSTEM_QUAD.to_vec();
    expected.extend([
        ("thermal0", "cpu-thermal", "°C", "Temperature"),
        ("hwmon2.temp1", "sht3x temp1", "°C", "Temperature"),
        ("iio0.temp", "bme280 temperature", "°C", "Temperature"),
        ("iio2.temp", "mpu6050 temperature", "°C", "Temperature"),
        (
            "hwmon1.in0_lcrit_alarm",
            "rpi_volt in0 under-voltage",
            "",
            "Power",
        ),
        ("iio3.voltage0", "ads1015 voltage 0", "V", "Power"),
        ("hwmon2.humidity1", "sht3x humidity1", "%", "Environment"),
        (
            "iio0.humidityrelative",
            "bme280 humidity",
            "%",
            "Environment",
        ),
        ("iio0.pressure", "bme280 pressure", "hPa", "Environment"),
        (
            "iio1.illuminance",
            "bh1750 illuminance",
            "lux",
            "Environment",
        ),
        ("iio2.accel_x", "mpu6050 acceleration x", "m/s²", "Motion"),
        ("iio2.accel_y", "mpu6050 acceleration y", "m/s²", "Motion"),
        ("iio2.accel_z", "mpu6050 acceleration z", "m/s²", "Motion"),
        ("iio2.anglvel_x", "mpu6050 rotation x", "°/s", "Motion"),
        ("iio2.anglvel_y", "mpu6050 rotation y", "°/s", "Motion"),
        ("iio2.anglvel_z", "mpu6050 rotation z", "°/s", "Motion"),
    ]);
    expected.extend(NETWORK_AND_DISK);
    // hwmon0 ("cpu_thermal") is the kernel's mirror of thermal_zone0.
    assert_eq!(listed(&board), expect(&expected));
    assert!(board.missing.is_empty(), "{:?}", board.info(10, &[10]));
    assert!(!board.simulated);

    let mut values = PROC_VALUES.to_vec();
    values.extend([
        ("thermal0", 48.3),
        ("hwmon2.temp1", 21.5),
        ("iio0.temp", 23.45),
        // (raw + offset) * scale millidegrees: (-1000 + 12420) * 2.941176
        ("iio2.temp", 33.59),
        ("hwmon1.in0_lcrit_alarm", 0.0),
        // raw * scale millivolts: 1650 * 2
        ("iio3.voltage0", 3.3),
        ("hwmon2.humidity1", 55.3),
        ("iio0.humidityrelative", 45.7),
        // 101.325 kPa
        ("iio0.pressure", 1013.25),
        // 1000 * 0.833333 lux
        ("iio1.illuminance", 833.3),
        // raw * scale m/s²: 100, -200 and 16384 * 0.000598
        ("iio2.accel_x", 0.06),
        ("iio2.accel_y", -0.12),
        ("iio2.accel_z", 9.8),
        // raw * scale rad/s: ±131 * 0.000133090, about 1 °/s
        ("iio2.anglvel_x", 1.0),
        ("iio2.anglvel_y", 0.0),
        ("iio2.anglvel_z", -1.0),
    ]);
    assert_values(&read_twice(&mut board), &values);
}

#[test]
fn x86_laptop() {
    let mut board = Board::probe_at(&fixture("x86-laptop"), Vec::new());
    let mut expected = SYSTEM_QUAD.to_vec();
    expected.extend([
        // Two zones of one type: the labels say which.
        ("thermal0", "acpitz (thermal0)", "°C", "Temperature"),
        ("thermal1", "acpitz (thermal1)", "°C", "Temperature"),
        ("thermal2", "x86_pkg_temp", "°C", "Temperature"),
        ("hwmon1.temp1", "Package id 0", "°C", "Temperature"),
        ("hwmon1.temp2", "Core 0", "°C", "Temperature"),
        ("hwmon1.temp3", "Core 1", "°C", "Temperature"),
        ("hwmon2.temp1", "thinkpad temp1", "°C", "Temperature"),
        ("hwmon4.temp1", "Composite", "°C", "Temperature"),
        ("hwmon2.fan1", "thinkpad fan1", "RPM", "Fans"),
        ("hwmon3.in0", "BAT0 in0", "V", "Power"),
        ("hwmon3.curr1", "BAT0 curr1", "A", "Power"),
        ("hwmon10.in0", "ina219 in0", "V", "Power"),
        ("hwmon10.in1", "ina219 in1", "V", "Power"),
        ("hwmon10.curr1", "ina219 curr1", "A", "Power"),
        ("hwmon10.power1", "ina219 power1", "W", "Power"),
        ("iio1.illuminance", "als illuminance", "lux", "Environment"),
        ("iio0.accel_x", "accel_3d acceleration x", "m/s²", "Motion"),
        ("iio0.accel_y", "accel_3d acceleration y", "m/s²", "Motion"),
        ("iio0.accel_z", "accel_3d acceleration z", "m/s²", "Motion"),
    ]);
    expected.extend(NETWORK_AND_DISK);
    // Not listed: thermal_zone3 (iwlwifi_1) cannot be read; hwmon0
    // (acpitz) and hwmon5 (iwlwifi_1) are the kernel's mirrors of zones.
    assert_eq!(listed(&board), expect(&expected));
    assert!(board.missing.is_empty(), "{:?}", board.info(10, &[10]));

    let mut values = PROC_VALUES.to_vec();
    values.extend([
        ("thermal0", 45.0),
        ("thermal1", 47.0),
        ("thermal2", 52.0),
        ("hwmon1.temp1", 52.0),
        ("hwmon1.temp2", 50.0),
        ("hwmon1.temp3", 51.0),
        ("hwmon2.temp1", 47.0),
        ("hwmon4.temp1", 38.9),
        ("hwmon2.fan1", 2500.0),
        ("hwmon3.in0", 12.345),
        ("hwmon3.curr1", 1.5),
        ("hwmon10.in0", 0.005),
        ("hwmon10.in1", 5.02),
        ("hwmon10.curr1", 1.25),
        ("hwmon10.power1", 6.25),
        ("iio1.illuminance", 25.0),
        ("iio0.accel_x", -0.12),
        ("iio0.accel_y", 0.88),
        ("iio0.accel_z", -9.81),
    ]);
    assert_values(&read_twice(&mut board), &values);
}

#[test]
fn proc_only() {
    let root = fixture("bare");
    let mut board = Board::probe_at(&root, Vec::new());
    let mut expected = SYSTEM_QUAD[..2].to_vec();
    expected.extend(&SYSTEM_QUAD[5..]);
    expected.extend(NETWORK_AND_DISK);
    assert_eq!(listed(&board), expect(&expected));
    let missing: Vec<(String, String)> = (board.missing.iter())
        .map(|m| (m.label.clone(), m.source.clone()))
        .collect();
    let under = |file: &str| root.join(file).display().to_string();
    assert_eq!(
        missing,
        [
            (
                "Temperature".to_string(),
                format!(
                    "{}, {}",
                    under("sys/class/thermal/thermal_zone*/temp"),
                    under("sys/class/hwmon/hwmon*/temp*_input")
                )
            ),
            (
                "Environment and motion sensors (IIO)".to_string(),
                under("sys/bus/iio/devices/iio:device*")
            ),
        ]
    );
    assert_values(&read_twice(&mut board), &PROC_VALUES);
}

#[test]
fn info_tells_the_page_units_ranges_groups_and_decimals() {
    let board = Board::probe_at(&fixture("rpi4-bme280"), Vec::new());
    let info = board.info(10, &[1, 2, 5, 10]);
    assert_eq!(info["type"], "info");
    assert_eq!(info["host"], "raspberrypi");
    assert_eq!(info["rate"], 10);
    assert_eq!(info["rates"], json!([1, 2, 5, 10]));
    assert_eq!(info["missing"], json!([]));
    assert_eq!(info["simulated"], false);
    let sensor = |id: &str| {
        let sensors = info["sensors"].as_array().unwrap();
        sensors.iter().find(|s| s["id"] == id).unwrap().clone()
    };
    assert_eq!(
        sensor("cpu"),
        json!({"id": "cpu", "label": "CPU usage, all cores", "unit": "%", "group": "System",
               "min": 0.0, "max": 100.0, "total": null, "decimals": 1, "chart": true})
    );
    // The memory there is, as information: the chart fits the data.
    assert_eq!(
        sensor("mem"),
        json!({"id": "mem", "label": "Memory used", "unit": "MiB", "group": "System",
               "min": null, "max": null, "total": 3793.0, "decimals": 0, "chart": true})
    );
    assert_eq!(sensor("uptime")["chart"], false);
    assert_eq!(
        sensor("thermal0")["min"],
        Value::Null,
        "temperatures fit the data"
    );
    assert_eq!(sensor("thermal0")["max"], Value::Null);
    assert_eq!(sensor("iio0.humidityrelative")["max"], 100.0);
    assert_eq!(sensor("iio0.pressure")["decimals"], 2);
    assert_eq!(sensor("hwmon1.in0_lcrit_alarm")["max"], 1.0);
}

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("boardcast-sensors-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, file: &str, contents: impl AsRef<[u8]>) {
        let path = self.0.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    /// The `/proc` files of the `bare` fixture.
    fn with_proc(self) -> Scratch {
        for file in [
            "stat",
            "meminfo",
            "loadavg",
            "uptime",
            "net/dev",
            "diskstats",
        ] {
            let text = fs::read(fixture("bare").join("proc").join(file)).unwrap();
            self.write(&format!("proc/{file}"), text);
        }
        self
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rates_over_a_second() {
    let dir = Scratch::new("rates").with_proc();
    let mut board = Board::probe_at(&dir.0, Vec::new());
    let start = Instant::now();
    let first = board.read(start);
    assert!(
        !first.contains_key("cpu") && !first.contains_key("rx"),
        "one sample has no rate"
    );

    // A second later: 50 ticks busy and 150 idle; 100 KiB in and 50 out;
    // 2048 sectors (1 MiB) read from sda and 1024 written.
    dir.write(
        "proc/stat",
        "cpu  4050 10 2000 90150 500 0 100 0 0 0\ncpu0  1050 2 500 22650 125 0 25 0 0 0\n",
    );
    let net = fs::read_to_string(dir.0.join("proc/net/dev")).unwrap();
    let net = net.replace(
        "eth0: 1000 20 0 0 0 0 0 0 300",
        "eth0: 103400 20 0 0 0 0 0 0 51500",
    );
    dir.write("proc/net/dev", net);
    dir.write(
        "proc/diskstats",
        "   8       0 sda 10 0 2148 5 1 0 1032 1 0 6 6 0 0 0 0 0 0\n   8       1 sda1 10 0 2148 5 1 0 1032 1 0 6 6 0 0 0 0 0 0\n",
    );
    let values = board.read(start + Duration::from_secs(1));
    for (id, expected) in [
        ("cpu", 25.0),
        ("cpu0", 25.0),
        ("rx", 100.0),
        ("tx", 50.0),
        ("disk_read", 1024.0),
        ("disk_write", 512.0),
    ] {
        assert_eq!(values[id].as_f64(), Some(expected), "{id}: {values:?}");
    }
}

#[test]
fn garbage_in_files_is_skipped_or_missing() {
    let dir = Scratch::new("garbage");
    dir.write("proc/stat", "cpu garbage\n\u{0}\u{1}\n");
    dir.write("proc/meminfo", "");
    dir.write("proc/loadavg", b"\xff\xfe\x00binary");
    dir.write("proc/uptime", "1e999 0\n");
    dir.write("proc/net/dev", "99999999999999999999999999999999\n");
    // Far more than is read of a file: only the head is.
    dir.write("proc/diskstats", "9".repeat(4 << 20));
    dir.write("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n");
    dir.write("sys/class/thermal/thermal_zone0/temp", "NaN\n");
    dir.write("sys/class/thermal/thermal_zone1/type", "x".repeat(100_000));
    dir.write("sys/class/thermal/thermal_zone1/temp", "41000\n");
    dir.write("sys/class/thermal/thermal_zone2/temp", "1".repeat(1000));
    dir.write("sys/class/thermal/thermal_zoneX/temp", "40000\n");
    let hwmon = "sys/class/hwmon/hwmon0/";
    dir.write(&format!("{hwmon}name"), "weird\u{7}\n");
    dir.write(&format!("{hwmon}temp1_input"), "inf\n");
    dir.write(&format!("{hwmon}fan1_input"), "-\n");
    dir.write(&format!("{hwmon}in0_input"), "1e300\n");
    dir.write(&format!("{hwmon}curr1_input"), "");
    dir.write(&format!("{hwmon}power1_input"), b"\xff\n");
    dir.write(&format!("{hwmon}humidity1_input"), "12 34\n");
    dir.write(&format!("{hwmon}tempX_input"), "1000\n");
    dir.write("sys/class/hwmon/hwmon1/temp1_input", "1000\n"); // no name
    let iio = "sys/bus/iio/devices/iio:device0/";
    dir.write(&format!("{iio}name"), "bme280\n");
    dir.write(&format!("{iio}in_temp_raw"), "12\n");
    dir.write(&format!("{iio}in_temp_scale"), "garbage\n");
    dir.write(&format!("{iio}in_pressure_input"), "\n");
    dir.write(&format!("{iio}in_humidityrelative_raw"), "500\n"); // no scale
    dir.write(&format!("{iio}in_illuminance\"_input"), "5\n");

    let mut board = Board::probe_at(&dir.0, Vec::new());
    let ids: Vec<String> = listed(&board).into_iter().map(|s| s.0).collect();
    // The readable: a zone whose type is too long to be a label, and a
    // huge voltage; nothing else.
    assert_eq!(ids, ["thermal1", "hwmon0.in0"]);
    let label = &listed(&board)[0].1;
    assert_eq!(label.len(), 64, "a label is at most 64 characters");
    assert_eq!(listed(&board)[1].1, "weird in0");
    let missing: Vec<&str> = board.missing.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(
        missing,
        [
            "CPU usage",
            "Load average",
            "Memory",
            "Uptime",
            "Network throughput",
            "Disk throughput",
            "Environment and motion sensors (IIO)",
        ]
    );

    let values = read_twice(&mut board);
    assert_eq!(values["thermal1"], json!(41.0));
    assert!(values["hwmon0.in0"].as_f64().unwrap() > 1e296, "{values:?}");
    // Files that turn to garbage later are left out of that reading.
    dir.write("sys/class/thermal/thermal_zone1/temp", "-\n");
    dir.write(&format!("{hwmon}in0_input"), "1e999\n");
    assert_eq!(board.read(Instant::now()), Map::new());
}

#[test]
fn at_most_so_many_sensors() {
    let dir = Scratch::new("many").with_proc();
    dir.write("sys/class/hwmon/hwmon0/name", "many\n");
    for fan in 1..=100 {
        dir.write(&format!("sys/class/hwmon/hwmon0/fan{fan}_input"), "1000\n");
    }
    let board = Board::probe_at(&dir.0, Vec::new());
    let ids: Vec<String> = listed(&board).into_iter().map(|s| s.0).collect();
    assert_eq!(ids.len(), MAX_SENSORS);
    // The board's own come first; core 0's usage and the last fans go.
    assert_eq!(ids[..4], ["cpu", "load", "mem", "uptime"]);
    assert_eq!(ids[4], "hwmon0.fan1");
    assert_eq!(ids[MAX_SENSORS - 5], "hwmon0.fan56");
    let too_many = board
        .missing
        .iter()
        .find(|m| m.label.contains("more sensors"))
        .unwrap();
    assert_eq!(
        too_many.label,
        format!("45 more sensors (at most {MAX_SENSORS})")
    );
    assert!(
        too_many.source.starts_with("hwmon0.fan57, hwmon0.fan58,"),
        "{}",
        too_many.source
    );
}

#[test]
fn sensors_of_ones_own() {
    let bme280 = fixture("rpi4-bme280").join("sys/bus/iio/devices/iio:device0/in_temp_input");
    let mut level = 40.0;
    let extra = vec![
        Sensor::new("greenhouse", "Greenhouse", "°C")
            .group(Group::Environment)
            .decimals(2)
            .read_file(bme280, 0.001),
        Sensor::new("tank", "Water tank", "%")
            .group(Group::Environment)
            .min(0.0)
            .max(100.0)
            .read_with(move || {
                level += 1.0;
                Some(level)
            }),
    ];
    let mut board = Board::probe_at(&fixture("bare"), extra);
    let listed = listed(&board);
    let position = |id: &str| listed.iter().position(|s| s.0 == id).unwrap();
    assert!(position("greenhouse") > position("uptime") && position("tank") < position("rx"));
    let values = read_twice(&mut board);
    assert_eq!(values["greenhouse"].as_f64(), Some(23.45));
    assert_eq!(values["tank"].as_f64(), Some(42.0));
}

#[test]
fn air_sensors_are_read_once_a_second() {
    let dir = Scratch::new("every").with_proc();
    let bme280 = "sys/bus/iio/devices/iio:device0/";
    dir.write(&format!("{bme280}name"), "bme280\n");
    dir.write(&format!("{bme280}in_temp_input"), "20000\n");
    let accel = "sys/bus/iio/devices/iio:device1/";
    dir.write(&format!("{accel}name"), "adxl345\n");
    dir.write(&format!("{accel}in_accel_z_raw"), "100\n");
    dir.write(&format!("{accel}in_accel_scale"), "0.1\n");
    let mut board = Board::probe_at(&dir.0, Vec::new());
    let start = Instant::now();
    let at = |ms| start + Duration::from_millis(ms);
    let read = |board: &mut Board, ms| {
        let values = board.read(at(ms));
        (
            values["iio0.temp"].as_f64().unwrap(),
            values["iio1.accel_z"].as_f64().unwrap(),
        )
    };
    assert_eq!(read(&mut board, 0), (20.0, 10.0));
    dir.write(&format!("{bme280}in_temp_input"), "21000\n");
    dir.write(&format!("{accel}in_accel_z_raw"), "50\n");
    assert_eq!(
        read(&mut board, 500),
        (20.0, 5.0),
        "the air's last value, motion's new one"
    );
    assert_eq!(read(&mut board, 1000), (21.0, 5.0));
}
