//! The server's write system calls, counted with `perf stat` on the
//! kernel's syscall tracepoints, over exactly the window a fan-out
//! measures.
//!
//! ```no_run
//! # async fn run(server_pid: u32) -> push_bench::Result<()> {
//! use push_bench::writes::{self, WriteCounter};
//!
//! writes::check_perf().await?;
//! let mut counter = WriteCounter::attach(server_pid).await?;
//! counter.start().await?;
//! // ... publish, wait for the deliveries ...
//! let writes = counter.stop().await?;
//! println!("{} writes ({} sendto)", writes.total(), writes.sendto);
//! # Ok(()) }
//! ```
//!
//! Four tracepoints are counted, each the entry of a system call that
//! sends bytes: `write` (also what wakes a tokio runtime through its
//! eventfd, and what writes to a pipe such as stdout), `writev` (vectored
//! writes), `sendto` (what a tokio `TcpStream` uses for one buffer: Rust's
//! std sends with `send`, which the C library makes `sendto`) and `sendmsg`.
//! Every one of them made by any thread of the server is counted. A
//! tracepoint costs the traced process almost nothing (a counter bumped in
//! the kernel, no copy, no context switch), unlike `strace`, which stops it
//! at every system call.
//!
//! How: [`WriteCounter::attach`] starts
//! `perf stat -x, -e <the four> -p PID --delay=-1 --control fifo:CTL,ACK`,
//! which attaches to every thread of the server with its counters
//! disabled; [`WriteCounter::start`] writes `enable` to the control FIFO
//! and waits for perf's `ack`, so the counters run from that moment;
//! [`WriteCounter::stop`] writes `disable`, waits for the `ack`, then ends
//! perf with `SIGINT` and reads the counts from the CSV perf prints on its
//! stderr. The window is exact to the `ack`s, whatever perf's own start-up
//! takes.
//!
//! perf must be installed (`apt-get install -y linux-perf` on Debian) and
//! allowed to read tracepoints (root, or `kernel.perf_event_paranoid` at
//! -1 with tracefs readable): [`check_perf`] says which is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// The tracepoints counted, in the order of [`Writes`]'s fields.
pub const EVENTS: [&str; 4] = [
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_sendmsg",
];

/// How long perf may take to attach, to answer a command, or to end.
const PERF_STEP: Duration = Duration::from_secs(10);

/// What to do when perf is missing or refuses.
const INSTALL: &str = "install perf with `apt-get install -y linux-perf` (Debian; \
    `linux-tools-$(uname -r)` on Ubuntu) and run as root, or set \
    `sysctl kernel.perf_event_paranoid=-1` and make /sys/kernel/tracing readable; \
    or leave out --count-writes";

/// Write system calls counted over a window, one count per tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Writes {
    /// `write(2)`.
    pub write: u64,
    /// `writev(2)`.
    pub writev: u64,
    /// `sendto(2)`.
    pub sendto: u64,
    /// `sendmsg(2)`.
    pub sendmsg: u64,
}

impl Writes {
    /// All four.
    pub fn total(&self) -> u64 {
        self.write + self.writev + self.sendto + self.sendmsg
    }

    /// Reads the counts from what `perf stat -x,` printed: one CSV line per
    /// event (`COUNT,UNIT,EVENT,…`), among others (`Events enabled`, …).
    ///
    /// ```
    /// use push_bench::writes::Writes;
    ///
    /// let perf = "Events enabled\n\
    ///             12,,syscalls:sys_enter_write,2044114,100.00,,\n\
    ///             0,,syscalls:sys_enter_writev,2044114,100.00,,\n\
    ///             3000,,syscalls:sys_enter_sendto,2044114,100.00,,\n\
    ///             0,,syscalls:sys_enter_sendmsg,2044114,100.00,,\n";
    /// let writes = Writes::parse_perf_csv(perf).unwrap();
    /// assert_eq!((writes.write, writes.sendto, writes.total()), (12, 3000, 3012));
    /// ```
    ///
    /// # Errors
    ///
    /// When an event's line is missing, or its count is not a number
    /// (`<not counted>`, `<not supported>`); the error quotes perf.
    pub fn parse_perf_csv(text: &str) -> Result<Writes> {
        let count = |event: &str| -> Result<u64> {
            let line = text
                .lines()
                .find(|line| line.split(',').nth(2) == Some(event))
                .ok_or_else(|| {
                    Error::new(format!(
                        "perf printed no count of {event}; it said: {}",
                        text.trim()
                    ))
                })?;
            let count = line.split(',').next().unwrap_or_default();
            count
                .parse()
                .map_err(|_| Error::new(format!("perf did not count {event}: {line:?}; {INSTALL}")))
        };
        Ok(Writes {
            write: count(EVENTS[0])?,
            writev: count(EVENTS[1])?,
            sendto: count(EVENTS[2])?,
            sendmsg: count(EVENTS[3])?,
        })
    }
}

