//! A secured NATS (issue 9): the engine reaches a nats-server that requires TLS (a CA made by
//! this test with openssl) and a user and password, through `log.tls_ca` and the URL; without
//! the CA, or with a wrong password, it stays live but not ready and says why.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ats_ingest::testkit::NatsServer;
use common::{intake_request, session, Server};
use serde_json::Value;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for this test (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=ats-test-ca",
            "-days",
            "2",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

fn config(dir: &Path, name: &str, url: &str, ca: Option<&Path>) -> PathBuf {
    let mut text = format!("log:\n  backend: nats\n  url: {url}\n  stream: ATS_SECURE\n");
    if let Some(ca) = ca {
        text.push_str(&format!("  tls_ca: {}\n", ca.display()));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `/readyz` stays 503 and names the NATS error.
async fn not_ready_saying_why(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = common::client()
            .get(server.at("/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        let why = body["log"]["error"].as_str().unwrap_or_default().to_owned();
        if why.contains("connecting to NATS") {
            assert!(!why.contains("s3cret"), "the password leaked: {why}");
            return why;
        }
        assert!(Instant::now() < deadline, "readyz never said why: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_uses_tls_and_credentials_and_says_why_it_cannot_connect_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let nats = NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        cert.to_str().unwrap(),
        "--tlskey",
        key.to_str().unwrap(),
        "--user",
        "ats",
        "--pass",
        "s3cret",
    ]);
    let port = nats.url().rsplit(':').next().unwrap().to_owned();
    let good_url = format!("nats://ats:s3cret@127.0.0.1:{port}");

    // Trusting the test CA, with the right password: events go in and come out.
    let secured = config(dir.path(), "secured.yaml", &good_url, Some(&ca));
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", secured.to_str().unwrap()],
    );
    server.ready().await;
    let (status, receipt) = server
        .post_events(&serde_json::json!([session("op_tls", 1, 0.8, &["recon"])]))
        .await;
    assert_eq!(status, 200, "{receipt}");
    let position = receipt["positions"][0].as_u64().unwrap();
    let perf = server
        .get_ok(&format!(
            "/api/analytics/operator/op_tls/performance?min_position={position}"
        ))
        .await;
    assert_eq!(perf["profile"]["total_sessions"], 1);

    // The NATS intake is secured the same way.
    let orchestrator = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .user_and_password("ats".into(), "s3cret".into())
        .connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let receipt = intake_request(
        &orchestrator,
        &serde_json::json!([session("op_tls", 2, 0.6, &["recon"])]),
    )
    .await;
    let position = receipt["positions"][0].as_u64().expect("a position");
    let perf = server
        .get_ok(&format!(
            "/api/analytics/operator/op_tls/performance?min_position={position}"
        ))
        .await;
    assert_eq!(perf["profile"]["total_sessions"], 2);
    drop(server);

    // Without the CA the server's certificate is not trusted.
    let untrusted = config(dir.path(), "untrusted.yaml", &good_url, None);
    let server = Server::start_wrapped(
        &dir.path().join("data-untrusted"),
        &["--config", untrusted.to_str().unwrap()],
        "true",
        &dir.path().join("untrusted.stderr"),
    );
    let why = not_ready_saying_why(&server).await;
    println!("without the CA: {why}");
    drop(server);

    // A wrong password is refused by the server.
    let wrong = config(
        dir.path(),
        "wrong.yaml",
        &format!("nats://ats:wrong@127.0.0.1:{port}"),
        Some(&ca),
    );
    let server = Server::start_wrapped(
        &dir.path().join("data-wrong"),
        &["--config", wrong.to_str().unwrap()],
        "true",
        &dir.path().join("wrong.stderr"),
    );
    let why = not_ready_saying_why(&server).await;
    println!("with a wrong password: {why}");
}
