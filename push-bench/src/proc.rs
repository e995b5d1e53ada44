//! Readings from `/proc`: a process's resident memory and this process's
//! open-file limit.
//!
//! ```
//! use push_bench::proc::{parse_status, Memory};
//!
//! let status = "Name:\tpush-server\nVmHWM:\t   9120 kB\nVmRSS:\t   8704 kB\n";
//! assert_eq!(
//!     parse_status(status),
//!     Some(Memory { rss_kib: 8704, hwm_kib: 9120 })
//! );
//! ```
//!
//! Resident memory counts the pages of the process that are in RAM: heap,
//! stacks, mapped code. Memory the kernel holds for sockets (send and
//! receive queues) is not in it.

use crate::{Error, Result};

/// The resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident set size now, in KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the highest resident set size so far, in KiB.
    pub hwm_kib: u64,
}

/// Reads the resident memory of process `pid`.
///
/// # Errors
///
/// When `/proc/PID/status` cannot be read (the process has exited, or this
/// is not Linux) or lacks `VmRSS` or `VmHWM` (a kernel thread, a zombie).
pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|error| Error::new(format!("cannot read {path}: {error}")))?;
    parse_status(&status).ok_or_else(|| {
        Error::new(format!(
            "{path} has no VmRSS or VmHWM line: has process {pid} exited?"
        ))
    })
}

/// Reads `VmRSS` and `VmHWM` from the text of a `/proc/PID/status` file.
///
/// Returns `None` when either line is missing or is not a number of `kB`.
pub fn parse_status(status: &str) -> Option<Memory> {
    Some(Memory {
        rss_kib: kib_field(status, "VmRSS")?,
        hwm_kib: kib_field(status, "VmHWM")?,
    })
}

/// The value of a `Name:   123 kB` line.
fn kib_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        let mut words = value.split_whitespace();
        let number = words.next()?.parse().ok()?;
        (words.next() == Some("kB") && words.next().is_none()).then_some(number)
    })
}

/// The soft limit on open files of this process (what `ulimit -n` shows),
/// which the children it starts inherit. `u64::MAX` when unlimited.
///
/// # Errors
///
/// When `/proc/self/limits` cannot be read or has no `Max open files` line.
pub fn open_files_limit() -> Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|error| Error::new(format!("cannot read /proc/self/limits: {error}")))?;
    parse_open_files_limit(&limits)
        .ok_or_else(|| Error::new("/proc/self/limits has no readable `Max open files` line"))
}

/// Reads the soft limit from the `Max open files` line of a
/// `/proc/PID/limits` file. `u64::MAX` when unlimited.
pub fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    match line.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tpush-server\n\
        Umask:\t0022\n\
        State:\tS (sleeping)\n\
        VmPeak:\t  812744 kB\n\
        VmSize:\t  812744 kB\n\
        VmHWM:\t   91200 kB\n\
        VmRSS:\t   87040 kB\n\
        RssAnon:\t   80000 kB\n\
        Threads:\t2\n";

    #[test]
    fn reads_rss_and_high_water_mark() {
        assert_eq!(
            parse_status(STATUS),
            Some(Memory {
                rss_kib: 87040,
                hwm_kib: 91200
            })
        );
    }

    #[test]
    fn a_missing_or_odd_line_is_none() {
        assert_eq!(parse_status("Name:\tx\nVmRSS:\t 10 kB\n"), None);
        assert_eq!(parse_status("VmHWM:\t 10 kB\nVmRSS:\t 10 MB\n"), None);
        assert_eq!(parse_status("VmHWM:\t 10 kB\nVmRSS:\t ten kB\n"), None);
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn does_not_take_a_longer_name_for_a_shorter_one() {
        // `VmRSSx` is not `VmRSS`.
        let status = "VmRSSx:\t 1 kB\nVmRSS:\t 2 kB\nVmHWM:\t 3 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 2,
                hwm_kib: 3
            })
        );
    }

    #[test]
    fn reads_the_soft_open_files_limit() {
        let limits =
            "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max cpu time              unlimited            unlimited            seconds   \n\
            Max open files            20000                40000                files     \n";
        assert_eq!(parse_open_files_limit(limits), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), Some(u64::MAX));
        assert_eq!(
            parse_open_files_limit("Max processes 10 10 processes\n"),
            None
        );
    }
}
