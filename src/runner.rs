//! `bench run`: plans every run of the given specs (loading and validating all their data first, so
//! that bad input fails before anything is written), then executes what the store does not have yet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::data::labels::ClassRule;
use crate::data::split::{prepare, Prepared};
use crate::data::{self, DataLocation};
use crate::environment::{self, Environment};
use crate::methods::{ClassProbabilities, Examples, FitContext};
use crate::metrics;
use crate::models::cache::ModelCache;
use crate::progress::Progress;
use crate::spec::{DataSource, DatasetConfig, PlannedRun, Spec};
use crate::store::claim::{Attempt, Claim, Claimant};
use crate::store::{self, ClassPrediction, Prediction, RunRecord, RunStatus, SpecRef, Store, Timings};

pub struct RunOptions {
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub force: bool,
}

/// A run with its data ready and its id known.
pub struct Plan<'a> {
    pub spec: &'a Spec,
    pub run: &'a PlannedRun,
    pub id: String,
    pub data: Arc<Prepared>,
    pub load_s: f64,
    /// Whether the store already has a successful record of it.
    pub done: bool,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub ran: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Runs another process sharing the store executed while this one waited.
    pub elsewhere: usize,
}

/// Key under which loaded data is shared between runs: everything that decides what is read.
fn load_key(cfg: &DatasetConfig, spec: &Spec) -> String {
    let spec_dir = matches!(cfg.source, DataSource::File { .. }).then(|| spec.dir());
    serde_json::json!({
        "source": cfg.source, "text": cfg.text_column, "label": cfg.label_column, "positive": cfg.positive,
        "negative": cfg.negative, "classes": cfg.classes, "fine": cfg.fine_labels, "encoding": cfg.encoding,
        "test": cfg.split.test_file, "dir": spec_dir,
    })
    .to_string()
}

/// Loads and prepares the data of every run, computes ids and what is done. Any data or model problem
/// is returned as an error before a single run executes.
pub fn plan<'a>(specs: &'a [Spec], opts: &RunOptions, store: &Store, progress: &Progress) -> anyhow::Result<Vec<Plan<'a>>> {
    for run in specs.iter().flat_map(|s| &s.runs) {
        run.config.method.check_resources(&opts.models_dir)?;
    }
    let mut loaded: HashMap<String, (Arc<data::Loaded>, f64)> = HashMap::new();
    let mut prepared: HashMap<String, (Arc<Prepared>, f64)> = HashMap::new();
    let mut plans = Vec::new();
    for spec in specs {
        let loc = DataLocation { data_dir: opts.data_dir.clone(), spec_dir: spec.dir() };
        for run in &spec.runs {
            let cfg = &run.config.dataset;
            let key = load_key(cfg, spec);
            if !loaded.contains_key(&key) {
                let t = Instant::now();
                let spinner = progress.spinner(format!("loading {}", cfg.display_name()));
                let l = data::load(cfg, &loc, progress)?;
                spinner.finish_and_clear();
                tracing::info!(dataset = %cfg.display_name(), examples = l.main.len(), malformed = l.main.report.malformed_rows, "loaded");
                if cfg.classes.is_some() {
                    progress.println(class_line(&cfg.display_name(), &l.classes, matches!(cfg.classes, Some(ClassRule::Inferred))));
                }
                loaded.insert(key.clone(), (Arc::new(l), t.elapsed().as_secs_f64()));
            }
            let (l, load_s) = loaded[&key].clone();
            let pkey = format!("{key}{}", serde_json::to_string(cfg).expect("serialises"));
            if !prepared.contains_key(&pkey) {
                let t = Instant::now();
                let p = prepare(cfg, &l)?;
                prepared.insert(pkey.clone(), (Arc::new(p), load_s + t.elapsed().as_secs_f64()));
            }
            let (data, load_s) = prepared[&pkey].clone();
            let id = store::run_id(&run.config, &data.summary.fingerprint);
            let done = matches!(store.get(&id), Ok(Some(r)) if r.status == RunStatus::Ok);
            plans.push(Plan { spec, run, id, data, load_s, done });
        }
    }
    Ok(plans)
}

