//! Report exports (§B7.4, fixed): JSON, CSV (one row per record of the report's main table,
//! RFC 4180 quoting), Markdown (tables, headings never deeper than h6) and HTML (every value
//! escaped, tables, an inline SVG chart for dated series).
//!
//! Rendering is a pure function of the stored [`Report`], so a download is byte-identical
//! however often it is made, and after a replay. It lives beside the generators (not in the
//! query API) so that the CLI and the unit tests over a fixed history render the same bytes.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::Report;
use crate::costs::planner::field;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The report as pretty JSON.
    Json,
    /// The main table.
    Csv,
    /// A standalone page.
    Html,
    /// Markdown.
    Markdown,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 4] = [Self::Json, Self::Csv, Self::Html, Self::Markdown];

    /// The wire string (`?format=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
            Self::Markdown => "markdown",
        }
    }

    /// Parses a wire string.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The media type of a download.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
            Self::Markdown => "md",
        }
    }
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Csv => csv(report),
        Format::Html => html(report),
        Format::Markdown => markdown(report),
    }
}

/// The JSON pointer of each type's main table: its records are the CSV rows.
pub fn main_table_pointer(report: &Report) -> Option<&'static str> {
    use ats_events::ReportType as T;
    match report.report_type {
        T::OperatorProgress => Some("/recent_sessions"),
        T::TeamPerformance => Some("/operators"),
        T::CostSummary => Some("/breakdowns/model_usage/ranked_items"),
        T::TrendAnalysis => Some("/daily"),
        T::Compliance => Some("/operator_status"),
        _ => None,
    }
}

fn records(value: &Value) -> Vec<&Map<String, Value>> {
    value
        .as_array()
        .map(|rows| rows.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

/// Column names of `rows` in first-seen order.
fn columns<'a>(rows: &[&'a Map<String, Value>]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.keys() {
            if !out.contains(&key.as_str()) {
                out.push(key);
            }
        }
    }
    out
}

/// A value as cell text: strings raw, lists of scalars joined by `; `, other nesting as
/// compact JSON, null empty.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(is_scalar) => {
            items.iter().map(text).collect::<Vec<_>>().join("; ")
        }
        other @ (Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_)) => {
            other.to_string()
        }
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

fn csv(report: &Report) -> String {
    let rows = main_table_pointer(report)
        .and_then(|p| report.data.pointer(p))
        .map(records)
        .unwrap_or_default();
    if rows.is_empty() {
        return String::new();
    }
    let columns = columns(&rows);
    let mut out = columns
        .iter()
        .map(|c| field(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| field(&row.get(*c).map(text).unwrap_or_default()))
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `cost_per_session` → `Cost Per Session`.
fn heading(key: &str) -> String {
    key.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().collect::<String>() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Markdown allows inline HTML: `&`, `<` and `>` are written as entities so that data never
/// becomes markup where the Markdown is rendered.
fn md_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn md_cell(value: &Value) -> String {
    md_text(&text(value))
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn md_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

fn md_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let rows = records(value);
            let columns = columns(&rows);
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    columns
                        .iter()
                        .map(|c| r.get(*c).map(md_cell).unwrap_or_default())
                        .collect()
                })
                .collect();
            let header: Vec<String> = columns.iter().map(|c| heading(c)).collect();
            md_table(
                out,
                &header.iter().map(String::as_str).collect::<Vec<_>>(),
                &cells,
            );
        }
        Value::Array(items) if items.is_empty() => out.push_str("_None._\n\n"),
        Value::Array(items) => {
            for item in items {
                let _ = writeln!(out, "- {}", md_cell(item));
            }
            out.push('\n');
        }
        Value::Object(map) if map.is_empty() => out.push_str("_None._\n\n"),
        Value::Object(map) => {
            let scalars: Vec<Vec<String>> = map
                .iter()
                .filter(|(_, v)| {
                    is_scalar(v) || v.as_array().is_some_and(|a| a.iter().all(is_scalar))
                })
                .map(|(k, v)| vec![heading(k), md_cell(v)])
                .collect();
            if !scalars.is_empty() {
                md_table(out, &["Field", "Value"], &scalars);
            }
            for (key, nested) in map {
                if is_scalar(nested) || nested.as_array().is_some_and(|a| a.iter().all(is_scalar)) {
                    continue;
                }
                let _ = writeln!(out, "{} {}\n", "#".repeat(level.min(6)), heading(key));
                md_value(out, nested, level + 1);
            }
        }
        scalar => {
            let _ = writeln!(out, "{}\n", md_cell(scalar));
        }
    }
}

