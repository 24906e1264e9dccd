//! The dashboard page in a real headless Chromium: it renders the read models, and data
//! never becomes markup.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use std::process::Command;

use common::Server;
use serde_json::json;

fn chromium() -> String {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("the dashboard test needs Chromium: apt-get install chromium (scripts/test does it as root)")
        .to_owned()
}

/// The page's DOM after its scripts have run (virtual time lets the fetches finish).
fn rendered_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_the_demo_and_escapes_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"]);
    server.ready().await;
    let hostile = "<img src=x onerror=alert(1)>";
    let (status, receipt) = server
        .post_events(
            &json!({"specversion": "1.0", "id": "xss-1", "type": "ats.operator.registered",
            "source": "test", "time": "2026-11-01T00:00:00Z",
            "data": {"operator_id": "op_zzz", "name": hostile}}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    // Enough XP to top the leaderboard, where the name is shown again.
    let (status, receipt) = server
        .post_events(
            &json!({"specversion": "1.0", "id": "xss-xp", "type": "ats.xp.awarded",
            "source": "test", "time": "2026-11-01T00:00:00Z",
            "data": {"operator_id": "op_zzz", "amount": 10_000_000u64, "reason": "test"}}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let position = receipt["positions"][0].as_u64().unwrap();
    let (status, _) = server
        .get(&format!("/api/analytics/operators?min_position={position}"))
        .await;
    assert_eq!(status, 200);

    // Without a key the page asks for one, with the server's reason.
    let dom = rendered_dom(&server.at("/"));
    assert!(dom.contains("data-auth=\"needed\""), "{dom}");
    assert!(
        dom.contains("needs an API key with the `read` scope"),
        "{dom}"
    );
    assert!(!dom.contains("<td>profiles_v3</td>"), "{dom}");

    // With the demo key in the link's fragment, as `serve --demo` prints it.
    let link = server.printed_line("open the dashboard: ");
    let link = link.split("open the dashboard: ").nth(1).unwrap().trim();
    assert!(link.starts_with(&server.at("/#key=atsk_")), "{link}");
    let dom = rendered_dom(link);
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page never finished loading:\n{dom}"
    );
    // 36 demo operators plus the hostile one.
    assert!(dom.contains("<b id=\"operators\">37</b>"), "{dom}");
    assert!(dom.contains("<td>Ada Nakamura</td>"), "{dom}");
    assert!(dom.contains("<td>profiles_v3</td>"), "{dom}");
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the name must be shown as text"
    );
    assert!(!dom.contains(hostile), "the name became markup");
    // The aggregator's cards and tables: the hostile operator leads the XP leaderboard.
    let (_, d) = server.get("/api/analytics/dashboard").await;
    let expected_cost = format!("${:.2}", d["summary"]["week_cost"].as_f64().unwrap());
    assert!(
        dom.contains(&format!("<b id=\"week-cost\">{expected_cost}</b>")),
        "{dom}"
    );
    assert!(dom.contains("<b id=\"active-sessions\">"), "{dom}");
    // The count of every active alert, not of the ones the dashboard carries.
    let alerts = &d["active_alerts_total"];
    assert!(
        dom.contains(&format!("<b id=\"alert-count\">{alerts}</b>")),
        "{dom}"
    );
    assert!(
        dom.contains("<td class=\"n\">1</td><td>op_zzz</td><td>&lt;img src=x onerror=alert(1)&gt;</td><td class=\"n\">10000000</td>"),
        "the leaderboard must lead with op_zzz, as text:\n{dom}"
    );
}
