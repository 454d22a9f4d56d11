//! Records written by the version before class sets (schema 1, binary, no class names) still load, list,
//! show, check and report exactly as that version printed them. The records in
//! tests/data/v1-records/runs and the expected outputs beside them were written by textbench at commit
//! 92e0973 (`bench run experiments/smoke-*.yaml`, then `bench list`, `show`, `report --format md` and
//! `check` on those records); the store is copied to a temporary folder so that nothing writes into it.

mod common;

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1-records")
}

/// `bench --runs-dir <copy of the fixtures> ARGS` from the project root; its standard output.
fn bench(args: &[&str]) -> String {
    let sb = common::Sandbox::new();
    let runs = sb.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    for entry in std::fs::read_dir(fixtures().join("runs")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, runs.join(p.file_name().unwrap())).unwrap();
    }
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--runs-dir")
        .arg(&runs)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "bench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixtures().join("expected").join(name)).unwrap()
}

#[test]
fn old_records_list_show_and_report_as_before() {
    assert_eq!(bench(&["list"]), expected("list.txt"));
    assert_eq!(bench(&["show", "268cabf6"]), expected("show-lsa.txt"));
    assert_eq!(bench(&["show", "efa2d85e"]), expected("show-frozen.txt"));
    assert_eq!(bench(&["report", "--format", "md"]), expected("report.md"));
}

#[test]
fn old_records_check_against_todays_specs_as_before() {
    let specs = ["experiments/smoke-lsa.yaml", "experiments/smoke-frozen.yaml", "experiments/smoke-finetune.yaml"];
    let mut args = vec!["check"];
    args.extend(specs);
    assert_eq!(bench(&args), expected("check.txt"));
}