/// Fails unless `perf stat` can count the four tracepoints here: it counts
/// them over `true`.
///
/// # Errors
///
/// When perf is not installed, or cannot count the tracepoints (no
/// permission, no tracefs, or a perf that does not match the kernel); the
/// error quotes perf and says how to install it.
pub async fn check_perf() -> Result<()> {
    let output = perf_command()
        .args(["stat", "-x,", "-e", &EVENTS.join(","), "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .await
        .map_err(|error| not_started(&error))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let said = match stderr.trim() {
            "" => "it printed nothing".to_owned(),
            said => format!("it said: {}", said.replace('\n', " / ")),
        };
        return Err(Error::new(format!(
            "perf cannot count write system calls here ({}; {said}); {INSTALL}",
            output.status
        )));
    }
    Writes::parse_perf_csv(&stderr).map(|_| ())
}

fn perf_command() -> Command {
    let mut command = Command::new("perf");
    // perf's messages in English, whatever the locale, so they can be read.
    command.env("LC_ALL", "C");
    command
}

fn not_started(error: &std::io::Error) -> Error {
    if error.kind() == std::io::ErrorKind::NotFound {
        Error::new(format!(
            "perf is not installed (not on the PATH): {INSTALL}"
        ))
    } else {
        Error::new(format!("cannot start perf: {error}; {INSTALL}"))
    }
}

/// `perf stat` attached to a server, its counters enabled and disabled on
/// command. perf is killed if this is dropped before [`WriteCounter::stop`].
#[derive(Debug)]
pub struct WriteCounter {
    perf: Child,
    stderr: JoinHandle<String>,
    control: pipe::Sender,
    ack: Lines<BufReader<pipe::Receiver>>,
    _fifos: Fifos,
}

impl WriteCounter {
    /// Starts perf on every thread of process `pid`, its counters disabled
    /// until [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// When the control FIFOs cannot be made, or perf cannot be started.
    pub async fn attach(pid: u32) -> Result<Self> {
        let fifos = Fifos::new().await?;
        let control_option = format!("fifo:{},{}", fifos.control.display(), fifos.ack.display());
        let mut perf = perf_command()
            .args(["stat", "-x,", "-e", &EVENTS.join(",")])
            .args(["-p", &pid.to_string(), "--delay=-1", "--control"])
            .arg(control_option)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| not_started(&error))?;
        let mut stderr = perf.stderr.take();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.read_to_string(&mut text).await;
            }
            text
        });
        // Opened for reading and writing, so neither open waits for perf
        // (a FIFO's open for one direction waits for the other end).
        let open_error =
            |error: std::io::Error| Error::new(format!("cannot open perf's control FIFO: {error}"));
        let control = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&fifos.control)
            .map_err(open_error)?;
        let ack = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&fifos.ack)
            .map_err(open_error)?;
        Ok(WriteCounter {
            perf,
            stderr,
            control,
            ack: BufReader::new(ack).lines(),
            _fifos: fifos,
        })
    }

    /// Enables the counters; they run once this returns.
    ///
    /// # Errors
    ///
    /// When perf has exited (it could not attach: the error quotes it) or
    /// does not acknowledge within 10 s.
    pub async fn start(&mut self) -> Result<()> {
        self.command("enable").await
    }

    /// Disables the counters, ends perf and returns what they counted
    /// since [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// When perf has exited early, does not acknowledge or end within 10 s,
    /// or prints no count of an event.
    pub async fn stop(mut self) -> Result<Writes> {
        self.command("disable").await?;
        let pid = self
            .perf
            .id()
            .ok_or_else(|| Error::new("perf exited before it was stopped"))?;
        // SIGINT, on which perf stat prints its counts and exits.
        let interrupted = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .map_err(|error| Error::new(format!("cannot run `kill -INT {pid}`: {error}")))?;
        if !interrupted.success() {
            return Err(Error::new(format!(
                "`kill -INT {pid}` (perf) failed: {interrupted}"
            )));
        }
        tokio::time::timeout(PERF_STEP, self.perf.wait())
            .await
            .map_err(|_| Error::new("perf did not end within 10 s of SIGINT"))?
            .map_err(|error| Error::new(format!("cannot wait for perf: {error}")))?;
        let stderr = tokio::time::timeout(PERF_STEP, &mut self.stderr)
            .await
            .map_err(|_| Error::new("perf's stderr stayed open after it ended"))?
            .unwrap_or_default();
        Writes::parse_perf_csv(&stderr)
    }

    /// Sends `command` to perf and waits for its `ack`.
    async fn command(&mut self, command: &str) -> Result<()> {
        self.control
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|error| Error::new(format!("cannot send `{command}` to perf: {error}")))?;
        let (ack, perf) = (&mut self.ack, &mut self.perf);
        let answer = tokio::time::timeout(PERF_STEP, async {
            tokio::select! {
                line = ack.next_line() => Ok(line),
                status = perf.wait() => Err(status),
            }
        })
        .await;
        match answer {
            // perf writes `ack\n` and the string's NUL, which starts the
            // next line.
            Ok(Ok(Ok(Some(line)))) if line.trim_matches(['\0', ' ', '\r']) == "ack" => Ok(()),
            Ok(Ok(Ok(line))) => Err(Error::new(format!(
                "perf answered `{command}` with {line:?}, not `ack`"
            ))),
            Ok(Ok(Err(error))) => Err(Error::new(format!(
                "cannot read perf's answer to `{command}`: {error}"
            ))),
            Ok(Err(status)) => {
                let status = status.map_or_else(|error| error.to_string(), |s| s.to_string());
                let stderr = tokio::time::timeout(PERF_STEP, &mut self.stderr)
                    .await
                    .ok()
                    .and_then(|text| text.ok())
                    .unwrap_or_default();
                Err(Error::new(format!(
                    "perf ended ({status}) before it acknowledged `{command}`: {}; {INSTALL}",
                    stderr.trim()
                )))
            }
            Err(_) => Err(Error::new(format!(
                "perf did not acknowledge `{command}` within {} s",
                PERF_STEP.as_secs()
            ))),
        }
    }
}

