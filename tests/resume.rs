//! A sweep killed with SIGKILL leaves only complete records; running it again finishes the rest.

mod common;

use std::time::{Duration, Instant};

use common::{csv_spec, synthetic_csv, Sandbox};
use predicates::prelude::*;

const RUNS: usize = 12;

#[test]
fn killed_sweep_resumes_where_it_stopped() {
    let sb = Sandbox::new();
    sb.write("data.csv", synthetic_csv(6000, 11));
    let seeds: Vec<String> = (0..RUNS).map(|s| s.to_string()).collect();
    let spec = sb.write("s.yaml", csv_spec("data.csv", "  kind: lsa\n  components: 150\n  svd_iterations: 7\n") + &format!("seeds: [{}]\n", seeds.join(", ")));

    let mut child = sb.bench_process().args(["-q", "run"]).arg(&spec).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while sb.records().is_empty() {
        assert!(Instant::now() < deadline, "no record appeared");
        assert!(child.try_wait().unwrap().is_none(), "bench exited before the first record");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let done = sb.records();
    assert!(!done.is_empty() && done.len() < RUNS, "killed mid-sweep: {} of {RUNS} records", done.len());
    for p in &done {
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: partial record: {e}", p.display()));
        assert_eq!(r["status"], "ok");
    }

    sb.bench().args(["run"]).arg(&spec).assert().success().stderr(predicate::str::contains(format!(
        "{} ran, {} already done (skipped), 0 failed",
        RUNS - done.len(),
        done.len()
    )));
    assert_eq!(sb.records().len(), RUNS);
    // The records written before the kill were not touched.
    for p in &done {
        assert!(sb.records().contains(p));
    }
}
