//! docs/grafana.json against the real binary's `/metrics`: every query asks only for metrics the
//! server exports, and every metric the server exports is charted (or named below, with why not).

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

/// Exported metric families the dashboard knowingly leaves out, each with the reason.
const NOT_CHARTED: &[(&str, &str)] = &[];

/// Families a server exports only with `--redis` (docs/CLUSTER.md): charted, though the plain
/// server this test scrapes does not export them.
const ONLY_WITH_REDIS: &[&str] = &[
    "smolcanvas_redis_up",
    "smolcanvas_redis_appends_total",
    "smolcanvas_redis_errors_total",
    "smolcanvas_redis_snapshots_total",
];

const DASHBOARD: &str = include_str!("../docs/grafana.json");

/// What `/metrics` exports: the families (`# TYPE` lines) and the names on the sample lines.
struct Exported {
    families: BTreeSet<String>,
    samples: BTreeSet<String>,
}

fn scrape(process: &Process) -> Exported {
    let response = smol::block_on(request(process.addr, "GET", "/metrics"));
    assert_eq!(response.status, 200);
    let text = response.text();
    let mut families = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split(' ').next().unwrap_or_default().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            samples.insert(name.to_string());
        }
    }
    Exported { families, samples }
}

/// Every `smolcanvas_[a-z0-9_]+` identifier in a PromQL query.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("smolcanvas_") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at..];
        let len =
            after.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(after.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            names.push(after[..len].to_string());
        }
        rest = &after[len..];
    }
    names
}

/// The dashboard's panels, with those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let top = dashboard["panels"].as_array().expect("the dashboard has a panels array");
    let mut all = Vec::new();
    for panel in top {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// Every target `expr` of every panel, with the panel's title.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push((title.clone(), expr.to_string()));
            }
        }
    }
    queries
}

/// The queries of the dashboard's template variables.
fn variable_queries(dashboard: &Value) -> Vec<String> {
    let variables = dashboard["templating"]["list"].as_array().into_iter().flatten();
    variables.filter_map(|variable| variable["definition"].as_str()).map(str::to_string).collect()
}

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).unwrap_or_else(|err| panic!("docs/grafana.json is not valid JSON: {err}"))
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_whose_panels_all_have_queries() {
    let dashboard = dashboard();
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "a current schemaVersion");
    let input = &dashboard["__inputs"][0];
    assert_eq!(input["name"], "DS_PROMETHEUS");
    assert_eq!(input["pluginId"], "prometheus");
    let panels = panels(&dashboard);
    assert!(!panels.is_empty(), "the dashboard has no panels");
    for panel in panels.iter().filter(|panel| panel["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}: the imported datasource");
        let targets = panel["targets"].as_array().map_or(0, Vec::len);
        assert!(targets > 0, "{title}: no targets");
    }
}

#[test]
fn every_dashboard_query_uses_exported_metrics_and_every_exported_metric_is_charted() {
    let dir = TempDir::new("dashboard");
    let process = Process::start(dir.path());
    let exported = scrape(&process);
    assert!(exported.families.len() > 10, "few metrics exported: {:?}", exported.families);
    for sample in &exported.samples {
        assert!(exported.families.contains(sample), "{sample} has no # TYPE line");
    }

    let dashboard = dashboard();
    let queries = panel_queries(&dashboard);
    let mut charted = BTreeSet::new();
    for (title, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{title}: no smolcanvas metric in {expr}");
        for name in names {
            let exported = exported.samples.contains(&name) || ONLY_WITH_REDIS.contains(&name.as_str());
            assert!(exported, "{title}: {name} is not exported (in {expr})");
            charted.insert(name);
        }
    }
    for expr in variable_queries(&dashboard) {
        for name in metric_names(&expr) {
            assert!(exported.samples.contains(&name), "template variable: {name} is not exported (in {expr})");
        }
    }

    for name in ONLY_WITH_REDIS {
        assert!(charted.contains(*name), "{name} (exported with --redis) is in no panel");
        assert!(!exported.families.contains(*name), "{name} is exported without --redis: list it no more");
    }
    for (name, why) in NOT_CHARTED {
        assert!(exported.families.contains(*name), "{name} is listed as not charted ({why}) but not exported");
        assert!(!charted.contains(*name), "{name} is listed as not charted ({why}) but a panel charts it");
    }
    let left_out: Vec<&String> = exported
        .families
        .iter()
        .filter(|family| !charted.contains(*family) && !NOT_CHARTED.iter().any(|(name, _)| name == family))
        .collect();
    assert!(
        left_out.is_empty(),
        "exported but in no panel of docs/grafana.json (chart them or list them): {left_out:?}"
    );
}

#[test]
fn metric_names_are_read_from_promql() {
    let expr =
        r#"sum by (reason) (rate(smolcanvas_upgrades_rejected_total{instance=~"$instance"}[5m])) / my_smolcanvas_x"#;
    assert_eq!(metric_names(expr), ["smolcanvas_upgrades_rejected_total"]);
    assert_eq!(metric_names("smolcanvas_a + smolcanvas_b_total"), ["smolcanvas_a", "smolcanvas_b_total"]);
}
