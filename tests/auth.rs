//! API keys end to end (issue 9): every route of the router needs its scope, keys are created
//! and revoked through the API and the CLI, rate limits are per key, and `--insecure-no-auth`
//! is loopback only. The real binary over TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use ats_events::Scope;
use ats_query_api::auth::Access;
use common::{assert_refused, client, client_with_key, run_cli, Server};
use serde_json::{json, Value};

/// Creates a key through the API with the root key; returns the key.
async fn create_key(server: &Server, name: &str, scopes: &[&str], limit: Option<u32>) -> String {
    let (status, body) = server
        .post_json(
            "/api/admin/keys",
            &json!({"name": name, "scopes": scopes, "rate_limit_per_minute": limit}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

/// `{id}`, `{*model}` … filled in with a value that exists nowhere.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "nothing-here"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(http: &reqwest::Client, server: &Server, method: &str, path: &str) -> (u16, Value) {
    let url = server.at(&concrete(path));
    let request = match method {
        "GET" => http.get(url),
        "POST" => http.post(url).json(&json!({})),
        "DELETE" => http.delete(url),
        other => panic!("no test request for {other} {path}"),
    };
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_401_without_a_key_and_403_without_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let mut keys = Vec::new();
    for scope in Scope::ALL {
        let key = create_key(&server, scope.as_str(), &[scope.as_str()], None).await;
        keys.push((scope, client_with_key(&key)));
    }
    let anonymous = reqwest::Client::new();
    // The router's own table: a route added without an access cannot exist.
    let table = ats_query_api::route_table();
    assert!(table.len() > 50, "{} routes", table.len());
    let mut checked = 0;
    for route in &table {
        let method = route.method.as_str();
        let (status, body) = call(&anonymous, &server, method, route.path).await;
        match route.access {
            Access::Public => {
                assert!(
                    ![401, 403].contains(&status),
                    "{method} {} is public but answered {status}: {body}",
                    route.path
                );
            }
            Access::Scope(needed) => {
                assert_eq!(status, 401, "{method} {} without a key: {body}", route.path);
                assert_eq!(body["error"], "unauthorized");
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("`{}` scope", needed.as_str())),
                    "{body}"
                );
                for (scope, http) in &keys {
                    let (status, body) = call(http, &server, method, route.path).await;
                    if *scope == needed {
                        assert!(
                            ![401, 403].contains(&status) && status < 500,
                            "{method} {} with a {} key answered {status}: {body}",
                            route.path,
                            scope.as_str()
                        );
                    } else {
                        assert_eq!(
                            (status, body["error"].as_str()),
                            (403, Some("forbidden")),
                            "{method} {} with a {} key: {body}",
                            route.path,
                            scope.as_str()
                        );
                    }
                }
            }
        }
        checked += 1;
    }
    println!("checked {checked} routes: public ones open, the others 401 without a key, 403 without their scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_used_listed_and_revoked_through_the_cli_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    // A key made before the server runs, straight into the embedded log.
    let (ok, out, err) = run_cli(
        &[
            "keys", "create", "--scope", "read", "--name", "grafana", "--json",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let read_key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert!(read_key.starts_with(&format!("atsk_{key_id}_")));
    // Only the hash reaches the log: the secret is nowhere in the data directory.
    let secret = read_key.rsplit('_').next().unwrap();
    let log = std::fs::read(dir.path().join("log.redb")).unwrap();
    assert!(!log.windows(secret.len()).any(|w| w == secret.as_bytes()));

    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let grafana = client_with_key(&read_key);
    let r = grafana
        .get(server.at("/api/analytics/operators"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = grafana
        .post(server.at("/api/events"))
        .json(&common::session("op", 1, 0.5, &["recon"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("API key {key_id} lacks the `ingest` scope")),
        "{body}"
    );

    // The server holds the log now: a local write says so and points to --url.
    let (ok, _, err) = run_cli(
        &["keys", "create", "--scope", "read", "--name", "x"],
        dir.path(),
    );
    assert!(!ok);
    assert!(err.contains("in use by a running server"), "{err}");

    // Through the server (the harness passes the root key as ATS_API_KEY).
    let (ok, out, err) = run_cli(&["keys", "list", "--url", &server.url], dir.path());
    assert!(ok, "{err}");
    assert!(out.contains("grafana") && out.contains("read"), "{out}");
    let (ok, _, err) = run_cli(
        &[
            "keys",
            "revoke",
            &key_id,
            "--reason",
            "rotated & replaced",
            "--url",
            &server.url,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let r = grafana
        .get(server.at("/api/analytics/operators"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("API key {key_id}: revoked at ")),
        "{body}"
    );
    let listed = server.get_ok("/api/admin/keys").await;
    assert_eq!(listed["keys"][0]["revoked_reason"], "rotated & replaced");
    assert_eq!(listed["memory_keys"], json!(["root"]));
    assert!(!listed.to_string().contains("secret"), "{listed}");

    // A key made through the API works at once; a CLI call without a key is told why.
    let ingest_key = create_key(&server, "orchestrator", &["ingest"], None).await;
    let r = client_with_key(&ingest_key)
        .post(server.at("/api/events"))
        .json(&common::session("op", 1, 0.5, &["recon"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let output = std::process::Command::new(common::binary())
        .args(["keys", "list", "--url", &server.url])
        .env_remove("ATS_API_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("pass --api-key or set ATS_API_KEY"), "{err}");

    // The keys survive a restart (they are events) and a replay equals the live read model.
    let mut server = server;
    server.restart();
    server.ready().await;
    let r = client_with_key(&ingest_key)
        .get(server.at("/api/admin/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let listed = server.get_ok("/api/admin/keys").await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2, "{listed}");

    // With the server stopped, the CLI lists and revokes keys in the local log.
    server.stop();
    let ingest_id = ingest_key.split('_').nth(1).unwrap();
    let (ok, _, err) = run_cli(&["keys", "revoke", ingest_id], dir.path());
    assert!(ok, "{err}");
    let (ok, out, err) = run_cli(&["keys", "list", "--json"], dir.path());
    assert!(ok, "{err}");
    let local: Value = serde_json::from_str(&out).unwrap();
    assert!(
        local["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_string()),
        "{local}"
    );
    let (ok, _, err) = run_cli(&["keys", "revoke", "0000000000000000"], dir.path());
    assert!(!ok);
    assert!(err.contains("API key 0000000000000000: unknown"), "{err}");
    let (ok, _, err) = run_cli(
        &["keys", "create", "--scope", "read,write", "--name", "x"],
        dir.path(),
    );
    assert!(!ok);
    assert!(err.contains("--scope: scopes[1]: unknown scope"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let key = create_key(&server, "reader", &["read"], None).await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let wrong_secret = format!("atsk_{key_id}_{}", "0".repeat(64));
    let cases = [
        (
            "Basic dXNlcjpwYXNz",
            "Authorization: expected `Bearer <API key>`".to_owned(),
        ),
        ("Bearer not-a-key", "not an API key".to_owned()),
        (
            "Bearer atsk_0000000000000000_abc",
            "API key 0000000000000000: unknown".to_owned(),
        ),
        (
            &*format!("Bearer {wrong_secret}"),
            format!("API key {key_id}: wrong secret"),
        ),
    ];
    for (header, expected) in cases {
        let r = reqwest::Client::new()
            .get(server.at("/api/analytics/operators"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(&expected),
            "{header}: {body}"
        );
        println!("{header:?} → 401 {}", body["message"]);
    }
    // X-API-Key works like Bearer.
    let r = reqwest::Client::new()
        .get(server.at("/api/analytics/operators"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An ingest key cannot mint itself an admin key through the intake: 422 naming `type`,
    // and the log does not move.
    let head = server.head().await;
    let (status, body) = server
        .post_events(&json!([{"specversion": "1.0", "id": "mint", "type": "ats.apikey.issued",
            "source": "evil", "time": "2026-11-01T00:00:00Z",
            "data": {"key_id": "evil", "name": "evil", "scopes": ["admin"],
                     "secret_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}]))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("events[0].type: "),
        "{body}"
    );
    assert_eq!(server.head().await, head);

    // Creating a key with a bad scope names the field.
    let (status, body) = server
        .post_json(
            "/api/admin/keys",
            &json!({"name": "x", "scopes": ["read", "write"]}),
        )
        .await;
    assert_refused(status, &body, 422, "scopes[1]: ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    // Three requests a minute: the fourth in a row waits ~20 s, far beyond this test's pace.
    let slow = client_with_key(&create_key(&server, "slow", &["read"], Some(3)).await);
    let other = client_with_key(&create_key(&server, "other", &["read"], Some(3)).await);
    let url = server.at("/api/analytics/operators");
    for n in 1..=3 {
        let r = slow.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {n}");
    }
    let r = slow.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("rate limit of 3 requests per minute"),
        "{body}"
    );
    // Another key, and the root key, are not affected.
    assert_eq!(other.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_no_auth_is_for_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(common::binary())
        .args([
            "serve",
            "--insecure-no-auth",
            "--bind",
            "0.0.0.0:0",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--insecure-no-auth: refused on 0.0.0.0:"),
        "{err}"
    );

    let server = Server::start(dir.path(), &["--insecure-no-auth"]);
    server.ready().await;
    let r = reqwest::Client::new()
        .get(server.at("/api/admin/projectors"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(server
        .printed_line("--insecure-no-auth")
        .contains("no API keys are checked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_on_one_jetstream_node_works_on_another_and_a_revocation_too() {
    let nats = ats_ingest::testkit::NatsServer::start();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flags = ["--nats", &nats.url(), "--stream", "ATS_KEYS_TEST"];
    let a = Server::start(a_dir.path(), &flags);
    let b = Server::start(b_dir.path(), &flags);
    a.ready().await;
    b.ready().await;
    let (status, created) = a
        .post_json(
            "/api/admin/keys",
            &json!({"name": "dashboards", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap();
    // At once on the other node: an unknown key waits for that node's keys projector.
    let reader = client_with_key(key);
    let r = reader
        .get(b.at("/api/analytics/operators"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let key_id = created["key_id"].as_str().unwrap();
    let r = client()
        .delete(b.at(&format!("/api/admin/keys/{key_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Revoked on b; a learns it from the stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = reader
            .get(a.at("/api/analytics/operators"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node a still accepts the revoked key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[test]
fn a_server_without_any_key_says_how_to_make_one() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(common::binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env_remove("ATS_ROOT_KEY")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.map_while(Result::ok) {
        let done = line.starts_with("no API key exists yet");
        seen.push(line);
        if done || seen.len() > 20 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let last = seen.last().unwrap();
    assert!(
        last.starts_with("no API key exists yet") && last.contains("ats-mafia keys create"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_cli_write_with_an_ingest_only_key_lands_though_it_cannot_read_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let ingest = create_key(&server, "orchestrator", &["ingest"], None).await;
    // The CLI waits until a write is visible to queries; this key may not query, so the
    // wait is refused (403) and the write must still succeed, with its receipt.
    let (ok, out, err) = run_cli(
        &[
            "analytics",
            "milestone",
            "register",
            "m_ingest",
            "--name",
            "Ingest only",
            "--type",
            "session_count",
            "--requirements",
            r#"{"sessions": 3}"#,
            "--xp",
            "10",
            "--json",
            "--url",
            &server.url,
            "--api-key",
            &ingest,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(!err.contains("not yet visible"), "{err}");
    let receipt: Value = serde_json::from_str(&out).unwrap();
    let position = receipt["positions"][0].as_u64().unwrap();
    let listed = server
        .get_ok(&format!(
            "/api/analytics/milestones?min_position={position}"
        ))
        .await;
    assert!(listed.to_string().contains("m_ingest"), "{listed}");
}
