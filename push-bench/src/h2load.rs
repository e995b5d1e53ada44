//! `h2load`, nghttp2's HTTP/2 load generator, run as a child process pinned
//! to one core, and its summary read back.
//!
//! ```
//! use push_bench::h2load::parse_summary;
//!
//! let output = "finished in 270.41ms, 73960.94 req/s, 22.36MB/s\n\
//!     requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored, 0 timeout\n\
//!     status codes: 20000 2xx, 0 3xx, 0 4xx, 0 5xx\n";
//! let summary = parse_summary(output).unwrap();
//! assert_eq!(summary.succeeded, 20000);
//! assert_eq!(summary.requests_per_second, 73960.94);
//! ```
//!
//! `h2load` speaks h2c with prior knowledge to `http://` URLs, which is
//! what push-server serves.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::{child, Error, Result};

/// A run of `h2load`.
#[derive(Debug, Clone)]
pub struct H2loadOptions {
    /// The `http://` URL every request asks for.
    pub url: String,
    /// Requests in all (`-n`).
    pub requests: u64,
    /// Connections (`-c`).
    pub clients: u32,
    /// Streams in flight per connection (`-m`).
    pub streams_per_client: u32,
    /// The core it runs on.
    pub core: usize,
    /// It is killed, and the run fails, if it has not finished by then.
    pub within: Duration,
}

/// What `h2load` printed at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct H2loadSummary {
    /// Requests that got a response.
    pub succeeded: u64,
    /// Requests that failed, errored or timed out.
    pub failed: u64,
    /// Responses with a `2xx` status.
    pub status_2xx: u64,
    /// Requests per second over the run, as `h2load` computes it.
    pub requests_per_second: f64,
}

/// Where `h2load` is.
///
/// # Errors
///
/// When it is not on the `PATH`.
pub fn h2load() -> Result<PathBuf> {
    crate::child::on_path("h2load").ok_or_else(|| {
        Error::new(
            "h2load is not on the PATH: install nghttp2-client \
                 (`sudo apt-get install -y nghttp2-client`)",
        )
    })
}

/// Runs `h2load` as `options` say and checks that every request got a
/// `2xx`.
///
/// # Errors
///
/// When `taskset` or `h2load` is missing, it cannot be started, it does
/// not finish within `options.within`, it fails, its summary cannot be
/// read, or not every request succeeded with a `2xx` (the error quotes its
/// output).
pub async fn run(options: &H2loadOptions) -> Result<H2loadSummary> {
    let taskset = child::taskset()?;
    let h2load = h2load()?;
    let mut command = Command::new(&taskset);
    command
        .arg("-c")
        .arg(options.core.to_string())
        .arg(&h2load)
        .arg("-n")
        .arg(options.requests.to_string())
        .arg("-c")
        .arg(options.clients.to_string())
        .arg("-m")
        .arg(options.streams_per_client.to_string())
        .arg(&options.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = format!(
        "h2load -n {} -c {} -m {} {}",
        options.requests, options.clients, options.streams_per_client, options.url
    );
    let child = command
        .spawn()
        .map_err(|error| Error::new(format!("cannot start `{shown}`: {error}")))?;
    let output = tokio::time::timeout(options.within, child.wait_with_output())
        .await
        .map_err(|_| {
            Error::new(format!(
                "`{shown}` did not finish within {} s; give it longer with --within-secs \
                 or fewer requests",
                options.within.as_secs_f64()
            ))
        })?
        .map_err(|error| Error::new(format!("cannot wait for `{shown}`: {error}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed = || {
        format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        )
    };
    if !output.status.success() {
        return Err(Error::new(format!(
            "`{shown}` failed ({}):\n{}",
            output.status,
            printed()
        )));
    }
    let summary = parse_summary(&stdout).ok_or_else(|| {
        Error::new(format!(
            "cannot read the summary of `{shown}`:\n{}",
            printed()
        ))
    })?;
    if summary.failed > 0
        || summary.succeeded != options.requests
        || summary.status_2xx != options.requests
    {
        return Err(Error::new(format!(
            "not every request of `{shown}` succeeded with a 2xx:\n{}",
            printed()
        )));
    }
    Ok(summary)
}

/// Reads the `finished in`, `requests:` and `status codes:` lines of
/// `h2load`'s output. `None` when one is missing or unreadable.
pub fn parse_summary(output: &str) -> Option<H2loadSummary> {
    let line = |prefix: &str| {
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
    };
    // `finished in 270.41ms, 73960.94 req/s, 22.36MB/s`
    let requests_per_second = line("finished in ")?
        .split(", ")
        .find_map(|part| part.strip_suffix(" req/s"))?
        .parse()
        .ok()?;
    // `requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, …`
    let requests = counts(line("requests: ")?)?;
    // `status codes: 20000 2xx, 0 3xx, 0 4xx, 0 5xx`
    let statuses = counts(line("status codes: ")?)?;
    let count = |counts: &[(u64, &str)], name: &str| {
        counts
            .iter()
            .find(|(_, label)| *label == name)
            .map(|(count, _)| *count)
    };
    Some(H2loadSummary {
        succeeded: count(&requests, "succeeded")?,
        failed: count(&requests, "failed")?
            + count(&requests, "errored")?
            + count(&requests, "timeout").unwrap_or(0),
        status_2xx: count(&statuses, "2xx")?,
        requests_per_second,
    })
}

/// `20000 total, 0 failed` → `[(20000, "total"), (0, "failed")]`.
fn counts(line: &str) -> Option<Vec<(u64, &str)>> {
    line.split(", ")
        .map(|part| {
            let (count, label) = part.trim().split_once(' ')?;
            Some((count.parse().ok()?, label))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "starting benchmark...\n\
        spawning thread #0: 10 total client(s). 20000 total requests\n\
        Application protocol: h2c\n\
        progress: 100% done\n\
        \n\
        finished in 270.41ms, 73960.94 req/s, 22.36MB/s\n\
        requests: 20000 total, 20000 started, 20000 done, 19990 succeeded, 10 failed, 0 errored, 0 timeout\n\
        status codes: 19990 2xx, 0 3xx, 0 4xx, 0 5xx\n\
        traffic: 6.05MB (6340970) total, 176.19KB (180420) headers (space savings 91.72%), 4.33MB (4540000) data\n";

    #[test]
    fn reads_the_summary() {
        assert_eq!(
            parse_summary(OUTPUT),
            Some(H2loadSummary {
                succeeded: 19990,
                failed: 10,
                status_2xx: 19990,
                requests_per_second: 73960.94,
            })
        );
    }

    #[test]
    fn a_missing_line_is_none() {
        let without_statuses: String = OUTPUT
            .lines()
            .filter(|line| !line.starts_with("status codes"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(parse_summary(&without_statuses), None);
        assert_eq!(parse_summary(""), None);
    }
}
