//! The CPU time a process has used, from `/proc/PID/stat`, and how busy a
//! core has been, from `/proc/stat`.
//!
//! ```
//! use push_bench::cpu::parse_stat_ticks;
//!
//! // pid, (comm), state, then fields 4 to 13; utime and stime are 14 and 15.
//! let stat = "4242 (push server) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 31 0 0 20 0 3";
//! assert_eq!(parse_stat_ticks(stat), Some(281));
//! ```
//!
//! Whatever else ran on the server's core competed with it: a core's busy
//! time less the server's own over the same window says how much.
//!
//! The kernel counts user and system time (`utime`, `stime`) in clock ticks
//! of `1 / CLK_TCK` seconds (10 ms on Linux), summed over every thread of
//! the process. Readings are as fine as one tick, so a measurement should
//! take the server well over a second of CPU.

use std::sync::OnceLock;
use std::time::Duration;

use crate::{Error, Result};

/// CPU time used by a process (user plus system, all threads) up to the
/// reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuTime {
    /// Clock ticks.
    pub ticks: u64,
    /// Ticks per second (`getconf CLK_TCK`).
    pub ticks_per_second: u64,
}

impl CpuTime {
    /// The CPU time used between `earlier` and this reading.
    pub fn since(self, earlier: CpuTime) -> Duration {
        let ticks = self.ticks.saturating_sub(earlier.ticks);
        Duration::from_secs_f64(ticks_to_seconds(ticks, self.ticks_per_second))
    }
}

/// `ticks` clock ticks in seconds, at `ticks_per_second` (0 read as 1).
pub fn ticks_to_seconds(ticks: u64, ticks_per_second: u64) -> f64 {
    ticks as f64 / ticks_per_second.max(1) as f64
}

/// The CPU seconds other processes took on the server's core over a
/// window: the core's busy ticks less the server's own.
pub fn others_seconds(core_busy_ticks: u64, server_ticks: u64, ticks_per_second: u64) -> f64 {
    ticks_to_seconds(
        core_busy_ticks.saturating_sub(server_ticks),
        ticks_per_second,
    )
}

/// Reads the CPU time process `pid` has used so far.
///
/// # Errors
///
/// When `/proc/PID/stat` cannot be read (the process has exited, or this is
/// not Linux) or cannot be parsed, or when `getconf CLK_TCK` fails.
pub fn cpu_time(pid: u32) -> Result<CpuTime> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|error| Error::new(format!("cannot read {path}: {error}")))?;
    let ticks = parse_stat_ticks(&stat).ok_or_else(|| {
        Error::new(format!(
            "{path} has no readable utime and stime: is process {pid} a zombie?"
        ))
    })?;
    Ok(CpuTime {
        ticks,
        ticks_per_second: ticks_per_second()?,
    })
}

/// `utime + stime` (fields 14 and 15) from the text of a `/proc/PID/stat`
/// file. `None` when they are missing or not numbers.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: count fields from the last `)`.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// How long core `core` has been busy (user, nice, system, irq, softirq
/// and steal time, by every process) since boot.
///
/// # Errors
///
/// When `/proc/stat` cannot be read or has no readable `cpuN` line for the
/// core, or when `getconf CLK_TCK` fails.
pub fn core_busy(core: usize) -> Result<CpuTime> {
    let stat = std::fs::read_to_string("/proc/stat")
        .map_err(|error| Error::new(format!("cannot read /proc/stat: {error}")))?;
    let ticks = parse_core_busy_ticks(&stat, core).ok_or_else(|| {
        Error::new(format!(
            "/proc/stat has no readable line for core {core}: does this machine have it?"
        ))
    })?;
    Ok(CpuTime {
        ticks,
        ticks_per_second: ticks_per_second()?,
    })
}

/// The busy ticks of core `core` from the text of `/proc/stat`: the sum of
/// the `user nice system idle iowait irq softirq steal` fields but `idle`
/// and `iowait`. `None` when the line is missing or unreadable.
pub fn parse_core_busy_ticks(stat: &str, core: usize) -> Option<u64> {
    let name = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name.as_str()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    match fields[..] {
        [user, nice, system, _idle, _iowait, irq, softirq, steal] => {
            Some(user + nice + system + irq + softirq + steal)
        }
        _ => None,
    }
}

/// Clock ticks per second, from `getconf CLK_TCK`, read once.
///
/// # Errors
///
/// When `getconf` cannot be run or prints something else than a positive
/// number.
pub fn ticks_per_second() -> Result<u64> {
    static TICKS: OnceLock<std::result::Result<u64, String>> = OnceLock::new();
    TICKS
        .get_or_init(|| {
            let output = std::process::Command::new("getconf")
                .arg("CLK_TCK")
                .output()
                .map_err(|error| {
                    format!("cannot run `getconf CLK_TCK` (package libc-bin): {error}")
                })?;
            let text = String::from_utf8_lossy(&output.stdout);
            text.trim()
                .parse::<u64>()
                .ok()
                .filter(|ticks| *ticks > 0)
                .ok_or_else(|| format!("`getconf CLK_TCK` printed {text:?}, not a tick rate"))
        })
        .clone()
        .map_err(Error::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_an_odd_command_name() {
        let stat = "17 (a) b (c) R 1 17 17 0 -1 0 0 0 0 0 7 5 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(12));
        assert_eq!(parse_stat_ticks("17 (a) R 1 2"), None);
        assert_eq!(parse_stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn reads_a_cores_busy_time() {
        let stat = "cpu  349196 0 79766 1053080 4861 0 2388 272 0 0\n\
                    cpu0 169946 1 38777 533695 1165 2 1033 132 0 0\n\
                    cpu1 179249 0 40988 519384 3695 0 1355 139 0 0\n";
        assert_eq!(
            parse_core_busy_ticks(stat, 0),
            Some(169946 + 1 + 38777 + 2 + 1033 + 132)
        );
        assert_eq!(
            parse_core_busy_ticks(stat, 1),
            Some(179249 + 40988 + 1355 + 139)
        );
        assert_eq!(parse_core_busy_ticks(stat, 2), None);
        assert_eq!(parse_core_busy_ticks("cpu0 1 2 3\n", 0), None);
        assert!(core_busy(0).is_ok());
    }

    #[test]
    fn reads_this_process() {
        let time = cpu_time(std::process::id()).unwrap();
        assert!(time.ticks_per_second > 0);
        let later = CpuTime {
            ticks: time.ticks + 150,
            ..time
        };
        assert_eq!(
            later.since(time),
            Duration::from_secs_f64(150.0 / time.ticks_per_second as f64)
        );
        assert_eq!(time.since(later), Duration::ZERO);
    }
}
