//! Child processes pinned to one core with `taskset`.
//!
//! ```no_run
//! # async fn run() -> push_bench::Result<()> {
//! use std::time::Duration;
//! use push_bench::child::PinnedChild;
//! use push_bench::server::parse_listening_line;
//!
//! let mut server = PinnedChild::spawn("push", 0, "target/release/push-server".as_ref(), &[
//!     "--listen".into(),
//!     "127.0.0.1:0".into(),
//! ])?;
//! let address = server
//!     .wait_for_line("the address it listens on", Duration::from_secs(10), parse_listening_line)
//!     .await?;
//! let memory = push_bench::proc::memory(server.pid())?;
//! server.stop().await?;
//! # Ok(()) }
//! ```
//!
//! The benchmark runs the server and the load generator on separate cores
//! so neither takes CPU from the other. `taskset` executes the program in
//! its own process, so the child's pid is the program's pid and
//! `/proc/PID` describes the program.
//!
//! A child's stderr is this process's stderr, so its errors show as they
//! happen. Its stdout is read line by line: [`PinnedChild::wait_for_line`]
//! looks there for what it announces, and every other line goes to stderr
//! prefixed with the child's name (so the report on stdout stays clean).
//! A child is killed if it is dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{Error, Result};

/// A running child process pinned to one core.
#[derive(Debug)]
pub struct PinnedChild {
    name: String,
    pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl PinnedChild {
    /// Starts `program` with `args` pinned to `core`, named `name` in
    /// messages. Its stdin is a pipe that stays open until it is stopped.
    ///
    /// # Errors
    ///
    /// When `taskset` is not on the `PATH`, or the process cannot be
    /// started.
    pub fn spawn(name: &str, core: usize, program: &Path, args: &[String]) -> Result<Self> {
        let taskset = taskset()?;
        let mut child = Command::new(&taskset)
            .arg("-c")
            .arg(core.to_string())
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                Error::new(format!(
                    "cannot start {name} ({} -c {core} {}): {error}",
                    taskset.display(),
                    program.display()
                ))
            })?;
        let pid = child
            .id()
            .ok_or_else(|| Error::new(format!("{name} exited as it started")))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .map(|stdout| BufReader::new(stdout).lines());
        Ok(PinnedChild {
            name: name.to_owned(),
            pid,
            child,
            stdin,
            stdout,
        })
    }

    /// Its name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id (the program's, since `taskset` executes it in place).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads its stdout until `parse` recognizes a line, and returns what
    /// `parse` made of it. Lines before it go to stderr. Once it returns,
    /// the rest of its stdout goes to stderr as it comes.
    ///
    /// `what` says what is awaited, in messages.
    ///
    /// # Errors
    ///
    /// When no line is recognized within `within`, when the child closes its
    /// stdout first (it has exited: the error gives its exit status), or
    /// when its stdout cannot be read or has already been handed on.
    pub async fn wait_for_line<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let name = self.name.clone();
        let Some(mut lines) = self.stdout.take() else {
            return Err(Error::new(format!(
                "the stdout of {name} has already been handed on"
            )));
        };
        let found = tokio::time::timeout(within, async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => match parse(&line) {
                        Some(found) => return Ok(found),
                        None => eprintln!("[{name}] {line}"),
                    },
                    Ok(None) => return Err(None),
                    Err(error) => return Err(Some(error)),
                }
            }
        })
        .await;
        match found {
            Ok(Ok(found)) => {
                tokio::spawn(forward(name, lines));
                Ok(found)
            }
            Ok(Err(None)) => {
                let status = self.exit_status(Duration::from_secs(5)).await;
                Err(Error::new(format!(
                    "{name} closed its stdout before printing {what}; it {status} \
                     (its stderr is above)"
                )))
            }
            Ok(Err(Some(error))) => Err(Error::new(format!(
                "cannot read the stdout of {name}: {error}"
            ))),
            Err(_) => Err(Error::new(format!(
                "{name} did not print {what} within {} s",
                within.as_secs_f64()
            ))),
        }
    }

    /// Fails if it has exited.
    ///
    /// # Errors
    ///
    /// When it has exited (the error gives its exit status), or its state
    /// cannot be read.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::new(format!(
                "{} exited early: {}",
                self.name,
                describe(status)
            ))),
            Err(error) => Err(Error::new(format!(
                "cannot check whether {} is running: {error}",
                self.name
            ))),
        }
    }

    /// Kills it (`SIGKILL`) and waits for it to end.
    ///
    /// # Errors
    ///
    /// When it cannot be killed or waited for.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        self.child
            .kill()
            .await
            .map_err(|error| Error::new(format!("cannot stop {}: {error}", self.name)))
    }

    /// Waits at most `within` for it to exit on its own, after something
    /// asked it to (a signal).
    ///
    /// # Errors
    ///
    /// When it exits with a failure status, cannot be waited for, or is
    /// still running after `within` (it is then killed).
    pub async fn wait(mut self, within: Duration) -> Result<()> {
        drop(self.stdin.take());
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(Error::new(format!("{} {}", self.name, describe(status)))),
            Ok(Err(error)) => Err(Error::new(format!(
                "cannot wait for {} to exit: {error}",
                self.name
            ))),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(Error::new(format!(
                    "{} was still running {} s after it was asked to exit; it was killed",
                    self.name,
                    within.as_secs()
                )))
            }
        }
    }

    /// How it ended, waiting at most `within` for it to end.
    async fn exit_status(&mut self, within: Duration) -> String {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => describe(status),
            Ok(Err(error)) => format!("could not be waited for ({error})"),
            Err(_) => format!("is still running after {} s", within.as_secs()),
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("was ended by a signal ({status})"),
    }
}

/// The rest of a child's stdout to stderr, line by line.
async fn forward(name: String, mut lines: Lines<BufReader<ChildStdout>>) {
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[{name}] {line}");
    }
}

/// Where `taskset` is.
///
/// # Errors
///
/// When it is not on the `PATH`.
pub fn taskset() -> Result<PathBuf> {
    on_path("taskset").ok_or_else(|| {
        Error::new(
            "taskset is not on the PATH: install util-linux (`apt-get install util-linux`); \
                 the benchmark pins the server and the load generator to separate cores with it",
        )
    })
}

/// Where `program` is on the `PATH`, if it is.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
}
