//! The Debian package's settings against the real binary: deploy/smolcanvas.default (installed
//! as /etc/default/smolcanvas) names every `SMOLCANVAS_*` variable that `smolcanvas --help`
//! lists, once, commented out, with the value the packaged service runs with (the unit's
//! `Environment=` line, else the binary's default), sets nothing and names nothing else; and
//! the unit passes no flags, which would win over the file.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::*;

/// Reads a file of the repository.
fn repo_file(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|err| panic!("cannot read {full}: {err}"))
}

/// Every variable `--help` lists, with its default ("" when it has none). A flag's line ends
/// with `[default: VALUE]` when it has one; the line after it says `env VARIABLE`.
fn help_defaults() -> BTreeMap<String, String> {
    let output = Command::new(BIN).arg("--help").output().expect("run smolcanvas --help");
    assert!(output.status.success(), "smolcanvas --help failed: {output:?}");
    let help = String::from_utf8(output.stdout).expect("--help prints UTF-8");
    let mut vars = BTreeMap::new();
    let mut default = String::new();
    for line in help.lines().map(str::trim) {
        if line.starts_with("--") {
            default = match line.rsplit_once("[default: ") {
                Some((_, rest)) => rest.trim_end_matches(']').to_string(),
                None => String::new(),
            };
        } else if let Some(var) = line.strip_prefix("env ") {
            vars.insert(var.to_string(), default.clone());
        }
    }
    assert!(vars.contains_key("SMOLCANVAS_LISTEN"), "no variables found in --help:\n{help}");
    vars
}

/// The unit's `Environment=VARIABLE=VALUE` lines.
fn unit_environment(unit: &str) -> BTreeMap<String, String> {
    let settings = unit.lines().filter_map(|line| line.strip_prefix("Environment="));
    settings
        .map(|setting| setting.split_once('=').expect("Environment=VAR=VALUE"))
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

#[test]
fn the_defaults_file_names_every_variable_once_commented_out_with_the_service_value() {
    let help = help_defaults();
    let unit = unit_environment(&repo_file("deploy/smolcanvas.service"));
    let file = repo_file("deploy/smolcanvas.default");
    let mut named = BTreeMap::new();
    for line in file.lines().filter(|line| !line.trim().is_empty()) {
        assert!(line.starts_with('#'), "a setting is not commented out: {line:?}");
        let Some((var, value)) = line.strip_prefix('#').and_then(|rest| rest.split_once('=')) else { continue };
        if !var.starts_with("SMOLCANVAS_") || var.contains(' ') {
            continue;
        }
        assert!(help.contains_key(var), "{var} is in the file but smolcanvas --help does not list it");
        assert!(named.insert(var.to_string(), value.to_string()).is_none(), "{var} is in the file twice");
    }
    for (var, default) in &help {
        let expected = unit.get(var).unwrap_or(default);
        match named.get(var) {
            None => panic!("deploy/smolcanvas.default lacks `#{var}={expected}`"),
            Some(value) => assert_eq!(value, expected, "#{var}= in deploy/smolcanvas.default"),
        }
    }
    for var in unit.keys() {
        assert!(help.contains_key(var), "the unit sets {var}, which smolcanvas --help does not list");
    }
}

#[test]
fn the_unit_runs_the_packaged_binary_without_flags_and_reads_the_defaults_file() {
    let unit = repo_file("deploy/smolcanvas.service");
    let exec: Vec<&str> = unit.lines().filter(|line| line.starts_with("ExecStart=")).collect();
    assert_eq!(exec, ["ExecStart=/usr/bin/smolcanvas"], "flags would win over /etc/default/smolcanvas");
    assert!(unit.lines().any(|line| line == "EnvironmentFile=-/etc/default/smolcanvas"), "{unit}");
}
