use anyhow::Result;

use super::fmt_metric;
use crate::cli::{GlobalArgs, ShowArgs};
use crate::store::Store;

pub fn run(args: &ShowArgs, g: &GlobalArgs) -> Result<i32> {
    let r = Store::new(&g.runs_dir).find(&args.run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    println!("run        {}  ({:?})", r.id, r.status);
    println!("spec       {} ({})", r.spec.name, r.spec.file);
    for s in &r.other_specs {
        println!("           also {} ({})", s.name, s.file);
    }
    if !r.sweep_point.is_empty() {
        let p: Vec<String> = r.sweep_point.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("sweep      {}", p.join(" "));
    }
    println!("method     {}", serde_json::to_string(&r.config.method)?);
    println!("seed       {}", r.config.seed);
    let d = &r.data;
    println!("data       {}  fingerprint {}", d.name, d.fingerprint.get(..16).unwrap_or(&d.fingerprint));
    println!(
        "           {} loaded ({} positive), {} malformed rows, {} duplicates removed",
        d.loaded.examples, d.loaded.positives, d.load_report.malformed_rows, d.duplicates_removed
    );
    if let Some(skipped) = crate::runner::skipped_rows(d) {
        println!("           {skipped}");
    }
    let classes = r.classes();
    if classes.is_binary() {
        println!("           train {} ({} positive), eval {} ({} positive)", d.train.examples, d.train.positives, d.eval.examples, d.eval.positives);
    } else {
        println!("           train {}, eval {}; {} classes", d.train.examples, d.eval.examples, classes.len());
    }
    if let Some(err) = &r.error {
        println!("error      {err}");
    }
    if let Some(m) = &r.metrics {
        let iv = &m.intervals;
        println!("accuracy   {}  [{} – {}]", fmt_metric(m.accuracy), fmt_metric(iv.accuracy.low), fmt_metric(iv.accuracy.high));
        println!("precision  {}", fmt_metric(m.precision));
        println!("recall     {}", fmt_metric(m.recall));
        println!("f1         {}  [{} – {}]", fmt_metric(m.f1), fmt_metric(iv.f1.low), fmt_metric(iv.f1.high));
        println!("auroc      {}  [{} – {}]", fmt_metric(m.auroc), fmt_metric(iv.auroc.low), fmt_metric(iv.auroc.high));
        println!("avg prec   {}", fmt_metric(m.average_precision));
        println!("log loss   {}", fmt_metric(m.log_loss));
        let [[tn, fp], [fneg, tp]] = m.confusion_matrix;
        println!("confusion  tn {tn}  fp {fp}  fn {fneg}  tp {tp}   (threshold {:.4})", m.threshold);
    }
    if let Some(m) = &r.multiclass {
        let iv = &m.intervals;
        let opt = |v: Option<f64>| v.map_or("-".to_string(), fmt_metric);
        println!("accuracy   {}  [{} – {}]", fmt_metric(m.accuracy), fmt_metric(iv.accuracy.low), fmt_metric(iv.accuracy.high));
        println!("macro f1   {}  [{} – {}]", fmt_metric(m.averages.macro_f1), fmt_metric(iv.macro_f1.low), fmt_metric(iv.macro_f1.high));
        println!("weighted f1 {}", fmt_metric(m.averages.weighted_f1));
        println!("macro auroc {} (one-vs-rest)", opt(m.macro_auroc));
        println!("top-2 acc  {}", opt(m.top2_accuracy));
        println!("log loss   {}", fmt_metric(m.log_loss));
        let width = classes.names.iter().map(|n| n.chars().count()).max().unwrap_or(5).clamp(5, 28);
        println!("{:<width$}  precision  recall      f1  support   auroc", "class");
        for (name, c) in classes.names.iter().zip(&m.per_class) {
            println!(
                "{name:<width$}  {:>9}  {:>6}  {:>6}  {:>7}  {:>6}",
                fmt_metric(c.precision),
                fmt_metric(c.recall),
                fmt_metric(c.f1),
                c.support,
                opt(c.auroc)
            );
        }
    }
    let t = &r.timings;
    println!("timings    load {:.2}s  fit {:.2}s  predict {:.2}s  evaluate {:.2}s", t.load_s, t.fit_s, t.predict_s, t.evaluate_s);
    if let Some(p) = r.trainable_parameters {
        println!("params     {p} trainable, {} fitted", r.fitted_parameters.unwrap_or(p));
    }
    if let Some(b) = r.peak_memory_bytes {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        match r.peak_memory_baseline_bytes {
            Some(base) => println!("memory     peak {:.1} MiB, of which {:.1} MiB were resident before the run started", mib(b), mib(base)),
            None => println!("memory     peak {:.1} MiB", mib(b)),
        }
        if let Some(how) = &r.peak_memory_method {
            println!("           ({how})");
        }
    }
    let e = &r.environment;
    println!(
        "machine    {} ({} threads), {} {}, textbench {}{}",
        e.cpu,
        e.threads,
        e.os,
        e.arch,
        e.crate_version,
        e.git_commit.as_deref().map(|c| format!(" @ {c}")).unwrap_or_default()
    );
    println!("time       {} → {}", r.started_at, r.finished_at);
    Ok(0)
}
