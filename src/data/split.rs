//! Preparing a run's data: dedupe, cap, balance and split, all deterministic under the split seed.
//!
//! Each step draws from its own ChaCha stream of the seed, so changing one option (say, balancing)
//! does not reshuffle what the others choose.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{ClassSet, Dataset, LoadReport, Loaded};
use crate::error::DataError;
use crate::spec::{Balance, DatasetConfig};

/// Class counts of a set of examples. Binary: the positives (class 1); more classes: every class's count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub examples: usize,
    pub positives: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_class: Vec<usize>,
}

impl Counts {
    fn of(labels: &[u32], classes: usize) -> Self {
        let per_class = super::labels::class_counts(labels, classes);
        if classes == 2 {
            Counts { examples: labels.len(), positives: per_class[1], per_class: vec![] }
        } else {
            Counts { examples: labels.len(), positives: 0, per_class }
        }
    }
}

/// Everything about the data of a run that goes into its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    pub name: String,
    pub files: Vec<String>,
    /// SHA-256 of the loaded examples (labels and texts in order); with a test file, of both.
    pub fingerprint: String,
    pub loaded: Counts,
    pub load_report: LoadReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_load_report: Option<LoadReport>,
    pub duplicates_removed: usize,
    pub train: Counts,
    pub eval: Counts,
    /// The class names, in label order (absent in records older than class sets: negative, positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Text lengths of both splits by class, for the report (absent in records older than it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lengths: Option<LengthProfile>,
}

/// Histograms of text length in words (whitespace-separated), by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthProfile {
    /// Bin i counts lengths in [edges[i], edges[i+1]); the last bin is open-ended.
    pub edges: Vec<usize>,
    pub train: ClassHistogram,
    pub eval: ClassHistogram,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassHistogram {
    pub negative: Vec<usize>,
    pub positive: Vec<usize>,
}

/// Bin edges in words: fine where short messages are, coarse for long emails.
const LENGTH_EDGES: [usize; 16] = [0, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000, 2000];

impl ClassHistogram {
    fn of(texts: &[String], labels: &[u32]) -> ClassHistogram {
        let mut h = ClassHistogram { negative: vec![0; LENGTH_EDGES.len()], positive: vec![0; LENGTH_EDGES.len()] };
        for (t, &l) in texts.iter().zip(labels) {
            let words = t.split_whitespace().count();
            let bin = LENGTH_EDGES.partition_point(|&e| e <= words) - 1;
            if l == 1 {
                h.positive[bin] += 1
            } else {
                h.negative[bin] += 1
            }
        }
        h
    }
}

impl LengthProfile {
    pub fn of(train: (&[String], &[u32]), eval: (&[String], &[u32])) -> LengthProfile {
        LengthProfile { edges: LENGTH_EDGES.to_vec(), train: ClassHistogram::of(train.0, train.1), eval: ClassHistogram::of(eval.0, eval.1) }
    }
}

/// The examples a run trains and evaluates on.
pub struct Prepared {
    pub train_texts: Vec<String>,
    pub train_labels: Vec<u32>,
    pub eval_texts: Vec<String>,
    pub eval_labels: Vec<u32>,
    pub classes: ClassSet,
    /// For each evaluation example, its index in the file it came from (the order of `Dataset`).
    pub eval_index: Vec<usize>,
    pub summary: DataSummary,
}

const STREAM_CAP: u64 = 1;
const STREAM_BALANCE: u64 = 2;
const STREAM_SPLIT: u64 = 3;
const STREAM_HOLDOUT: u64 = 4;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Indices of the first occurrence of each distinct text.
fn dedupe(ds: &Dataset) -> Vec<usize> {
    let mut seen = rustc_hash::FxHashSet::default();
    (0..ds.len()).filter(|&i| seen.insert(ds.texts[i].as_str())).collect()
}

/// Splits `idx` by class, in class order (for two classes: negatives, then positives).
fn by_class(idx: &[usize], labels: &[u32]) -> Vec<Vec<usize>> {
    let k = labels.iter().max().map_or(2, |&m| (m as usize + 1).max(2));
    let mut out = vec![Vec::new(); k];
    for &i in idx {
        out[labels[i] as usize].push(i);
    }
    out
}