/// The plans of one shard ([`crate::shard`]). Costs come from records of the same configurations that
/// the sweep does not write itself (other ids), so that every shard computes the same parts.
pub fn shard_of<'a>(mut plans: Vec<Plan<'a>>, store: &Store, shard: crate::shard::Shard) -> Vec<Plan<'a>> {
    let ids: Vec<&str> = plans.iter().map(|p| p.id.as_str()).collect();
    let sweep: std::collections::HashSet<&str> = ids.iter().copied().collect();
    let (records, _) = store.list().unwrap_or_default();
    // Oldest first, so the newest record of a configuration is the one kept.
    let mut by_hash: HashMap<&str, f64> = HashMap::new();
    for r in records.iter().filter(|r| r.status == RunStatus::Ok && !sweep.contains(r.id.as_str())) {
        let t = &r.timings;
        by_hash.insert(&r.config_hash, t.load_s + t.fit_s + t.predict_s + t.evaluate_s);
    }
    let costs: HashMap<String, f64> =
        plans.iter().filter_map(|p| by_hash.get(store::config_hash(&p.run.config).as_str()).map(|&c| (p.id.clone(), c))).collect();
    let parts = crate::shard::assign(&ids, &costs, shard.count);
    plans.retain(|p| parts[&p.id] == shard.index - 1);
    plans
}

/// The plans that share one run id (the same experiment asked for by several specs, or twice): executed
/// once, recorded once, with every spec that asked for it.
struct Job<'p, 'a> {
    plans: Vec<&'p Plan<'a>>,
}

impl Job<'_, '_> {
    fn first(&self) -> &Plan<'_> {
        self.plans[0]
    }

    fn specs(&self) -> Vec<SpecRef> {
        let mut out: Vec<SpecRef> = Vec::new();
        for p in &self.plans {
            if !out.iter().any(|s| s.name == p.spec.name) {
                out.push(SpecRef { name: p.spec.name.clone(), file: p.spec.path.display().to_string() });
            }
        }
        out
    }
}

/// Groups plans by run id, in order of first appearance.
fn jobs<'p, 'a>(plans: &'p [Plan<'a>]) -> Vec<Job<'p, 'a>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Job> = Vec::new();
    for p in plans {
        match index.get(p.id.as_str()) {
            Some(&i) => out[i].plans.push(p),
            None => {
                index.insert(&p.id, out.len());
                out.push(Job { plans: vec![p] });
            }
        }
    }
    out
}

