//! Test harness: the real `ats-mafia` binary on a loopback port, talked to over real HTTP.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key every harness server holds in memory (`ATS_ROOT_KEY`) and every harness request
/// sends: the tests exercise the real authentication on every call.
pub const ROOT_KEY: &str = "test-root-key-0123456789abcdef-0123456789abcdef";

/// An HTTP client that sends [`ROOT_KEY`].
pub fn client() -> reqwest::Client {
    client_with_key(ROOT_KEY)
}

/// An HTTP client that sends `key` as `Authorization: Bearer`.
pub fn client_with_key(key: &str) -> reqwest::Client {
    authorized_with(key).build().expect("an HTTP client")
}

/// A client builder that sends [`ROOT_KEY`] (for clients with their own timeouts).
pub fn authorized() -> reqwest::ClientBuilder {
    authorized_with(ROOT_KEY)
}

fn authorized_with(key: &str) -> reqwest::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().expect("a header value"),
    );
    reqwest::Client::builder().default_headers(headers)
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ats-mafia")
}

/// A command running the binary, with [`ROOT_KEY`] as `ATS_API_KEY` for `--url` commands.
pub fn command() -> Command {
    let mut command = Command::new(binary());
    command.env("ATS_API_KEY", ROOT_KEY);
    command
}