/// Keeps `n` of the indices, each class in proportion (largest remainder), chosen at random.
fn stratified_sample(idx: &[usize], labels: &[u32], n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let classes = by_class(idx, labels);
    let total = idx.len() as f64;
    let mut quota: Vec<usize> = classes.iter().map(|c| (c.len() as f64 * n as f64 / total).floor() as usize).collect();
    let mut short = n - quota.iter().sum::<usize>();
    // Stable sort: among equal remainders the lower class first.
    let mut order: Vec<usize> = (0..classes.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = classes[a].len() as f64 * n as f64 / total - quota[a] as f64;
        let rb = classes[b].len() as f64 * n as f64 / total - quota[b] as f64;
        rb.total_cmp(&ra)
    });
    for c in order {
        if short > 0 && quota[c] < classes[c].len() {
            quota[c] += 1;
            short -= 1;
        }
    }
    let mut out = Vec::with_capacity(n);
    for (c, mut members) in classes.into_iter().enumerate() {
        members.shuffle(rng);
        out.extend_from_slice(&members[..quota[c]]);
    }
    out.sort_unstable();
    out
}

/// Holds out `fraction` of the examples, stratified and drawn under `seed`: (kept, held out), each in
/// index order. Used to choose a training epoch without looking at the evaluation split.
pub fn holdout(labels: &[u32], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let all: Vec<usize> = (0..labels.len()).collect();
    let n = ((labels.len() as f64) * fraction).round() as usize;
    let held = stratified_sample(&all, labels, n, &mut rng(seed, STREAM_HOLDOUT));
    let mut is_held = vec![false; labels.len()];
    held.iter().for_each(|&i| is_held[i] = true);
    (all.into_iter().filter(|&i| !is_held[i]).collect(), held)
}

