//! The hardening pass: each case a hostile user found (a panic, an abort, a silent loss, a path written
//! over) stays fixed. Each test checks the exit code, that the message names the file (and line where
//! there is one), and that nothing already stored changes.

mod common;

use common::{csv_spec, smoke_csv, Sandbox};
use predicates::prelude::*;

const LSA: &str = "  kind: lsa\n  components: 5\n";

fn with_smoke(sb: &Sandbox) -> String {
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    "smoke.csv".into()
}

/// `bench run` of `spec` exits 2 with every part in its message, and writes nothing.
fn assert_rejected(sb: &Sandbox, spec: &str, expected: &[&str]) -> String {
    let path = sb.write("spec.yaml", spec);
    let out = sb.bench().arg("run").arg(&path).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for part in expected {
        assert!(stderr.contains(part), "{part:?} not in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(sb.runs_dir_is_empty(), "nothing may be written on bad input");
    stderr
}

/// Everything under the runs dir, as (path, bytes), to show that a command changed nothing.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// One smoke LSA run in the sandbox's store; returns its record's path.
fn one_run(sb: &Sandbox) -> std::path::PathBuf {
    let csv = with_smoke(sb);
    let spec = sb.write("one.yaml", csv_spec(&csv, LSA));
    sb.bench().args(["-q", "run"]).arg(&spec).assert().success();
    sb.records().remove(0)
}

// 1. Sweep values pass the same validation as values written in place, with the sweep line named.
#[test]
fn swept_dataset_settings_are_validated_at_the_sweep_line() {
    let sb = Sandbox::new();
    let base = csv_spec(&with_smoke(&sb), LSA);
    // Line 14 is the sweep key: 12 lines of spec, `sweep:` on 13.
    for (key, value, message) in [
        ("dataset.split.validation", "[1.5]", "validation fraction is 1.5"),
        ("dataset.split.validation", "[0]", "validation fraction is 0"),
        ("dataset.split.validation", "[.nan]", "NaN is not a finite number"),
        ("dataset.split.validation", "[.inf]", "inf is not a finite number"),
        ("dataset.split.validation", "[null]", "the split needs `validation`"),
        ("dataset.max_examples", "[0]", "`max_examples` must be at least 2"),
        ("dataset.negative", "[[spam]]", "listed as both positive and negative"),
        ("method.C", "[.nan]", "NaN is not a finite number"),
        ("method.C", "[-1]", "C is -1"),
    ] {
        let spec = format!("{base}sweep:\n  {key}: {value}\n");
        let lines = spec.lines().count();
        assert_rejected(&sb, &spec, &[&format!("spec.yaml:{lines}:3"), message]);
    }
}

// 2. A grid too large to expand is refused, with its size, before it is expanded.
#[test]
fn an_oversized_sweep_is_refused_before_expanding() {
    let sb = Sandbox::new();
    let base = csv_spec(&with_smoke(&sb), LSA);
    let values: Vec<String> = (1..=1000).map(|v| v.to_string()).collect();
    let list = format!("[{}]", values.join(", "));
    let spec = format!("{base}sweep:\n  method.components: {list}\n  method.C: {list}\n");
    let path = sb.write("spec.yaml", &spec);
    let started = std::time::Instant::now();
    let a = sb.bench().args(["run", "--dry-run"]).arg(&path).assert().code(2);
    assert!(started.elapsed().as_secs() < 20, "refused before expanding");
    let err = stderr_of(&a);
    assert!(err.contains("spec.yaml:13:1") && err.contains("1000000 runs (1000 × 1000 × 1 seeds)") && err.contains("--max-runs"), "{err}");

    // The limit is a flag: 12 runs pass at 12 and are refused at 11.
    let spec = format!("{base}seeds: [0, 1, 2]\nsweep:\n  method.components: [2, 3, 4, 5]\n");
    let path = sb.write("small.yaml", &spec);
    sb.bench().args(["--max-runs", "12", "run", "--dry-run"]).arg(&path).assert().success();
    sb.bench().args(["--max-runs", "11", "run", "--dry-run"]).arg(&path).assert().code(2).stderr(predicate::str::contains("12 runs"));
}

// 3. A record that parses but holds what no run writes is skipped (list, report) or refused (show,
// predict) with its file named; never a panic.
#[test]
fn records_with_odd_fields_are_skipped_with_a_warning() {
    let sb = Sandbox::new();
    let good = one_run(&sb);
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
    let id = "00000000000000aa";
    record["id"] = id.into();
    let odd = sb.runs_dir().join(format!("{id}.json"));
    for fingerprint in ["abc", "ab€cdefghijklmnopqrstuvwxyz"] {
        record["data"]["fingerprint"] = fingerprint.into();
        std::fs::write(&odd, serde_json::to_vec(&record).unwrap()).unwrap();
        let before = snapshot(&sb.runs_dir());
        let a = sb.bench().args(["show", id]).assert().code(2);
        let err = stderr_of(&a);
        assert!(err.contains(&format!("{id}.json")) && err.contains("fingerprint"), "{err}");
        let a = sb.bench().args(["list"]).assert().success();
        assert!(stderr_of(&a).contains(&format!("{id}.json")), "the skipped file is named");
        let out = sb.path().join("report/index.html");
        let a = sb.bench().arg("report").arg("--out").arg(&out).arg("--no-png").assert().success();
        assert!(stderr_of(&a).contains(&format!("{id}.json")));
        assert!(!stderr_of(&a).contains("panicked"));
        assert_eq!(snapshot(&sb.runs_dir()), before, "the store is unchanged");
    }
}

// 4. `report --out` never replaces what is not a regular file, and writes charts only into its folder.
#[test]
fn report_out_refuses_fifos_links_and_folders_and_leaves_them() {
    let sb = Sandbox::new();
    one_run(&sb);
    let fifo = sb.path().join("pipe.html");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let target = sb.write("target.txt", "keep me");
    let link = sb.path().join("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let folder = sb.path().join("folder.html");
    std::fs::create_dir(&folder).unwrap();
    for (out, kind) in [(&fifo, "a device, pipe or socket"), (&link, "a symbolic link"), (&folder, "a folder")] {
        let a = sb.bench().arg("report").arg("--out").arg(out).assert().code(2);
        let err = stderr_of(&a);
        assert!(err.contains(out.to_str().unwrap()) && err.contains(kind), "{err}");
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(std::fs::read_dir(&folder).unwrap().next().is_none());
    assert!(!sb.path().join("charts").exists(), "no chart written beside a refused page");

    // A `charts` beside the page that is a link elsewhere is refused too.
    let elsewhere = sb.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::create_dir(sb.path().join("r")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, sb.path().join("r/charts")).unwrap();
    sb.bench().arg("report").arg("--out").arg(sb.path().join("r/index.html")).assert().code(2);
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
}

// 12 (last). Temporary chart files a killed report left are cleared by the next report.
#[test]
fn report_clears_what_a_killed_report_left() {
    let sb = Sandbox::new();
    one_run(&sb);
    let stale = sb.write("r/charts/.tmp-abc123", "half a chart");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(old).unwrap();
    sb.bench().arg("report").arg("--no-png").arg("--out").arg(sb.path().join("r/index.html")).assert().success();
    assert!(!stale.exists());
}

/// The data rows a run kept and why it skipped the others.
fn load_report(sb: &Sandbox) -> serde_json::Value {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&sb.records()[0]).unwrap()).unwrap();
    r["data"]["load_report"].clone()
}

/// 40 rows, 10 spam, numbered text; `edit` changes the lines before they are joined.
fn rows(sep: char, edit: impl Fn(usize, String) -> String) -> String {
    let mut out = format!("text{sep}label\n");
    for i in 0..40 {
        let label = if i % 4 == 0 { "spam" } else { "ham" };
        let text = if label == "spam" { format!("win cash prize now {i}") } else { format!("see you at lunch {i}") };
        out.push_str(&edit(i, format!("{text}{sep}{label}")));
        out.push('\n');
    }
    out
}

// 5. TSV is not quoted: a text starting with a quote is a text. In CSV, a quote that never closes is
// reported at its line, and the rows after it are read.
#[test]
fn stray_quotes_neither_merge_nor_drop_rows() {
    let sb = Sandbox::new();
    sb.write("q.tsv", rows('\t', |i, l| if i == 5 { format!("\"{l}") } else { l }));
    let spec = csv_spec("q.tsv", LSA).replace("format: csv", "format: tsv");
    sb.bench().args(["-q", "run"]).arg(sb.write("t.yaml", spec)).assert().success();
    let rep = load_report(&sb);
    assert_eq!((rep["rows_read"].as_u64(), rep["malformed_rows"].as_u64()), (Some(40), Some(0)), "{rep}");

    let sb = Sandbox::new();
    sb.write("q.csv", rows(',', |i, l| if i == 37 { format!("\"{l}") } else { l }));
    let a = sb.bench().arg("run").arg(sb.write("c.yaml", csv_spec("q.csv", LSA))).assert().success();
    let rep = load_report(&sb);
    assert_eq!((rep["rows_read"].as_u64(), rep["malformed_rows"].as_u64()), (Some(40), Some(1)), "{rep}");
    assert_eq!(rep["malformed_examples"][0]["line"], 39, "{rep}");
    assert!(rep["malformed_examples"][0]["reason"].as_str().unwrap().contains("never closed"), "{rep}");
    assert!(stderr_of(&a).contains("1 row skipped (1 stray quote)"), "{}", stderr_of(&a));

    // A quote closed several rows later swallows them: reported at its line, and the rows read.
    let sb = Sandbox::new();
    let csv = rows(',', |i, l| match i {
        5 => format!("\"{l}"),
        9 => l.replacen(' ', "\" ", 1),
        _ => l,
    });
    sb.write("q.csv", csv);
    sb.bench().args(["-q", "run"]).arg(sb.write("c.yaml", csv_spec("q.csv", LSA))).assert().success();
    let rep = load_report(&sb);
    assert_eq!(rep["malformed_examples"][0]["line"], 7, "{rep}");
    assert_eq!(rep["rows_read"].as_u64(), Some(40), "{rep}");
}

// 6. Line numbers are right in CRLF files.
#[test]
fn crlf_files_report_the_right_line() {
    let sb = Sandbox::new();
    let csv = rows(',', |i, l| if i == 2 { "just one field".into() } else { l }).replace('\n', "\r\n");
    sb.write("crlf.csv", csv);
    sb.bench().args(["-q", "run"]).arg(sb.write("c.yaml", csv_spec("crlf.csv", LSA))).assert().success();
    let rep = load_report(&sb);
    assert_eq!(rep["malformed_examples"][0]["line"], 4, "{rep}");
    assert_eq!(rep["skipped"]["wrong_field_count"], 1, "{rep}");
}

// 7. A runs dir that cannot take records is found before anything is computed, and said once.
#[test]
fn an_unwritable_runs_dir_is_refused_before_computing() {
    let sb = Sandbox::new();
    let spec = sb.write("s.yaml", csv_spec(&with_smoke(&sb), LSA));
    let file = sb.write("not-a-dir", "x");
    let a = sb.bench().arg("--runs-dir").arg(&file).arg("run").arg(&spec).assert().code(2);
    let err = stderr_of(&a);
    assert_eq!(err.matches("cannot write run records").count(), 1, "{err}");
    assert!(err.contains("not-a-dir") && !err.contains("acc "), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

// 8. The same run asked for by two specs of one invocation executes once, and its record names both.
#[test]
fn a_run_shared_by_two_specs_executes_once() {
    let sb = Sandbox::new();
    let csv = with_smoke(&sb);
    let a = sb.write("a.yaml", format!("name: a\n{}seeds: [0, 1, 2]\n", csv_spec(&csv, LSA)));
    let b = sb.write("b.yaml", format!("name: b\n{}seeds: [1, 2, 3]\n", csv_spec(&csv, LSA)));
    let out = sb.bench().arg("run").arg(&a).arg(&b).assert().success();
    let err = stderr_of(&out);
    let executed = err.lines().filter(|l| l.contains(" seed ") && l.contains(" acc ")).count();
    assert_eq!(executed, 4, "{err}");
    assert!(err.contains("4 run(s) (2 asked for by more than one spec): 4 ran"), "{err}");
    assert_eq!(sb.records().len(), 4);
    let listed = |spec: &str| {
        let o = sb.bench().args(["list", "--spec", spec]).assert().success();
        String::from_utf8_lossy(&o.get_output().stdout).lines().count() - 1
    };
    assert_eq!((listed("a"), listed("b")), (3, 3));
    // A later spec that asks for done runs adds its name without running them.
    let c = sb.write("c.yaml", format!("name: c\n{}seeds: [0]\n", csv_spec(&csv, LSA)));
    sb.bench().args(["-q", "run"]).arg(&c).assert().success();
    assert_eq!(listed("c"), 1);
    assert_eq!(listed("a"), 3);
}

// 9. A path at a file that is not a table does not echo its content.
#[test]
fn a_non_table_file_is_not_echoed() {
    let sb = Sandbox::new();
    sb.write("secrets", "root:$6$saltsalt$verysecrethash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
    let stderr = assert_rejected(&sb, &csv_spec("secrets", LSA), &["secrets:1:1", "not a CSV header"]);
    assert!(!stderr.contains("verysecrethash"), "{stderr}");
    // Column names are shown only cut short, and at most 20.
    let long: Vec<String> = (0..30).map(|i| format!("column_{i}_{}", "x".repeat(60))).collect();
    sb.write("wide.csv", format!("{}\n", long.join(",")));
    let stderr = assert_rejected(&sb, &csv_spec("wide.csv", LSA), &["no column named \"text\"", "… 10 more"]);
    assert!(!stderr.contains(&"x".repeat(45)) && !stderr.contains("column_25"), "{stderr}");
}

// 10. Skipped rows are said on the run line and counted by reason in --dry-run.
#[test]
fn skipped_rows_are_announced() {
    let sb = Sandbox::new();
    sb.write("odd.csv", rows(',', |i, l| if i % 2 == 1 { l.replace("ham", "maybe") } else { l }));
    let spec = sb.write("s.yaml", csv_spec("odd.csv", LSA));
    let a = sb.bench().args(["run", "--dry-run"]).arg(&spec).assert().success();
    assert!(String::from_utf8_lossy(&a.get_output().stdout).contains("20 rows skipped (20 unknown label)"));
    let a = sb.bench().arg("run").arg(&spec).assert().success();
    assert!(stderr_of(&a).contains("20 rows skipped (20 unknown label)"), "{}", stderr_of(&a));
}

// 11. Each run's peak memory is its own, and the record says how it was measured.
#[test]
fn peak_memory_is_measured_per_run_and_described() {
    let sb = Sandbox::new();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(one_run(&sb)).unwrap()).unwrap();
    assert!(r["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert!(r["peak_memory_method"].as_str().unwrap().contains("reset at its start"), "{r}");
    assert!(r["peak_memory_baseline_bytes"].as_u64().unwrap() < r["peak_memory_bytes"].as_u64().unwrap());
}

// 12. The smaller ones: each a clear message, exit 2, nothing written.
#[test]
fn small_cases_get_clear_messages() {
    let sb = Sandbox::new();
    // A 0-byte CSV.
    sb.write("empty.csv", "");
    assert_rejected(&sb, &csv_spec("empty.csv", LSA), &["empty.csv", "the file is empty"]);
    // A JSONL with a byte-order mark: its first row is a row.
    let mut jsonl = "\u{feff}".to_string();
    for i in 0..40 {
        jsonl.push_str(&format!(
            "{{\"text\": \"message {i} {}\", \"label\": \"{}\"}}\n",
            if i % 4 == 0 { "win cash" } else { "lunch" },
            if i % 4 == 0 { "spam" } else { "ham" }
        ));
    }
    jsonl.push_str("[1, 2]\n");
    sb.write("bom.jsonl", jsonl);
    let spec = csv_spec("bom.jsonl", LSA).replace("format: csv", "format: jsonl");
    sb.bench().args(["-q", "run"]).arg(sb.write("j.yaml", spec)).assert().success();
    let rep = load_report(&sb);
    assert_eq!((rep["rows_read"].as_u64(), rep["malformed_rows"].as_u64()), (Some(41), Some(1)), "{rep}");
    assert!(rep["malformed_examples"][0]["reason"].as_str().unwrap().starts_with("column 1:"), "{rep}");

    let sb = Sandbox::new();
    let csv = with_smoke(&sb);
    // batch_size 0 is located.
    let spec = csv_spec(&csv, "  kind: finetune\n  batch_size: 0\n");
    assert_rejected(&sb, &spec, &["spec.yaml:12:3", "batch_size is 0"]);
    // Components past any data are refused at their line.
    let spec = csv_spec(&csv, "  kind: lsa\n  components: 18446744073709551615\n");
    assert_rejected(&sb, &spec, &["spec.yaml:12:3", "components is 18446744073709551615"]);
    let spec = csv_spec(&csv, "  kind: lsa\n  svd_oversamples: 18446744073709551615\n");
    assert_rejected(&sb, &spec, &["spec.yaml:12:3", "svd_oversamples"]);
    // embed --max-length under 2.
    sb.bench().args(["embed", "--model", "x", "--max-length", "1", "hi"]).assert().code(2).stderr(predicate::str::contains("max-length"));
    // predict: an empty text, a missing --file, a --file that is not UTF-8, a path as a run id.
    sb.bench().args(["predict", "--run", "abcd", ""]).assert().code(2).stderr(predicate::str::contains("text 1 is empty"));
    sb.bench().args(["predict", "--run", "abcd", "--file", "nope.txt"]).assert().code(2).stderr(predicate::str::contains("nope.txt"));
    let latin = sb.write("latin.txt", b"caf\xe9\n");
    sb.bench().args(["predict", "--run", "abcd", "--file"]).arg(&latin).assert().code(2).stderr(predicate::str::contains("latin.txt:1:4: not valid UTF-8"));
    sb.bench().args(["predict", "--run", "../elsewhere/0123456789abcdef", "hi"]).assert().code(2).stderr(predicate::str::contains("is not a run id"));
    sb.bench().args(["show", "../../etc/passwd"]).assert().code(2).stderr(predicate::str::contains("is not a run id"));
}

#[test]
fn a_corrupt_record_is_named_as_unreadable() {
    let sb = Sandbox::new();
    let good = one_run(&sb);
    let id = good.file_stem().unwrap().to_string_lossy().into_owned();
    std::fs::write(&good, b"{\"schema\": 1, \"id\": ").unwrap();
    for cmd in [&["show", &id[..6]][..], &["predict", "--run", &id[..6], "hello"]] {
        let a = sb.bench().args(cmd).assert().code(2);
        let err = stderr_of(&a);
        assert!(err.contains(&format!("{id}.json")) && err.contains("not a valid run record"), "{err}");
    }
}

#[test]
fn logs_to_a_pipe_have_no_colour() {
    let sb = Sandbox::new();
    with_smoke(&sb);
    let spec = sb.write("s.yaml", csv_spec("smoke.csv", LSA));
    let a = sb.bench().args(["-vv", "run"]).arg(&spec).assert().success();
    let err = stderr_of(&a);
    assert!(err.contains("loaded"), "info logs shown: {err}");
    assert!(!err.contains('\u{1b}'), "no ANSI escapes in: {err}");
}

// 14. Every committed spec's floors: the Jigsaw transformer floors sit under PyTorch's figure on the
// identical split (0.9189), which their comments cite.
#[test]
fn jigsaw_transformer_floors_cite_pytorch_on_the_same_split() {
    for name in ["jigsaw-finetune", "jigsaw-lora"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("experiments/{name}.yaml"));
        let spec = textbench::spec::Spec::load(&path).unwrap();
        let floor = spec.floors.values().next().copied().unwrap();
        assert_eq!(floor, 0.91, "{name}");
        assert!(std::fs::read_to_string(&path).unwrap().contains("0.9189"), "{name} cites PyTorch's figure");
    }
}