/// Executes the plans that are not done (all of them with `force`), writing one record per run id.
///
/// Each run is claimed in the store before it executes, so that processes sharing the runs directory
/// execute it once between them: a run another live process holds is left to it and waited for at the
/// end; if that process dies meanwhile, its claim is taken over and the run executed here.
pub fn execute(plans: &[Plan<'_>], opts: &RunOptions, store: &Store, progress: &Progress) -> Result<Outcome, crate::error::StoreError> {
    store.remove_stale_temporaries();
    let started = now();
    let me = Claimant::this_process();
    let all = jobs(plans);
    let todo: Vec<&Job> = all.iter().filter(|j| opts.force || !j.first().done).collect();
    let mut outcome = Outcome { skipped: all.len() - todo.len(), ..Default::default() };
    for job in all.iter().filter(|j| !opts.force && j.first().done) {
        let missing = match store.get(&job.first().id) {
            Ok(Some(r)) => job.specs().iter().any(|s| !r.spec_names().any(|n| n == s.name)),
            _ => false,
        };
        if missing {
            // Under the claim, so that two processes adding their names do not overwrite each other's.
            let claim = store.claim(&job.first().id, &me, true)?;
            remember_specs(store, job)?;
            drop(claim);
        }
    }
    let overall = progress.bar(todo.len() as u64, "runs", "runs");
    // Embeddings of frozen encoders are kept beside the records, out of the way of record listing.
    let models = Arc::new(ModelCache::new(Some(store.dir().join(".cache").join("embeddings"))));
    let mut held_elsewhere: Vec<&Job> = Vec::new();
    for job in &todo {
        overall.set_message(format!("{} {}", job.first().spec.name, job.first().id));
        match store.claim(&job.first().id, &me, false)? {
            Attempt::Claimed(claim) => execute_claimed(job, claim, &started, opts, store, progress, &models, &mut outcome)?,
            Attempt::Held(who) => {
                let who = who.map_or("another process".into(), |c| c.describe());
                progress.println(format!("{} {:<20} running in {who}; waiting for it at the end", job.first().id, job.first().spec.name));
                held_elsewhere.push(job);
                continue;
            }
        }
        overall.inc(1);
    }
    if !held_elsewhere.is_empty() {
        overall.set_message(format!("waiting for {} run(s) in other processes", held_elsewhere.len()));
        for job in held_elsewhere {
            // A waiting claim returns once it is granted; `Held` cannot come back from it.
            if let Attempt::Claimed(claim) = store.claim(&job.first().id, &me, true)? {
                execute_claimed(job, claim, &started, opts, store, progress, &models, &mut outcome)?;
            }
            overall.inc(1);
        }
    }
    overall.finish_and_clear();
    Ok(outcome)
}

/// Runs a claimed job, unless the store got its record meanwhile (another process ran it: this one only
/// adds its spec names). The claim is released once the record is written.
#[allow(clippy::too_many_arguments)]
fn execute_claimed(
    job: &Job<'_, '_>,
    claim: Claim,
    started: &str,
    opts: &RunOptions,
    store: &Store,
    progress: &Progress,
    models: &Arc<ModelCache>,
    outcome: &mut Outcome,
) -> Result<(), crate::error::StoreError> {
    let plan = job.first();
    // A record written since this invocation began came from the process that held the claim: the run
    // is not executed again, whether it succeeded or failed. An older one is redone if it failed (or
    // with --force), as a single process would.
    let meanwhile = match store.get(&plan.id) {
        Ok(Some(r)) if r.started_at.as_str() >= started => Some(r.status),
        Ok(Some(r)) if r.status == RunStatus::Ok && !opts.force => Some(r.status),
        _ => None,
    };
    if let Some(status) = meanwhile {
        remember_specs(store, job)?;
        outcome.elsewhere += 1;
        let how = if status == RunStatus::Ok { "done" } else { "FAILED" };
        progress.println(format!("{} {:<20} {how} in another process", plan.id, plan.spec.name));
        drop(claim);
        return Ok(());
    }
    if let Some(previous) = &claim.took_over {
        tracing::warn!(run = %plan.id, "taking over the run from {}, which is gone", previous.describe());
    }
    let mut record = run_one(plan, progress, &opts.models_dir, models, store);
    record.other_specs = job.specs().into_iter().skip(1).collect();
    let line = match (&record.status, record.scores()) {
        (RunStatus::Ok, Some(m)) => format!(
            "{} {:<20} {:<10} seed {:<4} acc {:.4} {} {:.4} auroc {:.4}  ({:.1}s){}",
            record.id,
            plan.spec.name,
            record.config.method.kind(),
            record.config.seed,
            m.accuracy(),
            if record.multiclass.is_some() { "macro-f1" } else { "f1" },
            m.f1(),
            m.auroc(),
            record.timings.fit_s + record.timings.predict_s,
            skipped_rows(&record.data).map(|s| format!("  {s}")).unwrap_or_default()
        ),
        _ => format!("{} {:<20} FAILED: {}", record.id, plan.spec.name, record.error.as_deref().unwrap_or("unknown error")),
    };
    if record.status == RunStatus::Ok {
        outcome.ran += 1;
    } else {
        outcome.failed += 1;
    }
    store.put(&record)?;
    drop(claim);
    progress.println(line);
    Ok(())
}

/// Adds the job's spec names to its stored record where they are missing. The caller holds the claim.
fn remember_specs(store: &Store, job: &Job<'_, '_>) -> Result<(), crate::error::StoreError> {
    let Ok(Some(mut record)) = store.get(&job.first().id) else { return Ok(()) };
    let mut changed = false;
    for s in job.specs() {
        changed |= record.add_spec(&s);
    }
    if changed {
        store.put(&record)?;
    }
    Ok(())
}

/// `trec: 6 classes (the training data's label values): ABBR, DESC, …`: said once per dataset whose
/// classes are not the binary positive/negative pair.
fn class_line(name: &str, classes: &data::ClassSet, inferred: bool) -> String {
    const SHOWN: usize = 12;
    let names: Vec<&str> = classes.names.iter().take(SHOWN).map(String::as_str).collect();
    let more = classes.len().saturating_sub(SHOWN);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    let how = if inferred { " (the training data's label values)" } else { "" };
    format!("{name}: {} classes{how}: {}{more}", classes.len(), names.join(", "))
}

/// `N rows skipped (reasons)` over the run's data files, when any were.
pub fn skipped_rows(d: &crate::data::split::DataSummary) -> Option<String> {
    let mut all = d.load_report.clone();
    if let Some(t) = &d.test_load_report {
        all.absorb(t.clone());
    }
    all.skipped_summary()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A run's evaluation: two classes at the method's threshold, or more.
enum Evaluation {
    Binary(metrics::Metrics, metrics::Curves),
    Multiclass(metrics::multiclass::MulticlassMetrics),
}

fn evaluate(labels: &[u32], probs: &ClassProbabilities, threshold: f64, seed: u64) -> Evaluation {
    if probs.classes() == 2 {
        let positive: Vec<bool> = labels.iter().map(|&y| y == 1).collect();
        let (m, curves) = metrics::evaluate(&positive, &probs.positive(), threshold, seed);
        Evaluation::Binary(m, curves)
    } else {
        let rows: Vec<&[f64]> = probs.rows().collect();
        Evaluation::Multiclass(metrics::multiclass::evaluate(labels, &rows, probs.classes(), seed))
    }
}

/// Fits, predicts and evaluates one run. Never fails: a failure becomes a record with status `failed`.
fn run_one(plan: &Plan<'_>, progress: &Progress, models_dir: &Path, models: &Arc<ModelCache>, store: &Store) -> RunRecord {
    let started_at = now();
    let (memory_method, memory_baseline) = environment::start_peak_memory();
    let cfg = &plan.run.config;
    let data = &plan.data;
    let mut timings = Timings { load_s: plan.load_s, ..Default::default() };
    let monitor = Some(Examples { texts: &data.eval_texts, labels: &data.eval_labels, classes: &data.classes });
    let ctx = FitContext { seed: cfg.seed, progress, models_dir, models, monitor };

    // A panic in a method is a bug; caught here, it fails this run with its message instead of taking
    // the whole invocation (and its other runs) down.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t = Instant::now();
        let fitted = cfg.method.fit(Examples { texts: &data.train_texts, labels: &data.train_labels, classes: &data.classes }, &ctx)?;
        timings.fit_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let probs = fitted.predict_proba(&data.eval_texts, progress)?;
        timings.predict_s = t.elapsed().as_secs_f64();
        if let Some(bad) = probs.first_non_finite() {
            return Err(crate::error::MethodError::Numerical(format!("the model predicted a non-finite probability for evaluation example {bad}")));
        }
        if probs.classes() != data.classes.len() || probs.len() != data.eval_texts.len() {
            return Err(crate::error::MethodError::Numerical(format!(
                "the model gave {} rows of {} probabilities for {} examples of {} classes",
                probs.len(),
                probs.classes(),
                data.eval_texts.len(),
                data.classes.len()
            )));
        }
        let t = Instant::now();
        let evaluation = evaluate(&data.eval_labels, &probs, fitted.threshold(), cfg.seed);
        timings.evaluate_s = t.elapsed().as_secs_f64();
        Ok((fitted, probs, evaluation))
    }))
    .unwrap_or_else(|panic| {
        let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        Err(crate::error::MethodError::Internal(message))
    });

    let mut record = RunRecord {
        schema: store::SCHEMA_VERSION,
        id: plan.id.clone(),
        config_hash: store::config_hash(cfg),
        code_version: store::CODE_VERSION.to_string(),
        status: RunStatus::Ok,
        error: None,
        spec: SpecRef { name: plan.spec.name.clone(), file: plan.spec.path.display().to_string() },
        other_specs: vec![],
        sweep_point: plan.run.sweep_point.clone(),
        config: cfg.clone(),
        data: data.summary.clone(),
        metrics: None,
        multiclass: None,
        curves: None,
        timings: Timings::default(),
        train_samples_per_s: None,
        trainable_parameters: None,
        fitted_parameters: None,
        method_details: serde_json::Value::Null,
        history: None,
        artifact: None,
        peak_memory_bytes: None,
        peak_memory_method: None,
        peak_memory_baseline_bytes: None,
        environment: Environment::capture(),
        started_at,
        finished_at: String::new(),
        predictions: vec![],
        class_predictions: vec![],
    };
    match result {
        Ok((fitted, probs, evaluation)) => {
            let examples = data.eval_index.iter().zip(&data.eval_labels).zip(&data.eval_texts).enumerate();
            match evaluation {
                Evaluation::Binary(m, curves) => {
                    let threshold = m.threshold;
                    record.metrics = Some(m);
                    record.curves = Some(curves);
                    let positive = probs.positive();
                    record.predictions =
                        examples.map(|(i, ((&index, &label), text))| Prediction::new(index, label == 1, positive[i], threshold, text)).collect();
                }
                Evaluation::Multiclass(m) => {
                    record.multiclass = Some(m);
                    record.class_predictions = examples.map(|(i, ((&index, &label), text))| ClassPrediction::new(index, label, probs.row(i), text)).collect();
                }
            }
            record.train_samples_per_s = fitted.train_samples_per_s().or_else(|| (timings.fit_s > 0.0).then(|| data.train_texts.len() as f64 / timings.fit_s));
            record.history = fitted.history();
            match store.put_artifact(&plan.id, |dir| Ok(fitted.save(dir)?)) {
                Ok(a) => record.artifact = a,
                Err(e) => {
                    record.status = RunStatus::Failed;
                    record.error = Some(format!("saving the trained model: {e:#}"));
                }
            }
            record.trainable_parameters = Some(fitted.trainable_parameters());
            record.fitted_parameters = Some(fitted.fitted_parameters());
            record.method_details = fitted.details();
        }
        Err(e) => {
            record.status = RunStatus::Failed;
            record.error = Some(e.to_string());
        }
    }
    record.timings = timings;
    record.peak_memory_bytes = environment::peak_memory_bytes();
    record.peak_memory_method = Some(memory_method);
    record.peak_memory_baseline_bytes = memory_baseline;
    record.finished_at = now();
    record
}
