//! A Redis of the test's own: `redis-server` from `PATH` on a free loopback
//! port, persistence off, stopped when dropped.

#![allow(dead_code)] // Each test file uses part of it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use push_redis::{RedisChannels, RedisConfig};

/// A running `redis-server`.
pub(crate) struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not on `PATH` (install Debian's `redis-server`)
    /// or does not answer within 10 s.
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("push-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start redis-server ({error}): the Redis tests need it on PATH; install Debian's redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ping().is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> redis::RedisResult<()> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_millis(200))?;
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .map(|_| ())
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it, saving its data first if `keep_data` (so that
    /// [`RedisServer::restart`] loads it), or losing it.
    pub(crate) fn stop(&mut self, keep_data: bool) {
        if let Ok(client) = redis::Client::open(self.url()) {
            if let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(1)) {
                let how = if keep_data { "SAVE" } else { "NOSAVE" };
                let _: redis::RedisResult<()> =
                    redis::cmd("SHUTDOWN").arg(how).query(&mut connection);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !keep_data {
            let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        }
    }

    /// Starts it again on the same port, with what [`RedisServer::stop`]
    /// kept.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A source on `redis` with the conformance suite's limits.
pub(crate) async fn channels(redis: &RedisServer) -> RedisChannels {
    channels_with(redis, RedisConfig::default()).await
}

pub(crate) async fn channels_with(redis: &RedisServer, config: RedisConfig) -> RedisChannels {
    RedisChannels::connect(
        &redis.url(),
        RedisConfig {
            limits: conformance::runner::suite_limits(),
            ..config
        },
    )
    .await
    .unwrap()
}
