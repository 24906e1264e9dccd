//! The JSON Schema document of the events this engine accepts.

// A test fails by panicking: `unwrap` is its assertion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use ats_events::schema::event_json_schema;
use ats_events::EventKind;
use serde_json::Value;

fn kinds() -> Vec<&'static str> {
    EventKind::ALL.iter().map(|k| k.as_str()).collect()
}

#[test]
fn the_type_enum_lists_every_kind_in_catalogue_order() {
    let schema = event_json_schema();
    let listed: Vec<&str> = schema["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, kinds());
}

#[test]
fn every_kind_has_a_definition_and_a_rule() {
    let schema = event_json_schema();
    let defs = schema["$defs"].as_object().unwrap();
    for kind in kinds() {
        let def = &defs
            .get(kind)
            .unwrap_or_else(|| panic!("no $defs entry for {kind}"));
        assert_eq!(def["type"], "object", "{kind}");
        assert!(def["properties"].is_object(), "{kind} has no properties");
    }
    let rules: Vec<(&str, &str)> = schema["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let kind = rule["if"]["properties"]["type"]["const"].as_str().unwrap();
            let target = rule["then"]["properties"]["data"]["$ref"].as_str().unwrap();
            (kind, target)
        })
        .collect();
    let expected: Vec<(&str, String)> = kinds()
        .into_iter()
        .map(|k| (k, format!("#/$defs/{k}")))
        .collect();
    let expected: Vec<(&str, &str)> = expected.iter().map(|(k, t)| (*k, t.as_str())).collect();
    assert_eq!(rules, expected);
}

#[test]
fn required_data_fields_follow_the_catalogue() {
    let schema = event_json_schema();
    let required = |kind: &str| -> BTreeSet<String> {
        schema["$defs"][kind]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let set =
        |fields: &[&str]| -> BTreeSet<String> { fields.iter().map(|f| (*f).to_owned()).collect() };
    // The bold fields of DOMAIN.md §A1.
    assert_eq!(
        required("ats.skill.assessed"),
        set(&["operator_id", "skill", "score"])
    );
    assert_eq!(
        required("ats.llm.usage"),
        set(&[
            "model",
            "profile_id",
            "session_id",
            "task_type",
            "input_tokens",
            "output_tokens"
        ])
    );
    assert_eq!(required("ats.budget.set"), set(&["scope", "amount"]));
    assert_eq!(required("ats.report.deleted"), set(&["report_id"]));
}

/// Every `$ref` string in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn references_are_json_schema_defs_that_exist() {
    let schema = event_json_schema();
    assert!(!schema.to_string().contains("#/components/schemas/"));
    let defs = schema["$defs"].as_object().unwrap();
    let mut targets = Vec::new();
    refs(&schema, &mut targets);
    // The payloads refer to their nested types (metrics, enums) as well as the rules to kinds.
    assert!(targets.contains(&"#/$defs/MetricType"), "{targets:?}");
    for target in targets {
        let name = target
            .strip_prefix("#/$defs/")
            .unwrap_or_else(|| panic!("{target} is not a local $defs reference"));
        assert!(defs.contains_key(name), "{target} has no definition");
    }
}
