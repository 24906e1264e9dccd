//! Custom report templates (issue 7): minijinja sources registered by name
//! (`ats.report.template.registered`, folded into `t/<name>` of `reports_v1`) and rendered
//! over a stored report at download time.
//!
//! The context is the report itself (`id`, `report_type`, `title`, `description`,
//! `generated_at`, `data`, `metadata`). A `text/html` template escapes every value it inserts
//! (and `application/json` writes values as JSON), so data never becomes markup. A render
//! has a fuel budget: a user template cannot loop a server thread forever. The same report
//! and the same template give the same bytes (maps iterate in key order).

use ats_events::{ReportTemplateRegistered, Timestamp};
use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Report;
use crate::profiles::decode;
use crate::runtime::ApplyError;
use crate::view::View;

/// Instructions one render may execute.
const FUEL: u64 = 5_000_000;

/// A template as folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// Media type it renders.
    pub media_type: String,
    /// minijinja source.
    pub template: String,
    /// What it is for.
    pub description: Option<String>,
    /// `occurred_at` of the registration.
    pub registered_at: Timestamp,
}

/// A template as listed and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TemplateInfo {
    /// Name (`?template=`).
    pub name: String,
    /// Media type it renders.
    pub media_type: String,
    /// What it is for.
    pub description: Option<String>,
    /// RFC 3339.
    pub registered_at: String,
    /// The source (absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A template that does not compile or render, with minijinja's reason and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

fn key(name: &str) -> Vec<u8> {
    [b"t/", name.as_bytes()].concat()
}

/// Folds a registration; a later one of the same name replaces it.
pub(crate) fn fold(
    view: &mut View<'_>,
    at: Timestamp,
    p: &ReportTemplateRegistered,
) -> Result<(), ApplyError> {
    view.put(
        &key(&p.name),
        StoredTemplate {
            media_type: p.media_type.clone(),
            template: p.template.clone(),
            description: p.description.clone(),
            registered_at: at,
        },
    )
}

/// The template `name`.
pub fn get(tree: &sled::Tree, name: &str) -> Option<StoredTemplate> {
    decode(&tree.get(key(name)).ok().flatten()?)
}

fn template_info(name: String, stored: StoredTemplate, with_source: bool) -> TemplateInfo {
    TemplateInfo {
        name,
        media_type: stored.media_type,
        description: stored.description,
        registered_at: stored.registered_at.to_rfc3339(),
        template: with_source.then_some(stored.template),
    }
}

/// The template `name` with its source, as shown.
pub fn info(tree: &sled::Tree, name: &str) -> Option<TemplateInfo> {
    get(tree, name).map(|stored| template_info(name.to_owned(), stored, true))
}

/// Every template by name, without sources.
pub fn list(tree: &sled::Tree) -> Vec<TemplateInfo> {
    tree.scan_prefix(b"t/")
        .map_while(Result::ok)
        .filter_map(|(k, v)| {
            let name = String::from_utf8_lossy(k.get(2..)?).into_owned();
            Some(template_info(name, decode(&v)?, false))
        })
        .collect()
}

fn environment(media_type: &str) -> Environment<'static> {
    let mut env = Environment::new();
    let escape = match media_type {
        "text/html" => AutoEscape::Html,
        "application/json" => AutoEscape::Json,
        _ => AutoEscape::None,
    };
    env.set_auto_escape_callback(move |_| escape.clone());
    env.set_fuel(Some(FUEL));
    env
}

fn describe(err: &minijinja::Error) -> String {
    let mut text = err.kind().to_string();
    if let Some(detail) = err.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = err.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// Whether `source` compiles.
pub fn check(source: &str, media_type: &str) -> Result<(), TemplateError> {
    environment(media_type)
        .template_from_str(source)
        .map(|_| ())
        .map_err(|e| TemplateError(describe(&e)))
}

/// `report` rendered through `template`.
pub fn render(report: &Report, template: &StoredTemplate) -> Result<String, TemplateError> {
    let env = environment(&template.media_type);
    let compiled = env
        .template_from_str(&template.template)
        .map_err(|e| TemplateError(describe(&e)))?;
    compiled
        .render(minijinja::value::Serde(report))
        .map_err(|e| TemplateError(describe(&e)))
}

/// The file extension of a download in `media_type`.
pub fn extension(media_type: &str) -> &'static str {
    match media_type {
        "text/html" => "html",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "application/json" => "json",
        _ => "txt",
    }
}

#[cfg(test)]
mod tests {
    use ats_events::ReportType;
    use serde_json::json;

    use super::*;

    fn report() -> Report {
        Report {
            id: "r1".into(),
            report_type: ReportType::TeamPerformance,
            title: "Team <b>".into(),
            description: String::new(),
            generated_at: "2026-11-10T12:00:00Z".into(),
            generated_by: "system".into(),
            data: json!({"operators": [
                {"name": "<script>alert(1)</script>", "xp": 300},
                {"name": "Ada", "xp": 100}
            ]}),
            metadata: json!({}),
        }
    }

    fn template(media_type: &str, source: &str) -> StoredTemplate {
        StoredTemplate {
            media_type: media_type.into(),
            template: source.into(),
            description: None,
            registered_at: Timestamp::from_micros(0),
        }
    }

    const LINES: &str =
        "{{ title }}\n{% for op in data.operators %}{{ op.name }}={{ op.xp }}\n{% endfor %}";

    #[test]
    fn html_templates_escape_data_and_others_do_not() {
        let html = render(&report(), &template("text/html", LINES)).unwrap();
        assert_eq!(
            html,
            "Team &lt;b&gt;\n&lt;script&gt;alert(1)&lt;&#x2f;script&gt;=300\nAda=100\n"
        );
        let markdown = render(&report(), &template("text/markdown", LINES)).unwrap();
        assert_eq!(
            markdown,
            "Team <b>\n<script>alert(1)</script>=300\nAda=100\n"
        );
        // The same report and template give the same bytes.
        assert_eq!(
            render(&report(), &template("text/html", LINES)).unwrap(),
            html
        );
    }

    #[test]
    fn a_broken_template_is_refused_with_its_line() {
        let err = check("line one\n{% for x in %}", "text/plain").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = render(
            &report(),
            &template("text/plain", "{{ data.operators | nosuchfilter }}"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nosuchfilter"), "{err}");
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let source =
            "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}";
        let err = render(&report(), &template("text/plain", source)).unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }
}