pub fn prepare(cfg: &DatasetConfig, loaded: &Loaded) -> Result<Prepared, DataError> {
    let ds = &loaded.main;
    let name = cfg.display_name();
    let unusable = |message: String| DataError::Unusable { name: name.clone(), message };
    let seed = cfg.split.seed;

    let mut idx: Vec<usize> = if cfg.dedupe { dedupe(ds) } else { (0..ds.len()).collect() };
    let duplicates_removed = ds.len() - idx.len();
    if let Some(max) = cfg.max_examples {
        if idx.len() > max {
            idx = stratified_sample(&idx, &ds.labels, max, &mut rng(seed, STREAM_CAP));
        }
    }
    if let Some(Balance::Downsample) = cfg.balance {
        let mut classes = by_class(&idx, &ds.labels);
        classes.resize(loaded.classes.len().max(classes.len()), Vec::new());
        let keep = classes.iter().map(Vec::len).min().unwrap_or(0);
        if keep == 0 {
            let empty = classes.iter().position(Vec::is_empty).unwrap_or(0);
            return Err(unusable(format!("cannot balance by down-sampling: class {:?} has no example among {}", loaded.classes.name(empty as u32), idx.len())));
        }
        let mut r = rng(seed, STREAM_BALANCE);
        let mut out = Vec::with_capacity(classes.len() * keep);
        for mut members in classes {
            members.shuffle(&mut r);
            out.extend_from_slice(&members[..keep]);
        }
        out.sort_unstable();
        idx = out;
    }

    let (train, eval_ds, eval): (Vec<usize>, &Dataset, Vec<usize>) = match (&loaded.test, cfg.split.validation) {
        (Some(test), _) => (idx, test, (0..test.len()).collect()),
        (None, Some(fraction)) => {
            let mut r = rng(seed, STREAM_SPLIT);
            let groups: Vec<Vec<usize>> = if cfg.split.stratified { by_class(&idx, &ds.labels) } else { vec![idx.clone()] };
            let (mut train, mut eval) = (Vec::new(), Vec::new());
            for mut g in groups {
                g.shuffle(&mut r);
                let n_eval = ((g.len() as f64) * fraction).round() as usize;
                eval.extend_from_slice(&g[..n_eval]);
                train.extend_from_slice(&g[n_eval..]);
            }
            train.sort_unstable();
            eval.sort_unstable();
            (train, ds, eval)
        }
        (None, None) => unreachable!("a resolved split has a validation fraction or a test file"),
    };

    let pick = |d: &Dataset, ix: &[usize]| -> (Vec<String>, Vec<u32>) {
        (ix.iter().map(|&i| d.texts[i].clone()).collect(), ix.iter().map(|&i| d.labels[i]).collect())
    };
    let (train_texts, train_labels) = pick(ds, &train);
    let (eval_texts, eval_labels) = pick(eval_ds, &eval);
    let classes = &loaded.classes;
    let k = classes.len();
    if k == 2 {
        for (what, labels) in [("training", &train_labels), ("evaluation", &eval_labels)] {
            let c = Counts::of(labels, 2);
            if c.positives == 0 || c.positives == c.examples {
                let only = if c.positives == 0 { "negative" } else { "positive" };
                return Err(unusable(format!(
                    "the {what} split has only one class ({} examples, all {only}); both classes are needed. \
                     Check the label mapping ({}) or use a larger validation fraction",
                    c.examples,
                    cfg.label_map().describe()
                )));
            }
        }
    } else {
        // Every class must be learnable; one missing from the evaluation split only leaves its row empty.
        let c = Counts::of(&train_labels, k);
        let missing: Vec<&str> = (0..k).filter(|&i| c.per_class[i] == 0).map(|i| classes.name(i as u32)).collect();
        if !missing.is_empty() {
            return Err(unusable(format!(
                "the training split has no example of {} of the {k} classes ({}); every class needs training examples. \
                 Check the label values (`classes`), or use a smaller validation fraction",
                missing.len(),
                missing.iter().take(10).map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")
            )));
        }
        let e = Counts::of(&eval_labels, k);
        if e.per_class.iter().filter(|&&n| n > 0).count() < 2 {
            return Err(unusable(format!("the evaluation split has fewer than two classes ({} examples); use a larger validation fraction", e.examples)));
        }
    }
    let fingerprint = match &loaded.test {
        Some(t) => hex::encode(sha2::Sha256::digest(format!("{}+{}", ds.fingerprint(), t.fingerprint()))),
        None => ds.fingerprint(),
    };
    let files = ds.files.iter().chain(loaded.test.iter().flat_map(|t| t.files.iter())).map(|p| p.display().to_string()).collect();
    Ok(Prepared {
        summary: DataSummary {
            name,
            files,
            fingerprint,
            loaded: Counts::of(&ds.labels, k),
            load_report: ds.report.clone(),
            test_load_report: loaded.test.as_ref().map(|t| t.report.clone()),
            duplicates_removed,
            train: Counts::of(&train_labels, k),
            eval: Counts::of(&eval_labels, k),
            classes: Some(classes.names.clone()),
            // The length histograms are drawn per class for two classes only.
            lengths: (k == 2).then(|| LengthProfile::of((&train_texts, &train_labels), (&eval_texts, &eval_labels))),
        },
        classes: classes.clone(),
        train_texts,
        train_labels,
        eval_texts,
        eval_labels,
        eval_index: eval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{DataSource, Encoding, FileFormat, SplitConfig};

    #[test]
    fn holdout_is_stratified_disjoint_and_seeded() {
        let labels: Vec<u32> = (0..100).map(|i| (i % 4 == 0) as u32).collect();
        let (kept, held) = holdout(&labels, 0.2, 9);
        assert_eq!(held.len(), 20);
        assert_eq!(held.iter().filter(|&&i| labels[i] == 1).count(), 5, "a quarter positive, as the whole");
        assert_eq!(kept.len() + held.len(), 100);
        assert!(kept.iter().all(|i| !held.contains(i)));
        assert_eq!(holdout(&labels, 0.2, 9), (kept.clone(), held.clone()));
        assert_ne!(holdout(&labels, 0.2, 10).1, held);
    }

    fn cfg(validation: f64, seed: u64) -> DatasetConfig {
        DatasetConfig {
            source: DataSource::File { format: FileFormat::Csv, path: crate::spec::Names::One("x.csv".into()) },
            text_column: Some(crate::spec::Names::One("t".into())),
            label_column: Some("l".into()),
            positive: vec!["1".into()],
            negative: vec!["0".into()],
            classes: None,
            fine_labels: false,
            encoding: Encoding::Utf8,
            split: SplitConfig { validation: Some(validation), test_file: None, stratified: true, seed },
            balance: None,
            dedupe: false,
            max_examples: None,
        }
    }

    fn data(n: usize, pos_every: usize) -> Loaded {
        let mut ds = Dataset::default();
        for i in 0..n {
            ds.push(format!("text {i}"), (i % pos_every == 0) as u32, i + 2);
        }
        ds.files.push("x.csv".into());
        Loaded { main: ds, test: None, classes: ClassSet::new(vec!["0".into(), "1".into()]) }
    }

    #[test]
    fn stratified_split_keeps_class_ratio_and_is_seeded() {
        let d = data(1000, 10); // 100 positives
        let a = prepare(&cfg(0.2, 1), &d).unwrap();
        assert_eq!(a.summary.eval, Counts { examples: 200, positives: 20, per_class: vec![] });
        assert_eq!(a.summary.train, Counts { examples: 800, positives: 80, per_class: vec![] });
        let b = prepare(&cfg(0.2, 1), &d).unwrap();
        assert_eq!(a.eval_index, b.eval_index);
        let c = prepare(&cfg(0.2, 2), &d).unwrap();
        assert_ne!(a.eval_index, c.eval_index);
        // Disjoint and complete.
        let mut all: Vec<String> = a.train_texts.iter().chain(&a.eval_texts).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn balance_downsamples_the_majority() {
        let d = data(1000, 4); // 250 positives
        let mut c = cfg(0.1, 3);
        c.balance = Some(Balance::Downsample);
        let p = prepare(&c, &d).unwrap();
        assert_eq!(p.summary.train.examples + p.summary.eval.examples, 500);
        assert_eq!(p.summary.train.positives + p.summary.eval.positives, 250);
        assert_eq!(p.summary.eval, Counts { examples: 50, positives: 25, per_class: vec![] });
    }

    #[test]
    fn dedupe_and_cap() {
        let mut d = data(100, 2);
        d.main.push("text 3".into(), 1, 200); // duplicate of an existing text
        let mut c = cfg(0.5, 0);
        c.dedupe = true;
        c.max_examples = Some(50);
        let p = prepare(&c, &d).unwrap();
        assert_eq!(p.summary.duplicates_removed, 1);
        assert_eq!(p.summary.train.examples + p.summary.eval.examples, 50);
        assert_eq!(p.summary.train.positives + p.summary.eval.positives, 25);
    }

    #[test]
    fn many_classes_split_stratified_and_every_class_must_train() {
        let mut ds = Dataset::default();
        for i in 0..400 {
            ds.push(format!("text {i}"), (i % 4) as u32, i + 2);
        }
        ds.files.push("x.csv".into());
        let names = ClassSet::new(vec!["a".into(), "b".into(), "c".into(), "d".into()]);
        let d = Loaded { main: ds, test: None, classes: names.clone() };
        let mut c = cfg(0.25, 1);
        c.classes = Some(crate::data::labels::ClassRule::Inferred);
        let p = prepare(&c, &d).unwrap();
        assert_eq!(p.summary.eval.per_class, vec![25, 25, 25, 25]);
        assert_eq!(p.summary.train.per_class, vec![75, 75, 75, 75]);
        assert_eq!(p.summary.classes.as_deref(), Some(&names.names[..]));
        // A class present in the data but absent from training: named in the error.
        let mut ds = Dataset::default();
        for i in 0..100 {
            ds.push(format!("text {i}"), (i % 2) as u32, i + 2);
        }
        ds.push("only one".into(), 2, 200);
        ds.files.push("x.csv".into());
        let d = Loaded { main: ds, test: None, classes: ClassSet::new(vec!["a".into(), "b".into(), "rare".into()]) };
        let err = prepare(&cfg(0.5, 3), &d).err().map(|e| e.to_string()).unwrap_or_default();
        let other = prepare(&cfg(0.5, 4), &d).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("\"rare\"") || other.contains("\"rare\""), "{err} / {other}");
    }

    #[test]
    fn one_class_after_split_is_an_error() {
        let d = data(50, 49); // 2 positives: 0 and 49
        let err = prepare(&cfg(0.02, 0), &d).err().expect("eval has one example").to_string();
        assert!(err.contains("only one class"), "{err}");
    }
}
