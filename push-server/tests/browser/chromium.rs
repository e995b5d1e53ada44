//! Headless Chromium driven over the DevTools protocol: a page to navigate,
//! script to evaluate (awaiting promises), and screenshots.
//!
//! The browser is Debian's `chromium` (or `$CHROMIUM`). When it cannot be
//! started the test fails saying so: these tests are never skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// A headless Chromium, killed (and its profile removed) on drop.
pub(crate) struct Browser {
    child: Child,
    profile: PathBuf,
    connection: Arc<Connection>,
}

struct Connection {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
}

/// One tab.
pub(crate) struct Page {
    connection: Arc<Connection>,
    session: String,
}

impl Browser {
    /// Starts Chromium with an empty profile and connects to it.
    ///
    /// # Panics
    ///
    /// When Chromium is missing or does not start within 30 s.
    pub(crate) async fn launch() -> Browser {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
        let profile = std::env::temp_dir().join(format!(
            "push-chromium-{}-{}",
            std::process::id(),
            NEXT_PROFILE.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start Chromium ({binary}: {error}); install Debian's chromium \
                     (apt-get install -y chromium), as .ci/run does, or set CHROMIUM to its path"
                )
            });
        // Chromium prints the DevTools address on stderr; the rest of its
        // stderr is drained so it never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if let Some(found) = found.take() {
                        let _ = found.send(url.trim().to_owned());
                    }
                }
            }
        });
        let url = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "Chromium ({binary}) did not start its DevTools endpoint within 30 s \
                     (exit: {status:?}); install Debian's chromium, as .ci/run does"
                );
            }
        };
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to Chromium's DevTools socket");
        let (mut write, mut read) = socket.split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = to_send.recv().await {
                if write.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let answers = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = read.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if let Some(id) = value["id"].as_u64() {
                    let result = match value.get("error") {
                        Some(error) => Err(error.to_string()),
                        None => Ok(value["result"].clone()),
                    };
                    if let Some(answer) = answers.lock().unwrap().remove(&id) {
                        let _ = answer.send(result);
                    }
                } else {
                    log_event(&value);
                }
            }
        });
        Browser {
            child,
            profile,
            connection: Arc::new(Connection {
                outgoing,
                pending,
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// A new tab showing `url`, its viewport 1280×800.
    pub(crate) async fn page(&self, url: &str) -> Page {
        let target = self
            .connection
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await
            .unwrap();
        let attached = self
            .connection
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await
            .unwrap();
        let page = Page {
            connection: self.connection.clone(),
            session: attached["sessionId"].as_str().unwrap().to_owned(),
        };
        page.call("Runtime.enable", json!({})).await;
        page.call("Page.enable", json!({})).await;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        page.navigate(url).await;
        page
    }
}

static NEXT_PROFILE: AtomicU64 = AtomicU64::new(0);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// What the page says on its console, and what it throws, goes to the
/// test's output: it is what explains a failure.
fn log_event(value: &Value) {
    match value["method"].as_str() {
        Some("Runtime.consoleAPICalled") => {
            let args: Vec<String> = value["params"]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|arg| match &arg["value"] {
                    Value::String(text) => text.clone(),
                    Value::Null => arg["description"].as_str().unwrap_or("").to_owned(),
                    other => other.to_string(),
                })
                .collect();
            eprintln!(
                "[page console.{}] {}",
                value["params"]["type"].as_str().unwrap_or("log"),
                args.join(" ")
            );
        }
        Some("Runtime.exceptionThrown") => {
            eprintln!(
                "[page exception] {}",
                value["params"]["exceptionDetails"]["exception"]["description"]
            );
        }
        _ => {}
    }
}

impl Connection {
    async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let (answer, answered) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, answer);
        self.outgoing
            .send(command.to_string())
            .map_err(|_| "Chromium's DevTools socket closed".to_owned())?;
        tokio::time::timeout(Duration::from_secs(60), answered)
            .await
            .map_err(|_| format!("{method}: no answer from Chromium in 60 s"))?
            .map_err(|_| "Chromium's DevTools socket closed".to_owned())?
    }
}

impl Page {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.connection
            .call(Some(&self.session), method, params)
            .await
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// Loads `url` and waits for its load to complete.
    pub(crate) async fn navigate(&self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")
            .await;
    }

    /// Evaluates `expression` (awaiting it if it is a promise) and returns
    /// its value as JSON.
    pub(crate) async fn try_eval(&self, expression: &str) -> Result<Value, String> {
        let answer = self
            .connection
            .call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            return Err(details["exception"]["description"]
                .as_str()
                .map_or_else(|| details.to_string(), str::to_owned));
        }
        Ok(answer["result"]["value"].clone())
    }

    /// As [`Page::try_eval`].
    ///
    /// # Panics
    ///
    /// When the script throws.
    pub(crate) async fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|error| panic!("{expression}\nthrew: {error}"))
    }

    /// Waits until `expression` is truthy, up to 30 s.
    ///
    /// # Panics
    ///
    /// When it is not by then, showing its last value or error.
    pub(crate) async fn wait_for(&self, expression: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.try_eval(expression).await;
            match &value {
                Ok(Value::Null | Value::Bool(false)) | Err(_) => {}
                Ok(Value::Number(n)) if n.as_f64() == Some(0.0) => {}
                Ok(Value::String(s)) if s.is_empty() => {}
                Ok(value) => return value.clone(),
            }
            if tokio::time::Instant::now() > deadline {
                panic!("waited 30 s for {expression}; last: {value:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the viewport to `path`.
    pub(crate) async fn screenshot(&self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}