fn markdown(report: &Report) -> String {
    let mut out = format!(
        "# {}\n\n",
        md_text(&report.title).replace(['\n', '\r'], " ")
    );
    if !report.description.is_empty() {
        let _ = writeln!(out, "{}\n", md_text(&report.description));
    }
    let _ = writeln!(
        out,
        "**Generated:** {} · **Report ID:** {} · **Type:** {}\n",
        report.generated_at,
        report.id,
        text(&serde_json::to_value(report.report_type).unwrap_or_default())
    );
    // Top-level scalars form one table; each nested part is a section (h2, h3, … ≤ h6).
    md_value(&mut out, &report.data, 2);
    out
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A line chart of each numeric column of a dated series (records with a `date`), scaled
/// from 0 to the column's maximum.
fn chart(out: &mut String, rows: &[&Map<String, Value>]) {
    if rows.len() < 2
        || !rows
            .iter()
            .all(|r| r.get("date").is_some_and(Value::is_string))
    {
        return;
    }
    let (width, height) = (600.0_f64, 120.0_f64);
    for column in columns(rows) {
        let values: Vec<f64> = rows
            .iter()
            .map(|r| r.get(column).and_then(Value::as_f64).unwrap_or(f64::NAN))
            .collect();
        if column == "date" || values.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let max = values.iter().copied().fold(0.0_f64, f64::max);
        let step = width / (values.len() - 1) as f64;
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let y = if max > 0.0 {
                    height - v / max * height
                } else {
                    height
                };
                format!("{:.1},{:.1}", i as f64 * step, y)
            })
            .collect();
        let _ = writeln!(
            out,
            "<figure><figcaption>{} (max {})</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"-5 -5 {} {}\" role=\"img\"><polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" points=\"{}\"/></svg></figure>",
            escape(&heading(column)),
            escape(&text(&Value::from(max))),
            width + 10.0,
            height + 10.0,
            points.join(" ")
        );
    }
}

fn html_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let rows = records(value);
            chart(out, &rows);
            let columns = columns(&rows);
            out.push_str("<table><thead><tr>");
            for c in &columns {
                let _ = write!(out, "<th>{}</th>", escape(&heading(c)));
            }
            out.push_str("</tr></thead><tbody>\n");
            for row in rows {
                out.push_str("<tr>");
                for c in &columns {
                    let cell = row.get(*c).map(text).unwrap_or_default();
                    let _ = write!(out, "<td>{}</td>", escape(&cell));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody></table>\n");
        }
        Value::Array(items) if items.is_empty() => out.push_str("<p><em>None.</em></p>\n"),
        Value::Array(items) => {
            out.push_str("<ul>");
            for item in items {
                let _ = write!(out, "<li>{}</li>", escape(&text(item)));
            }
            out.push_str("</ul>\n");
        }
        Value::Object(map) if map.is_empty() => out.push_str("<p><em>None.</em></p>\n"),
        Value::Object(map) => {
            let flat =
                |v: &Value| is_scalar(v) || v.as_array().is_some_and(|a| a.iter().all(is_scalar));
            if map.values().any(flat) {
                out.push_str("<table><tbody>\n");
                for (key, v) in map.iter().filter(|(_, v)| flat(v)) {
                    let _ = writeln!(
                        out,
                        "<tr><th>{}</th><td>{}</td></tr>",
                        escape(&heading(key)),
                        escape(&text(v))
                    );
                }
                out.push_str("</tbody></table>\n");
            }
            let h = level.min(6);
            for (key, nested) in map.iter().filter(|(_, v)| !flat(v)) {
                let _ = writeln!(out, "<h{h}>{}</h{h}>", escape(&heading(key)));
                html_value(out, nested, level + 1);
            }
        }
        scalar => {
            let _ = writeln!(out, "<p>{}</p>", escape(&text(scalar)));
        }
    }
}

fn html(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
body{{font-family:Arial,sans-serif;margin:20px;color:#222}}h1{{color:#333}}h2,h3,h4,h5,h6{{color:#666}}\
table{{border-collapse:collapse;width:100%;margin-bottom:1em}}th,td{{border:1px solid #ddd;padding:8px;text-align:left}}\
th{{background:#f2f2f2}}.metadata{{color:#999;font-size:.9em}}figure{{margin:0 0 1em}}\
</style></head>\n<body><h1>{title}</h1>\n<p>{description}</p>\n<p class=\"metadata\">Generated: {generated}<br>Report ID: {id}<br>Type: {kind}</p>\n",
        title = escape(&report.title),
        description = escape(&report.description),
        generated = escape(&report.generated_at),
        id = escape(&report.id),
        kind = escape(&text(&serde_json::to_value(report.report_type).unwrap_or_default())),
    );
    html_value(&mut out, &report.data, 2);
    out.push_str("</body></html>\n");
    out
}
