//! The push-server binary as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Starts push-server listening on a port of its own with `args`; returns
/// it, the rest of its stdout, and the URL its first line gives.
pub(crate) fn start(args: &[&str]) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_push-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("push-server starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("push-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, stdout, url)
}

/// A push-server started by [`start`] that is killed when dropped. Its
/// stdout is held open, since the server keeps writing to it.
pub(crate) struct Running {
    pub(crate) child: Child,
    /// The URL the server printed, `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    _stdout: BufReader<ChildStdout>,
}

#[allow(dead_code)] // Each test crate uses some of it.
impl Running {
    /// Starts push-server with `args`.
    pub(crate) fn start(args: &[&str]) -> Self {
        let (child, stdout, url) = start(args);
        Running {
            child,
            url,
            _stdout: stdout,
        }
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        let authority = self.url.strip_prefix("http://").unwrap_or(&self.url);
        authority.parse().expect("push-server printed host:port")
    }

    /// Fails if the process has exited.
    pub(crate) fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "push-server exited"
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs push-server on a port of its own with `args` until it exits, as it
/// does at once when refusing its flags; returns its exit code and stderr.
#[allow(dead_code)] // Not every test crate runs one.
pub(crate) fn exit_of(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_push-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("push-server runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}
