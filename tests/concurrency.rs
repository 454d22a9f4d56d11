//! Several `bench run` processes on one runs directory execute each run exactly once between them, and
//! all finish: three processes started together on overlapping specs (twelve LSA runs in all).
//! It passed 20 runs in a row locally (`for i in $(seq 20); do cargo test --release -q --test concurrency; done`).

mod common;

use std::collections::HashMap;

use common::{csv_spec, synthetic_csv, Sandbox};

#[test]
fn three_processes_share_one_store_and_run_each_run_once() {
    let sb = Sandbox::new();
    sb.write("data.csv", synthetic_csv(1500, 7));
    let method = "  kind: lsa\n  components: 30\n";
    // Seeds 0-7, 4-11 and every even seed: twelve distinct runs, most asked for twice.
    let specs = [("a", "[0, 1, 2, 3, 4, 5, 6, 7]"), ("b", "[4, 5, 6, 7, 8, 9, 10, 11]"), ("c", "[0, 2, 4, 6, 8, 10]")];
    let paths: Vec<_> = specs
        .iter()
        .map(|(name, seeds)| sb.write(&format!("{name}.yaml"), format!("name: {name}\n{}seeds: {seeds}\n", csv_spec("data.csv", method))))
        .collect();
    let children: Vec<_> = paths
        .iter()
        .map(|p| sb.bench_process().arg("run").arg(p).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    let mut executed: HashMap<String, usize> = HashMap::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        // A run this process executed prints its metrics line; one it left to another prints no metrics.
        for line in err.lines().filter(|l| l.contains(" acc ") && l.contains(" seed ")) {
            *executed.entry(line[..16].to_string()).or_default() += 1;
        }
    }
    assert_eq!(executed.len(), 12, "{executed:?}");
    assert!(executed.values().all(|&n| n == 1), "each run executed once: {executed:?}");

    let records = sb.records();
    assert_eq!(records.len(), 12);
    let expected: HashMap<u64, Vec<&str>> = (0..12)
        .map(|seed| {
            let asked: Vec<&str> =
                specs.iter().filter(|(_, s)| s.trim_matches(['[', ']']).split(", ").any(|x| x == seed.to_string())).map(|(n, _)| *n).collect();
            (seed, asked)
        })
        .collect();
    for path in &records {
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).expect("every record is valid JSON");
        assert_eq!(r["status"], "ok");
        let mut names: Vec<&str> =
            std::iter::once(&r["spec"]).chain(r["other_specs"].as_array().into_iter().flatten()).map(|s| s["name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, expected[&r["config"]["seed"].as_u64().unwrap()], "every spec that asked is kept: {}", path.display());
    }
    let leftovers: Vec<_> =
        std::fs::read_dir(sb.runs_dir()).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().ends_with(".claim")).collect();
    assert!(leftovers.is_empty(), "claims are released: {leftovers:?}");
}
