//! `bench report` end to end: every text that comes from a record (spec names, dataset names, sweep
//! values, errors, texts of mistakes, machine names) comes out escaped in the HTML, the SVG charts and the
//! Markdown; the page references nothing outside itself; failed runs are listed, not dropped.

mod common;

use common::{csv_spec, smoke_csv, Sandbox};
use predicates::prelude::*;

const NASTY: &str = "<script>alert(\"x\")</script> & 'quotes' \"double\" naïve café 日本語";

fn read_json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn write_json(p: &std::path::Path, v: &serde_json::Value) {
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// Two LSA variants on the smoke sample (a sweep over C, so they share a split), stored, then doctored
/// the way records from another machine could be.
fn doctored_runs(sb: &Sandbox) {
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let spec =
        sb.write("smoke.yaml", format!("name: smoke-report\n{}sweep:\n  method.C: [0.01, 10]\n", csv_spec("smoke.csv", "  kind: lsa\n  components: 20\n")));
    sb.bench().args(["run"]).arg(&spec).assert().success();
    let records = sb.records();
    assert_eq!(records.len(), 2);
    for (i, path) in records.iter().enumerate() {
        let mut r = read_json(path);
        r["spec"]["name"] = format!("{NASTY} #{i}").into();
        r["data"]["name"] = NASTY.into();
        r["environment"]["hostname"] = NASTY.into();
        r["sweep_point"]["method.C"] = NASTY.into();
        // A confident mistake whose text is hostile.
        let preds = r["predictions"].as_array_mut().unwrap();
        let label = preds[0]["label"].as_bool().unwrap();
        preds[0]["probability"] = if label { 0.001 } else { 0.999 }.into();
        preds[0]["text"] = NASTY.into();
        write_json(path, &r);
    }
    // A failed run whose error message is hostile.
    let mut failed = read_json(&records[0]);
    failed["id"] = "00badbadbadbad00".into();
    failed["config_hash"] = "0000000000000000".into();
    failed["status"] = "failed".into();
    failed["error"] = format!("<img src=x onerror=alert(1)> {NASTY}").into();
    for key in ["metrics", "curves"] {
        failed.as_object_mut().unwrap().remove(key);
    }
    failed["predictions"] = serde_json::json!([]);
    write_json(&sb.runs_dir().join("00badbadbadbad00.json"), &failed);
}

#[test]
fn report_escapes_record_text_and_loads_nothing_from_outside() {
    let sb = Sandbox::new();
    doctored_runs(&sb);
    sb.bench().args(["report", "--out", "out/index.html"]).assert().success().stderr(predicate::str::contains("wrote"));
    let html = std::fs::read_to_string(sb.path().join("out/index.html")).unwrap();

    // No markup from the records survives as markup: the page has no script element at all.
    assert!(!html.to_lowercase().contains("<script"), "a <script> tag came through");
    assert!(!html.contains("<img"), "an <img> tag came through");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'quotes' &quot;double&quot;"), "texts are shown escaped");
    assert!(html.contains("naïve café 日本語"), "non-ASCII text is kept as it is");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "the failed run's error is listed, escaped");
    assert!(html.contains("00badbadbadbad00"), "the failed run is in the provenance table");

    // Self-contained: no tag fetches anything (the SVG namespace is a name, not a request). Every '<'
    // left in the page starts real markup, since the texts' are escaped.
    for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap()) {
        let tag = tag.replace("http://www.w3.org/2000/svg", "");
        for needle in ["http:", "https:", " src=", "url(", "@import"] {
            assert!(!tag.contains(needle), "a tag refers to something outside the page: <{tag}>");
        }
        assert!(!tag.starts_with("link") && !tag.starts_with("img") && !tag.starts_with("iframe"), "<{tag}>");
    }
    assert!(!html.contains("@import") && !html.contains("url("), "the style sheet loads nothing");
    assert!(html.contains("Content-Security-Policy"));

    // Every section is there.
    for heading in [
        "Leaderboard",
        "Main metrics",
        "Confusion matrices",
        "ROC and precision–recall",
        "Cost against quality",
        "Significance",
        "The data",
        "Most confident mistakes",
        "Provenance",
    ] {
        assert!(html.contains(heading), "no {heading} section");
    }
    assert!(html.contains("exact McNemar"), "the two variants share a split and are compared");

    // The charts, as files too; plotters escapes its text.
    let charts: Vec<_> = std::fs::read_dir(sb.path().join("out/charts")).unwrap().map(|e| e.unwrap().path()).collect();
    let svgs: Vec<_> = charts.iter().filter(|p| p.extension().is_some_and(|e| e == "svg")).collect();
    let pngs = charts.iter().filter(|p| p.extension().is_some_and(|e| e == "png")).count();
    assert!(svgs.len() >= 7, "{} charts", svgs.len());
    assert_eq!(pngs, svgs.len(), "a PNG beside each SVG");
    for svg in svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(!text.contains("<script"), "{} has a script tag", svg.display());
    }
    let png = std::fs::read(charts.iter().find(|p| p.extension().is_some_and(|e| e == "png")).unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Markdown: cells escaped too.
    let md = sb.bench().args(["report", "--format", "md"]).output().unwrap();
    assert!(md.status.success());
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("| method |") && !md.contains("<script"), "{md}");
}

#[test]
fn report_filters_and_refuses_an_empty_selection() {
    let sb = Sandbox::new();
    sb.bench().args(["report"]).assert().code(2).stderr(predicate::str::contains("no runs"));
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let spec = sb.write("a.yaml", format!("name: only-a\n{}seeds: [0, 1, 2]\n", csv_spec("smoke.csv", "  kind: lsa\n  components: 10\n")));
    sb.bench().args(["run"]).arg(&spec).assert().success();
    sb.bench().args(["report", "nothing-like-this", "--no-png"]).assert().code(2).stderr(predicate::str::contains("matches the filters"));
    sb.bench().args(["report", "--no-png", "--out", "r.html"]).arg(&spec).assert().success();
    let html = std::fs::read_to_string(sb.path().join("r.html")).unwrap();
    assert!(html.contains("only-a"));
    // Three seeds of one configuration: one leaderboard row, mean ± std.
    let md = String::from_utf8(sb.bench().args(["report", "--format", "md"]).output().unwrap().stdout).unwrap();
    let row = md.lines().find(|l| l.starts_with("| only-a")).unwrap_or_else(|| panic!("no row in {md}"));
    assert!(row.contains("| 3 |") && row.contains("±"), "{row}");
    assert_eq!(md.lines().filter(|l| l.starts_with("| only-a")).count(), 1);
    let id = read_json(&sb.records()[0])["id"].as_str().unwrap().to_string();
    // The record link points at the JSON from where the page is.
    assert!(html.contains(&format!("runs/{id}.json")), "link to the record");
}
