//! Reports end to end: a history posted through `POST /api/events` to the real binary, each
//! report type generated over HTTP, listed, shown, downloaded in every format (escaped HTML,
//! quoted CSV), byte-identical after `ats-mafia replay`, deleted; and the CLI's
//! `export-report` and `report list|show|delete`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use std::collections::BTreeMap;

use common::{assert_refused, session, Server};
use serde_json::{json, Value};

const HOSTILE: &str = "<script>alert(1)</script>";

fn history() -> Vec<Value> {
    let mut events = vec![
        json!({"specversion": "1.0", "id": "reg-1", "type": "ats.operator.registered",
               "source": "test", "time": "2026-10-01T00:00:00Z", "subject": "op_001",
               "data": {"operator_id": "op_001", "name": HOSTILE, "team": "red"}}),
        common::registered("op_002", "Grace, \"the\" admiral"),
    ];
    for n in 0..3 {
        events.push(session("op_001", n, 0.8, &["reconnaissance"]));
    }
    events.push(session("op_002", 5, 0.5, &["threat_detection"]));
    events.push(
        json!({"specversion": "1.0", "id": "u-1", "type": "ats.llm.usage",
        "source": "test", "time": "2026-11-02T10:00:00Z", "subject": "op_001",
        "data": {"model": "openai/gpt-4o", "profile_id": "op_001", "session_id": "op_001-sess-1",
                 "task_type": "reconnaissance", "input_tokens": 1000, "output_tokens": 100,
                 "cost": 1.5}}),
    );
    events
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = common::client().request(method, server.at(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn generate(server: &Server, report_type: &str, parameters: Value) -> Value {
    let (status, body) = send(
        server,
        reqwest::Method::POST,
        "/api/analytics/reports/generate",
        Some(&json!({"report_type": report_type, "parameters": parameters})),
    )
    .await;
    assert_eq!(status, 200, "{report_type}: {body}");
    body
}

/// (status, content type, body) of a download.
async fn download(server: &Server, id: &str, format: &str) -> (u16, String, String) {
    let r = common::client()
        .get(server.at(&format!(
            "/api/analytics/reports/{id}/download?format={format}"
        )))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_http_survive_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.ready().await;
    let (status, receipt) = server.post_events(&Value::Array(history())).await;
    assert_eq!(status, 200, "{receipt}");
    let head = common::last_position(&receipt);
    let (status, _) = server
        .get(&format!("/api/analytics/operators?min_position={head}"))
        .await;
    assert_eq!(status, 200);

    let mut ids = BTreeMap::new();
    for (report_type, parameters) in [
        ("operator_progress", json!({"operator_id": "op_001"})),
        (
            "team_performance",
            json!({"operator_ids": ["op_001", "op_002", "ghost"]}),
        ),
        ("cost_summary", json!({"time_range_days": 3650})),
        ("trend_analysis", json!({"time_range_days": 3650})),
        (
            "compliance",
            json!({"requirements": {"min_hours": 5, "required_certifications": []}}),
        ),
    ] {
        let answer = generate(&server, report_type, parameters).await;
        assert_eq!(answer["report_type"], report_type);
        ids.insert(
            report_type,
            answer["report_id"].as_str().unwrap().to_owned(),
        );
    }
    let operator = &ids["operator_progress"];

    // Show: the content as generated, with the positions it was computed at.
    let (status, report) = server
        .get(&format!("/api/analytics/reports/{operator}"))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["title"],
        format!("Operator Progress Report: {HOSTILE}")
    );
    assert_eq!(report["data"]["summary"]["total_sessions"], 3);
    assert!(report["metadata"]["as_of"]["profiles_v3"].as_u64().unwrap() >= head);
    let (_, team) = server
        .get(&format!(
            "/api/analytics/reports/{}",
            ids["team_performance"]
        ))
        .await;
    assert_eq!(team["data"]["unknown_operator_ids"], json!(["ghost"]));
    assert_eq!(team["data"]["aggregate_stats"]["average_level"], 2.0);
    let (_, compliance) = server
        .get(&format!("/api/analytics/reports/{}", ids["compliance"]))
        .await;
    // op_001 trained 6 h, op_002 2 h against 5 h.
    assert_eq!(compliance["data"]["compliance_rate"], 50.0);

    // List and filter.
    let (_, list) = server.get("/api/analytics/reports").await;
    assert_eq!(list["count"], 5);
    let (_, only) = server
        .get("/api/analytics/reports?report_type=compliance")
        .await;
    assert_eq!(only["count"], 1);
    assert_eq!(only["reports"][0]["type"], "compliance");

    // Downloads.
    let (status, content_type, html) = download(&server, operator, "html").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"));
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (_, content_type, csv) = download(&server, &ids["team_performance"], "csv").await;
    assert!(content_type.starts_with("text/csv"));
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "achievements,certifications,hours,level,name,operator_id,sessions,skill_level,xp"
    );
    // One row per known operator; the comma and quotes of Grace's name are quoted.
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[2].contains(",\"Grace, \"\"the\"\" admiral\",op_002,"),
        "{csv}"
    );
    let r = common::client()
        .get(server.at(&format!(
            "/api/analytics/reports/{}/download?format=markdown",
            ids["trend_analysis"]
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-disposition"].to_str().unwrap(),
        format!(
            "attachment; filename=report_{}.markdown",
            ids["trend_analysis"]
        )
    );
    let (_, _, markdown) = download(&server, &ids["trend_analysis"], "markdown").await;
    assert!(markdown.starts_with("# System-Wide Trend Analysis\n"));
    assert!(markdown.contains("| Date |"));
    let (status, body) = server
        .get(&format!(
            "/api/analytics/reports/{operator}/download?format=pdf"
        ))
        .await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("format: Invalid format: pdf"));
    let (status, _) = server
        .get("/api/analytics/reports/nope/download?format=json")
        .await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/api/analytics/reports/nope").await;
    assert_eq!(status, 404);

    let (_, openapi) = server.get("/api/openapi.json").await;
    for path in [
        "/api/analytics/reports",
        "/api/analytics/reports/generate",
        "/api/analytics/reports/{id}",
        "/api/analytics/reports/{id}/download",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} not documented");
    }
    assert!(openapi["paths"]["/api/analytics/reports/{id}"]["delete"].is_object());

    // Every download, before and after an offline replay of the log.
    let mut before = BTreeMap::new();
    for (kind, id) in &ids {
        for format in ["json", "csv", "html", "markdown"] {
            let (status, _, body) = download(&server, id, format).await;
            assert_eq!(status, 200);
            before.insert((kind.to_string(), format), body);
        }
    }
    server.stop();
    let (ok, _, err) = common::run_cli(&["replay"], dir.path());
    assert!(ok, "{err}");
    server.restart();
    server.ready().await;
    for ((kind, format), body) in &before {
        let (status, _, again) = download(&server, &ids[kind.as_str()], format).await;
        assert_eq!(status, 200);
        assert_eq!(&again, body, "{kind} as {format} changed after replay");
    }

    // Delete: an event; the report is gone, a second delete is 404.
    let (status, deleted) = send(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/analytics/reports/{operator}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    let position = deleted["position"].as_u64().unwrap();
    let (status, _) = server
        .get(&format!(
            "/api/analytics/reports/{operator}?min_position={position}"
        ))
        .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/analytics/reports/{operator}"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The CLI: export, list, show, delete.
    let url = server.url.clone();
    let out = dir.path().join("exports/team.csv");
    let (ok, stdout, err) = common::run_cli(
        &[
            "analytics",
            "export-report",
            "team",
            out.to_str().unwrap(),
            "--format",
            "csv",
            "--url",
            &url,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("Report exported to:"), "{stdout}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("achievements,certifications,hours,level,name,"));
    let (ok, _, err) = common::run_cli(
        &[
            "analytics",
            "export-report",
            "operator",
            "x.json",
            "--url",
            &url,
        ],
        dir.path(),
    );
    assert!(!ok);
    assert!(
        err.contains("--operator-id required for operator report"),
        "{err}"
    );
    let (ok, stdout, err) = common::run_cli(
        &["analytics", "report", "list", "--json", "--url", &url],
        dir.path(),
    );
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed["count"], 5);
    let compliance_id = &ids["compliance"];
    let (ok, stdout, err) = common::run_cli(
        &["analytics", "report", "show", compliance_id, "--url", &url],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(
        stdout.starts_with("# Training Compliance Report"),
        "{stdout}"
    );
    let (ok, stdout, err) = common::run_cli(
        &[
            "analytics",
            "report",
            "delete",
            compliance_id,
            "--url",
            &url,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("deleted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let path = "/api/analytics/reports/generate";
    for (body, prefix) in [
        (json!({}), "report_type: required"),
        (
            json!({"report_type": "weekly"}),
            "report_type: 'weekly' is not a valid ReportType",
        ),
        (
            json!({"report_type": "system_health"}),
            "report_type: No generator for report type: system_health",
        ),
        (
            json!({"report_type": "operator_progress", "parameters": {"operator_id": "ghost"}}),
            "parameters.operator_id: Operator not found: ghost",
        ),
        (
            json!({"report_type": "cost_summary", "parameters": {"time_range": 7}}),
            "parameters: unknown field `time_range`",
        ),
    ] {
        let (status, answer) = send(&server, reqwest::Method::POST, path, Some(&body)).await;
        assert_refused(status, &answer, 400, prefix);
    }
}

/// (status, content type, body) of a download through a template.
async fn download_with(server: &Server, id: &str, template: &str) -> (u16, String, String) {
    download(server, id, &format!("json&template={template}")).await
}

const TEAM_HTML: &str = "<h1>{{ title }}</h1><ul>{% for op in data.operators %}<li>{{ op.name }}: {{ op.xp }} XP</li>{% endfor %}</ul>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_templates_render_stored_reports_and_survive_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.ready().await;
    let (status, receipt) = server.post_events(&Value::Array(history())).await;
    assert_eq!(status, 200, "{receipt}");
    let head = common::last_position(&receipt);
    server
        .get_ok(&format!("/api/analytics/operators?min_position={head}"))
        .await;
    let team = generate(
        &server,
        "team_performance",
        json!({"operator_ids": ["op_001", "op_002"]}),
    )
    .await;
    let id = team["report_id"].as_str().unwrap().to_owned();

    // Register: the source must compile (422 naming `template` and the line otherwise).
    let (status, body) = server
        .post_json(
            "/api/analytics/reports/templates",
            &json!({"name": "team-html", "media_type": "text/html", "template": "ok\n{% for %}"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("template: ") && message.contains("line 2"),
        "{body}"
    );
    let (status, body) = server
        .post_json(
            "/api/analytics/reports/templates",
            &json!({"name": "team-html", "media_type": "text/pdf", "template": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("media_type: "),
        "{body}"
    );
    let (status, receipt) = server
        .post_json(
            "/api/analytics/reports/templates",
            &json!({"name": "team-html", "media_type": "text/html", "template": TEAM_HTML,
                    "description": "a list of operators"}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let position = receipt["positions"][0].as_u64().unwrap();
    let listed = server
        .get_ok(&format!(
            "/api/analytics/reports/templates?min_position={position}"
        ))
        .await;
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["templates"][0]["name"], "team-html");
    let shown = server
        .get_ok("/api/analytics/reports/templates/team-html")
        .await;
    assert_eq!(shown["template"], TEAM_HTML);

    // Rendered through it: HTML escapes the hostile name; the content type is the template's.
    let (status, _, refused) = download_with(&server, &id, "team-html").await;
    assert_eq!(status, 400, "format and template together: {refused}");
    let r = common::client()
        .get(server.at(&format!(
            "/api/analytics/reports/{id}/download?template=team-html"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".html"));
    let html = r.text().await.unwrap();
    assert!(
        html.starts_with(
            "<h1>Team Performance Report</h1><ul><li>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;: "
        ),
        "{html}"
    );
    assert!(!html.contains(HOSTILE));
    let (status, _) = server
        .get(&format!(
            "/api/analytics/reports/{id}/download?template=missing"
        ))
        .await;
    assert_eq!(status, 404);

    // The CLI: register a Markdown template from a file, list, export through it.
    let source = dir.path().join("brief.md.j2");
    std::fs::write(
        &source,
        "# {{ title }}\n{% for op in data.operators %}- {{ op.name }}\n{% endfor %}",
    )
    .unwrap();
    let url = server.url.clone();
    let (ok, stdout, err) = common::run_cli(
        &[
            "analytics",
            "report",
            "template",
            "register",
            "brief",
            "--file",
            source.to_str().unwrap(),
            "--url",
            &url,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(
        stdout.contains("Template brief (text/markdown) registered"),
        "{stdout}"
    );
    let (ok, stdout, err) = common::run_cli(
        &["analytics", "report", "template", "list", "--url", &url],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(
        stdout.contains("brief") && stdout.contains("team-html"),
        "{stdout}"
    );
    let out = dir.path().join("brief.md");
    let (ok, _, err) = common::run_cli(
        &[
            "analytics",
            "export-report",
            "team",
            out.to_str().unwrap(),
            "--template",
            "brief",
            "--url",
            &url,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let brief = std::fs::read_to_string(&out).unwrap();
    assert!(
        brief.starts_with("# Team Performance Report\n- "),
        "{brief}"
    );
    assert!(brief.contains(HOSTILE), "Markdown is not escaped: {brief}");

    // The same bytes after an offline replay.
    server.stop();
    let (ok, _, err) = common::run_cli(&["replay"], dir.path());
    assert!(ok, "{err}");
    server.restart();
    server.ready().await;
    let again = server
        .get_text(&format!(
            "/api/analytics/reports/{id}/download?template=team-html"
        ))
        .await;
    assert_eq!(again, html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_formats_follow_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ats.yaml");
    std::fs::write(
        &config,
        "analytics:\n  reporting:\n    formats: [json, markdown]\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    server.ready().await;
    let (status, receipt) = server.post_events(&Value::Array(history())).await;
    assert_eq!(status, 200, "{receipt}");
    let team = generate(&server, "team_performance", json!({})).await;
    let id = team["report_id"].as_str().unwrap();
    assert_eq!(download(&server, id, "markdown").await.0, 200);
    let (status, _, body) = download(&server, id, "csv").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("format: csv is not offered by this server (analytics.reporting.formats: json, markdown)"),
        "{body}"
    );

    // An unknown format in the file stops the server with the key named.
    std::fs::write(
        &config,
        "analytics:\n  reporting:\n    formats: [json, pdf]\n",
    )
    .unwrap();
    let output = common::command()
        .args(["serve", "--bind", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data-2"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("analytics.reporting.formats: unknown format \"pdf\""),
        "{err}"
    );
}