/// A running `ats-mafia serve`.
pub struct Server {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Data directory.
    pub data: PathBuf,
    extra: Vec<String>,
    /// Shell commands run before `exec ats-mafia …` (`ulimit`, `trap`), if any.
    prefix: Option<String>,
    /// File the server's stderr goes to (inherited when `None`).
    stderr: Option<PathBuf>,
    /// Every line the server printed on stdout after "listening on" (the demo key…).
    printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `serve` on a free port over `data`, with extra arguments.
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        let mut server = Self {
            child: None,
            url: String::new(),
            data: data.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            prefix: None,
            stderr: None,
            printed: Default::default(),
        };
        server.spawn();
        server
    }

    /// Starts `serve` as `sh -c "<prefix>; exec ats-mafia serve …"` (a resource limit, a
    /// signal disposition), its stderr written to `stderr`; `restart` runs it the same way.
    /// Returns as soon as the server listens, even while its log is still connecting ("starting
    /// on": only `/healthz` and `/readyz` answer then).
    pub fn start_wrapped(data: &Path, extra: &[&str], prefix: &str, stderr: &Path) -> Self {
        let mut server = Self {
            child: None,
            url: String::new(),
            data: data.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            prefix: Some(prefix.to_owned()),
            stderr: Some(stderr.to_path_buf()),
            printed: Default::default(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = match &self.prefix {
            None => Command::new(binary()),
            Some(prefix) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(binary());
                sh
            }
        };
        let stderr = match &self.stderr {
            None => Stdio::inherit(),
            Some(path) => std::fs::File::create(path)
                .expect("cannot create the stderr file")
                .into(),
        };
        let mut child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--data"])
            .arg(&self.data)
            .args(&self.extra)
            .env("RUST_LOG", "warn")
            .env("ATS_ROOT_KEY", ROOT_KEY)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("cannot start ats-mafia");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("ats-mafia exited before listening")
                .expect("unreadable stdout");
            let early = self
                .prefix
                .is_some()
                .then(|| line.split("starting on ").nth(1));
            if let Some(rest) = line.split("listening on ").nth(1).or(early.flatten()) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .trim_end_matches('/')
                    .to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        let printed = self.printed.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                printed.lock().expect("not poisoned").push(line);
            }
        });
        self.url = url;
        self.child = Some(child);
    }

    /// The first line printed after "listening on" that contains `needle`, waiting for it.
    pub fn printed_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self
                .printed
                .lock()
                .expect("not poisoned")
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the server never printed {needle:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let status = child.wait().expect("wait for ats-mafia");
            assert!(status.success(), "ats-mafia exited with {status}");
        }
    }

    /// Starts again on the same data directory (on a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A URL under the server.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(self.at("/readyz")).await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs a JSON body to `/api/events`; returns status and JSON answer.
    pub async fn post_events(&self, body: &Value) -> (u16, Value) {
        self.post_raw(
            body.to_string().into_bytes(),
            "application/cloudevents-batch+json",
        )
        .await
    }

    /// POSTs raw bytes to `/api/events`.
    pub async fn post_raw(&self, body: Vec<u8>, content_type: &str) -> (u16, Value) {
        let r = client()
            .post(self.at("/api/events"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST /api/events");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GETs a JSON document.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = client().get(self.at(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GETs a JSON document that must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// GETs a text document (CSV, HTML, metrics) that must answer 200.
    pub async fn get_text(&self, path: &str) -> String {
        let r = client().get(self.at(path)).send().await.expect("GET");
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.expect("a text body")
    }

    /// POSTs a JSON body to any endpoint; returns status and JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = client()
            .post(self.at(path))
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The log head as the server reports it.
    pub async fn head(&self) -> u64 {
        let (_, body) = self.get("/api/admin/projectors").await;
        body["projectors"][0]["head"].as_u64().unwrap_or(0).max(
            reqwest::get(self.at("/readyz"))
                .await
                .expect("readyz")
                .json::<Value>()
                .await
                .expect("json")["log"]["head"]
                .as_u64()
                .unwrap_or(0),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The highest log position of a receipt (what `min_position` takes to read those writes).
pub fn last_position(receipt: &Value) -> u64 {
    receipt["positions"]
        .as_array()
        .expect("a receipt with positions")
        .iter()
        .filter_map(Value::as_u64)
        .max()
        .expect("at least one position")
}

/// A completed session as a CloudEvent.
pub fn session(op: &str, n: u32, score: f64, skills: &[&str]) -> Value {
    let start = format!("2026-11-{:02}T08:00:00Z", 1 + n % 27);
    let end = format!("2026-11-{:02}T10:00:00Z", 1 + n % 27);
    json!({
        "specversion": "1.0", "id": format!("{op}-sess-{n}-done"), "type": "ats.session.completed",
        "source": "orchestrator", "time": end, "subject": op,
        "data": {"session_id": format!("{op}-sess-{n}"), "operator_id": op, "scenario_id": "pentest_001",
                 "start_time": start, "end_time": end, "duration_seconds": 7200, "success": score >= 0.6,
                 "score": score, "cost": 2.5, "skills_practiced": skills,
                 "objectives_completed": 8, "objectives_total": 10,
                 "metrics": [{"metric_type": "stealth_rating", "value": 0.7}]}
    })
}

/// An operator registration as a CloudEvent.
pub fn registered(op: &str, name: &str) -> Value {
    json!({"specversion": "1.0", "id": format!("{op}-registered"), "type": "ats.operator.registered",
           "source": "orchestrator", "time": "2026-10-01T00:00:00Z", "subject": op,
           "data": {"operator_id": op, "name": name, "team": "red"}})
}

/// Runs `command` and returns its stdout; the test fails with its stderr if it fails.
#[track_caller]
pub fn stdout_of(command: &mut Command) -> String {
    let output = command.output().expect("cannot run the command");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the binary with `args` over the data directory `data`: success, stdout, stderr.
pub fn run_cli(args: &[&str], data: &Path) -> (bool, String, String) {
    let output = command()
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("cannot run ats-mafia");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts a refusal: `status` is `expected`, and the answer's message names the field
/// first (`"as_of: …"`, `"events[3].data.score: …"`), as every 4xx of the API does.
#[track_caller]
pub fn assert_refused(status: u16, answer: &Value, expected: u16, field: &str) {
    assert_eq!(status, expected, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(field),
        "the message should start with {field:?}: {answer}"
    );
}

/// Requests `body` on the NATS intake (`ats.intake.orchestrator`), as an orchestrator does,
/// and returns the answer: the receipt, or `{"error", "message"}`.
pub async fn intake_request(client: &async_nats::Client, body: &Value) -> Value {
    let body = serde_json::to_vec(body).expect("a JSON body");
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("ats.intake.orchestrator", body.into()),
    )
    .await
    .expect("the intake answers within 10 s")
    .expect("the intake answers");
    serde_json::from_slice(&reply.payload).expect("a JSON answer")
}
