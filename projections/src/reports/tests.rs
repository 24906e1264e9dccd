//! Each report type × each format from a fixed history, compared byte for byte with the
//! reviewed files in `src/reports/snapshots/` (`UPDATE_SNAPSHOTS=1` rewrites them; review the
//! diff like code), plus hand-computed checks of the numbers and of escaping.

use std::path::PathBuf;

use ats_events::cloudevents::event_id;
use ats_events::{Attributes, OperatorRegistered, ReportDeleted, ReportGenerated};

use super::render::{render, Format};
use super::*;
use crate::activity::tests::{fold_with, t};
use crate::dashboard::tests::{as_of, history, models};

const HOSTILE: &str = "<script>alert(1)</script>";

/// The dashboard's history with op_a named `<script>alert(1)</script>`.
fn hostile_history() -> Vec<Envelope> {
    let mut events = vec![Envelope::new(
        event_id("reg-a"),
        t("2026-10-01T00:00:00Z"),
        "tests",
        Payload::OperatorRegistered(OperatorRegistered {
            operator_id: "op_a".into(),
            name: HOSTILE.into(),
            team: Some("red".into()),
            specializations: Vec::new(),
            metadata: Attributes::new(),
        }),
    )];
    events.extend(history());
    events
}

fn parameters(value: Value) -> ReportParameters {
    serde_json::from_value(value).unwrap()
}

/// Generates `report_type` as of the history's `as_of`, stores it through `reports_v1` with
/// a fixed id and reads it back.
fn stored(report_type: ReportType, params: Value) -> Report {
    let generated = generate(
        &models(&hostile_history()),
        report_type,
        &parameters(params.clone()),
        as_of(),
    )
    .unwrap();
    let id = format!("00000000-0000-4000-8000-00000000000{}", report_type as u8);
    let event = Envelope::new(
        event_id(&format!("gen-{id}")),
        as_of(),
        "tests",
        Payload::ReportGenerated(ReportGenerated {
            report_id: id.clone(),
            report_type,
            parameters: serde_json::from_value(params).unwrap(),
            title: generated.title,
            description: Some(generated.description),
            data: generated.data,
            as_of: Attributes::from([("profiles_v3".into(), json!(11))]),
        }),
    );
    report(&fold_with(&ReportsProjector, &[event]), &id).unwrap()
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/reports/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_SNAPSHOTS=1", path.display()));
    assert_eq!(actual, expected, "{name} differs from its snapshot");
}

fn all_types() -> Vec<(ReportType, &'static str, Value)> {
    vec![
        (
            ReportType::OperatorProgress,
            "operator_progress",
            json!({"operator_id": "op_a"}),
        ),
        (
            ReportType::TeamPerformance,
            "team_performance",
            json!({"operator_ids": ["op_a", "ghost", "op_b"]}),
        ),
        (
            ReportType::CostSummary,
            "cost_summary",
            json!({"time_range_days": 7}),
        ),
        (
            ReportType::TrendAnalysis,
            "trend_analysis",
            json!({"time_range_days": 7}),
        ),
        (
            ReportType::Compliance,
            "compliance",
            json!({"operator_ids": ["op_a", "op_b", "ghost"],
                   "requirements": {"min_hours": 4, "required_certifications": ["cert_x"]}}),
        ),
    ]
}

#[test]
fn every_type_in_every_format_matches_its_snapshot() {
    for (report_type, name, params) in all_types() {
        let report = stored(report_type, params);
        for format in Format::ALL {
            let out = render(&report, format);
            check(&format!("{name}.{}", format.extension()), &out);
            // Rendering is a pure function of the stored report.
            assert_eq!(out, render(&report, format));
        }
    }
}

#[test]
fn html_and_markdown_escape_an_operator_named_script() {
    let report = stored(ReportType::OperatorProgress, json!({"operator_id": "op_a"}));
    assert_eq!(report.title, format!("Operator Progress Report: {HOSTILE}"));
    let html = render(&report, Format::Html);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains(
        "<title>Operator Progress Report: &lt;script&gt;alert(1)&lt;/script&gt;</title>"
    ));
    assert!(html
        .contains("<tr><th>Operator Name</th><td>&lt;script&gt;alert(1)&lt;/script&gt;</td></tr>"));
    let md = render(&report, Format::Markdown);
    assert!(!md.contains("<script>"), "{md}");
    assert!(md.contains("| Operator Name | &lt;script&gt;alert(1)&lt;/script&gt; |"));
    let team = render(
        &stored(
            ReportType::TeamPerformance,
            json!({"operator_ids": ["op_a"]}),
        ),
        Format::Html,
    );
    assert!(!team.contains("<script>"));
}

