//! Test support: a real `nats-server -js` on a free loopback port with a temporary store.
//! Used by the tests of every crate that talks to JetStream; never mocks anything.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server -js`, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    // Binding port 0 asks the kernel for a free port; it is released when the listener drops.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl NatsServer {
    /// Starts a server; panics with a clear message when `nats-server` is not installed.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `nats-server` arguments (`--tls …`, `--user …`).
    pub fn start_with(extra: &[&str]) -> Self {
        let store = tempfile::tempdir().expect("cannot create a temporary store dir");
        let mut server = Self {
            child: None,
            port: free_port(),
            store,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    /// A server with a port and a store that is not running yet ([`NatsServer::restart`]
    /// starts it): for tests of an engine started before its NATS server.
    pub fn stopped() -> Self {
        Self {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().expect("cannot create a temporary store dir"),
            extra: Vec::new(),
        }
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nats-server: install it (apt-get install -y nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A JetStream log on this server (`config.url` is set here) with a node's id index in
    /// `index_dir`, as `serve` opens it. Panics when it cannot connect.
    pub async fn log(
        &self,
        config: crate::jetstream::JetStreamConfig,
        index_dir: &std::path::Path,
    ) -> crate::jetstream::JetStreamLog {
        let config = crate::jetstream::JetStreamConfig {
            url: self.url(),
            ..config
        };
        let index = crate::id_index::IdIndex::open(&index_dir.join("ids.redb"))
            .expect("cannot open the id index");
        crate::jetstream::JetStreamLog::connect(config, std::sync::Arc::new(index))
            .await
            .expect("cannot connect to nats-server")
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    /// Kills the server (SIGKILL: no orderly shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