/// perf's control and acknowledgement FIFOs, in a directory of their own
/// that is removed on drop.
#[derive(Debug)]
struct Fifos {
    directory: PathBuf,
    control: PathBuf,
    ack: PathBuf,
}

impl Fifos {
    async fn new() -> Result<Self> {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let directory = std::env::temp_dir().join(format!(
            "push-bench-perf-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&directory)
            .map_err(|error| Error::new(format!("cannot make {}: {error}", directory.display())))?;
        let fifos = Fifos {
            control: directory.join("control"),
            ack: directory.join("ack"),
            directory,
        };
        for fifo in [&fifos.control, &fifos.ack] {
            mkfifo(fifo).await?;
        }
        Ok(fifos)
    }
}

impl Drop for Fifos {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

async fn mkfifo(path: &Path) -> Result<()> {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .await
        .map_err(|error| Error::new(format!("cannot run mkfifo (coreutils): {error}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "mkfifo {} failed: {status}",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_perf_could_not_take_is_an_error() {
        let perf = "<not counted>,,syscalls:sys_enter_write,0,100.00,,\n\
                    0,,syscalls:sys_enter_writev,5,100.00,,\n\
                    0,,syscalls:sys_enter_sendto,5,100.00,,\n\
                    0,,syscalls:sys_enter_sendmsg,5,100.00,,\n";
        let error = Writes::parse_perf_csv(perf).unwrap_err().to_string();
        assert!(
            error.contains("did not count syscalls:sys_enter_write"),
            "{error}"
        );
        let error = Writes::parse_perf_csv("Error: No permission\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("No permission"), "{error}");
    }

    /// Counts the writes of a shell that makes exactly 51 (50 `echo`s to
    /// /dev/null and one line to its stdout) once told to go, and not the
    /// one it made before. Fails where perf cannot count (not installed, or
    /// not allowed): `.ci/run` installs it, and `--count-writes` needs it.
    #[tokio::test]
    async fn counts_the_writes_of_a_window_and_only_those() {
        if let Err(error) = check_perf().await {
            panic!("perf cannot count system calls here: {error}");
        }
        let script = "echo ready; read go; i=0; \
                      while [ $i -lt 50 ]; do echo x >/dev/null; i=$((i+1)); done; \
                      echo done; read end";
        let mut shell = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = shell.stdin.take().unwrap();
        let mut stdout = BufReader::new(shell.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(PERF_STEP, stdout.next_line()).await;
        assert_eq!(ready.unwrap().unwrap().as_deref(), Some("ready"));
        let mut counter = WriteCounter::attach(shell.id().unwrap()).await.unwrap();
        counter.start().await.unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        let done = tokio::time::timeout(PERF_STEP, stdout.next_line()).await;
        assert_eq!(done.unwrap().unwrap().as_deref(), Some("done"));
        let writes = counter.stop().await.unwrap();
        assert_eq!(
            writes,
            Writes {
                write: 51,
                ..Writes::default()
            }
        );
        stdin.write_all(b"end\n").await.unwrap();
        let _ = shell.wait().await;
    }
}