#[test]
fn csv_has_one_row_per_record_of_the_main_table() {
    let team = stored(
        ReportType::TeamPerformance,
        json!({"operator_ids": ["op_a", "ghost", "op_b"]}),
    );
    assert_eq!(
        render(&team, Format::Csv),
        "achievements,certifications,hours,level,name,operator_id,sessions,skill_level,xp\r\n\
         1,0,4.5,2,<script>alert(1)</script>,op_a,3,novice,100\r\n\
         1,0,0.5,3,op_b,op_b,1,novice,400\r\n"
    );
    let compliance = stored(
        ReportType::Compliance,
        json!({"operator_ids": ["op_a", "op_b", "ghost"],
               "requirements": {"min_hours": 4, "required_certifications": ["cert_x"]}}),
    );
    let csv = render(&compliance, Format::Csv);
    // Issues join with "; " and the field holding a comma-free list is not quoted; the
    // unknown id is not a row.
    assert_eq!(
        csv,
        "certifications,compliant,hours,issues,name,operator_id\r\n\
         ,false,4.5,Missing certification: cert_x,<script>alert(1)</script>,op_a\r\n\
         ,false,0.5,Insufficient training hours: 0.5/4; Missing certification: cert_x,op_b,op_b\r\n"
    );
    assert_eq!(compliance.data["compliance_rate"], json!(0.0));
    assert_eq!(compliance.data["total_operators"], json!(2));
    assert_eq!(compliance.data["unknown_operator_ids"], json!(["ghost"]));
}

#[test]
fn trend_analysis_is_a_real_system_wide_series() {
    let report = stored(ReportType::TrendAnalysis, json!({"time_range_days": 7}));
    assert_eq!(report.title, "System-Wide Trend Analysis");
    assert_eq!(
        report.data["daily"],
        json!([
            {"date": "2026-11-04", "sessions": 1, "average_score": 0.5, "success_rate": 100.0, "hours": 1.0, "cost": 0.0},
            {"date": "2026-11-05", "sessions": 0, "average_score": 0.0, "success_rate": 0.0, "hours": 0.0, "cost": 1.25},
            {"date": "2026-11-09", "sessions": 1, "average_score": 0.9, "success_rate": 100.0, "hours": 2.0, "cost": 0.75},
            {"date": "2026-11-10", "sessions": 2, "average_score": 0.55, "success_rate": 0.0, "hours": 2.0, "cost": 3.0}
        ])
    );
    assert_eq!(report.data["performance_trend"]["trend"], "improving");
    assert_eq!(report.data["cost_trend"]["trend"], "increasing");
    let html = render(&report, Format::Html);
    assert!(html.contains("<figcaption>Cost (max 3.0)</figcaption><svg"));
    let op = generate(
        &models(&hostile_history()),
        ReportType::TrendAnalysis,
        &parameters(json!({"operator_id": "op_b", "time_range_days": 7})),
        as_of(),
    )
    .unwrap();
    assert_eq!(op.title, "Trend Analysis - Operator op_b");
    assert_eq!(op.data["daily"][0]["cost"], json!(0.0));
}

#[test]
fn generators_refuse_what_they_cannot_do() {
    let m = models(&hostile_history());
    let err = |t, p| {
        generate(&m, t, &parameters(p), as_of())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(
            ReportType::OperatorProgress,
            json!({"operator_id": "ghost"})
        ),
        "parameters.operator_id: Operator not found: ghost"
    );
    assert_eq!(
        err(ReportType::OperatorProgress, json!({})),
        "parameters.operator_id: required for an operator_progress report"
    );
    assert_eq!(
        err(ReportType::SystemHealth, json!({})),
        "report_type: No generator for report type: system_health"
    );
}

#[test]
fn deleted_reports_disappear_and_lists_are_newest_first() {
    let generated = |id: &str, at: &str, report_type| {
        Envelope::new(
            event_id(&format!("gen-{id}")),
            t(at),
            "tests",
            Payload::ReportGenerated(ReportGenerated {
                report_id: id.into(),
                report_type,
                parameters: Attributes::new(),
                title: format!("report {id}"),
                description: None,
                data: json!({}),
                as_of: Attributes::new(),
            }),
        )
    };
    let tree = fold_with(
        &ReportsProjector,
        &[
            generated("r1", "2026-11-01T00:00:00Z", ReportType::Compliance),
            generated("r2", "2026-11-02T00:00:00Z", ReportType::CostSummary),
            generated("r3", "2026-11-03T00:00:00Z", ReportType::Compliance),
            Envelope::new(
                event_id("del-r3"),
                t("2026-11-04T00:00:00Z"),
                "tests",
                Payload::ReportDeleted(ReportDeleted {
                    report_id: "r3".into(),
                }),
            ),
        ],
    );
    let ids = |rows: Vec<ReportListItem>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(list(&tree, None)), ["r2", "r1"]);
    assert_eq!(ids(list(&tree, Some(ReportType::Compliance))), ["r1"]);
    assert!(report(&tree, "r3").is_none());
    assert_eq!(count(&tree), 2);
}
