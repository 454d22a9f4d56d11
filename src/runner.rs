//! `bench run`: plans every run of the given specs (loading and validating all their data first, so
//! that bad input fails before anything is written), then executes what the store does not have yet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::data::split::{prepare, Prepared};
use crate::data::{self, DataLocation};
use crate::environment::{self, Environment};
use crate::methods::transformer::cache::ModelCache;
use crate::methods::{Examples, FitContext};
use crate::metrics;
use crate::progress::Progress;
use crate::spec::{DataSource, DatasetConfig, PlannedRun, Spec};
use crate::store::{self, Prediction, RunRecord, RunStatus, SpecRef, Store, Timings};

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
}

/// Key under which loaded data is shared between runs: everything that decides what is read.
fn load_key(cfg: &DatasetConfig, spec: &Spec) -> String {
    let spec_dir = matches!(cfg.source, DataSource::File { .. }).then(|| spec.dir());
    serde_json::json!({
        "source": cfg.source, "text": cfg.text_column, "label": cfg.label_column, "positive": cfg.positive,
        "negative": cfg.negative, "encoding": cfg.encoding, "test": cfg.split.test_file, "dir": spec_dir,
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

/// Executes the plans that are not done (all of them with `force`), writing one record each.
pub fn execute(plans: &[Plan<'_>], opts: &RunOptions, store: &Store, progress: &Progress) -> Result<Outcome, crate::error::StoreError> {
    store.remove_stale_temporaries();
    let todo: Vec<&Plan> = plans.iter().filter(|p| opts.force || !p.done).collect();
    let mut outcome = Outcome { skipped: plans.len() - todo.len(), ..Default::default() };
    let overall = progress.bar(todo.len() as u64, "runs", "runs");
    // Embeddings of frozen encoders are kept beside the records, out of the way of record listing.
    let models = Arc::new(ModelCache::new(Some(store.dir().join(".cache").join("embeddings"))));
    for plan in todo {
        overall.set_message(format!("{} {}", plan.spec.name, &plan.id[..8]));
        let record = run_one(plan, progress, &opts.models_dir, &models, store);
        let line = match (&record.status, &record.metrics) {
            (RunStatus::Ok, Some(m)) => format!(
                "{} {:<20} {:<10} seed {:<4} acc {:.4} f1 {:.4} auroc {:.4}  ({:.1}s)",
                record.id, plan.spec.name, record.config.method.kind(), record.config.seed, m.accuracy, m.f1, m.auroc,
                record.timings.fit_s + record.timings.predict_s
            ),
            _ => format!("{} {:<20} FAILED: {}", record.id, plan.spec.name, record.error.as_deref().unwrap_or("unknown error")),
        };
        if record.status == RunStatus::Ok {
            outcome.ran += 1;
        } else {
            outcome.failed += 1;
            tracing::error!(run = %record.id, error = record.error.as_deref().unwrap_or(""), "run failed");
        }
        store.put(&record)?;
        progress.println(line);
        overall.inc(1);
    }
    overall.finish_and_clear();
    Ok(outcome)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Fits, predicts and evaluates one run. Never fails: a failure becomes a record with status `failed`.
fn run_one(plan: &Plan<'_>, progress: &Progress, models_dir: &Path, models: &Arc<ModelCache>, store: &Store) -> RunRecord {
    let started_at = now();
    let memory_reset = environment::reset_peak_memory();
    let cfg = &plan.run.config;
    let data = &plan.data;
    let mut timings = Timings { load_s: plan.load_s, ..Default::default() };
    let monitor = Some(Examples { texts: &data.eval_texts, labels: &data.eval_labels });
    let ctx = FitContext { seed: cfg.seed, progress, models_dir, models, monitor };

    let result = (|| {
        let t = Instant::now();
        let fitted = cfg.method.fit(Examples { texts: &data.train_texts, labels: &data.train_labels }, &ctx)?;
        timings.fit_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let probs = fitted.predict_proba(&data.eval_texts, progress)?;
        timings.predict_s = t.elapsed().as_secs_f64();
        if let Some(bad) = probs.iter().position(|p| !p.is_finite()) {
            return Err(crate::error::MethodError::Numerical(format!("the model predicted a non-finite probability for evaluation example {bad}")));
        }
        let t = Instant::now();
        let (m, curves) = metrics::evaluate(&data.eval_labels, &probs, fitted.threshold(), cfg.seed);
        timings.evaluate_s = t.elapsed().as_secs_f64();
        Ok((fitted, probs, m, curves))
    })();

    let mut record = RunRecord {
        schema: store::SCHEMA_VERSION,
        id: plan.id.clone(),
        config_hash: store::config_hash(cfg),
        code_version: store::CODE_VERSION.to_string(),
        status: RunStatus::Ok,
        error: None,
        spec: SpecRef { name: plan.spec.name.clone(), file: plan.spec.path.display().to_string() },
        sweep_point: plan.run.sweep_point.clone(),
        config: cfg.clone(),
        data: data.summary.clone(),
        metrics: None,
        curves: None,
        timings: Timings::default(),
        train_samples_per_s: None,
        trainable_parameters: None,
        fitted_parameters: None,
        method_details: serde_json::Value::Null,
        history: None,
        artifact: None,
        peak_memory_bytes: None,
        environment: Environment::capture(),
        started_at,
        finished_at: String::new(),
        predictions: vec![],
    };
    match result {
        Ok((fitted, probs, m, curves)) => {
            let threshold = m.threshold;
            record.metrics = Some(m);
            record.curves = Some(curves);
            record.train_samples_per_s =
                fitted.train_samples_per_s().or_else(|| (timings.fit_s > 0.0).then(|| data.train_texts.len() as f64 / timings.fit_s));
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
            record.predictions = data
                .eval_index
                .iter()
                .zip(&data.eval_labels)
                .zip(&probs)
                .zip(&data.eval_texts)
                .map(|(((&index, &label), &probability), text)| Prediction::new(index, label, probability, threshold, text))
                .collect();
        }
        Err(e) => {
            record.status = RunStatus::Failed;
            record.error = Some(e.to_string());
        }
    }
    record.timings = timings;
    record.peak_memory_bytes = environment::peak_memory_bytes();
    if !memory_reset {
        record.method_details["peak_memory_note"] = "peak of the whole process so far (could not reset the counter)".into();
    }
    record.finished_at = now();
    record
}
