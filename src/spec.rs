//! Experiment specs: the YAML schema, its validation, and the expansion of seeds and sweeps into
//! fully resolved [`RunConfig`]s.
//!
//! Every section denies unknown keys, and every error names the file, line and column. Defaults are
//! filled in here, once, so a `RunConfig` is canonical: the same experiment always hashes to the same id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::catalog;
use crate::data::labels::{ClassRule, ClassValue, LabelMap};
use crate::error::{Position, SpecError};
use crate::methods::MethodConfig;
use crate::metrics::FloorMetric;

/// A spec file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: Option<String>,
    #[allow(dead_code)] // documentation for humans; kept so it is not an unknown key
    description: Option<String>,
    dataset: DatasetSpec,
    method: MethodConfig,
    #[serde(default = "default_seeds")]
    seeds: Vec<u64>,
    #[serde(default)]
    sweep: serde_yaml::Mapping,
    #[serde(default)]
    floors: BTreeMap<FloorMetric, f64>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// The named datasets textbench knows how to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Sms,
    SmsKaggle,
    Enron,
    Jigsaw,
    #[serde(rename = "20newsgroups")]
    Newsgroups20,
    Trec,
}

impl DatasetName {
    pub const ALL: [DatasetName; 6] = [Self::Sms, Self::SmsKaggle, Self::Enron, Self::Jigsaw, Self::Newsgroups20, Self::Trec];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::SmsKaggle => "sms-kaggle",
            Self::Enron => "enron",
            Self::Jigsaw => "jigsaw",
            Self::Newsgroups20 => "20newsgroups",
            Self::Trec => "trec",
        }
    }
}

/// One name or several (`text_column: [title, body]`, `path: [a.csv, b.csv]`). One is written back as a
/// plain string, so that configs (and run ids) from before lists were allowed stay as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    pub fn names(&self) -> Vec<String> {
        match self {
            Names::One(s) => vec![s.clone()],
            Names::Many(v) => v.clone(),
        }
    }
}

/// Generic file formats with named columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Tsv,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// Latin-1 as browsers read it (Windows-1252), which is what files labelled latin-1 really hold.
    #[serde(rename = "latin-1", alias = "latin1", alias = "windows-1252", alias = "cp1252")]
    Latin1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// Down-sample every class to the size of the smallest.
    Downsample,
}

/// A label value as a spec writes it: `spam`, `1` or `true` all name a value of the label column, and
/// are compared with the column's text (a JSON number 1 reads as "1").
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LabelValue {
    Text(String),
    Integer(i64),
    Bool(bool),
}

impl LabelValue {
    fn into_text(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Integer(i) => i.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(LabelValue),
    Many(Vec<LabelValue>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.into_text()],
            Self::Many(v) => v.into_iter().map(LabelValue::into_text).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetSpec {
    name: Option<DatasetName>,
    format: Option<FileFormat>,
    path: Option<Names>,
    parts: Option<Vec<u8>>,
    text_column: Option<Names>,
    label_column: Option<String>,
    positive: Option<OneOrMany>,
    negative: Option<OneOrMany>,
    /// `{label value: class name, ...}`, or a list of label values that are the class names.
    classes: Option<serde_yaml::Value>,
    /// TREC: the 50 fine classes (`HUM:ind`) instead of the 6 coarse ones.
    fine_labels: Option<bool>,
    encoding: Option<Encoding>,
    #[serde(default)]
    split: SplitSpec,
    balance: Option<Balance>,
    #[serde(default)]
    dedupe: bool,
    max_examples: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SplitSpec {
    validation: Option<f64>,
    test_file: Option<String>,
    stratified: Option<bool>,
    seed: Option<u64>,
}

/// Where the data comes from, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum DataSource {
    /// A named dataset under the data directory; `path` overrides its default location (relative to the
    /// data directory), `parts` selects Enron's enron1–6.
    Named { name: DatasetName, path: Option<String>, parts: Vec<u8> },
    /// Generic files (a path, a list, or glob patterns), read as one; a relative path is relative to
    /// the spec file's folder.
    File { format: FileFormat, path: Names },
}

/// How the data is split into training and evaluation examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitConfig {
    /// Fraction held out for evaluation; `None` when a separate test file is used.
    pub validation: Option<f64>,
    /// A separate evaluation file (same format and columns as the training data).
    pub test_file: Option<String>,
    pub stratified: bool,
    pub seed: u64,
}

/// A dataset section with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetConfig {
    #[serde(flatten)]
    pub source: DataSource,
    /// Several columns are joined with a newline.
    pub text_column: Option<Names>,
    pub label_column: Option<String>,
    /// Label values that mean the positive class (spam, toxic), when `classes` is absent.
    pub positive: Vec<String>,
    /// Label values that mean the negative class; empty means "every other value".
    pub negative: Vec<String>,
    /// The class set when it is not the binary positive/negative one (absent for binary, so that
    /// binary configs hash as they always have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassRule>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fine_labels: bool,
    pub encoding: Encoding,
    pub split: SplitConfig,
    pub balance: Option<Balance>,
    pub dedupe: bool,
    pub max_examples: Option<usize>,
}

impl DatasetConfig {
    /// A short human name: `sms`, `enron[1,2]`, `csv:data/x.csv`.
    pub fn display_name(&self) -> String {
        match &self.source {
            DataSource::Named { name: DatasetName::Enron, parts, .. } if parts.len() != 6 => {
                let p: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                format!("enron[{}]", p.join(","))
            }
            DataSource::Named { name, .. } => name.as_str().to_string(),
            DataSource::File { path, .. } => {
                let names = path.names();
                let first = names.first().cloned().unwrap_or_default();
                let stem = Path::new(&first).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(first);
                if names.len() > 1 {
                    format!("{stem}+{}", names.len() - 1)
                } else {
                    stem
                }
            }
        }
    }

    /// How label values become classes.
    pub fn label_map(&self) -> LabelMap {
        match &self.classes {
            Some(rule) => LabelMap::from_rule(rule),
            None => LabelMap::binary(&self.positive, &self.negative),
        }
    }
}

/// One run: a pure function of this value. Its canonical JSON is hashed into the run id. The spec's
/// name is not part of it: renaming a spec does not invalidate its runs, and the same experiment in two
/// specs runs once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub dataset: DatasetConfig,
    pub method: MethodConfig,
    pub seed: u64,
}

/// A parsed, validated spec, ready to expand.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub path: PathBuf,
    pub floors: BTreeMap<FloorMetric, f64>,
    pub runs: Vec<PlannedRun>,
}

/// One expanded run of a spec, with the sweep point that produced it (for display).
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub config: RunConfig,
    pub sweep_point: BTreeMap<String, serde_json::Value>,
}

impl Spec {
    /// The folder that relative generic paths are resolved against.
    pub fn dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        Self::load_limited(path, DEFAULT_MAX_RUNS)
    }

    /// Loads a spec that may expand to at most `max_runs` runs.
    pub fn load_limited(path: &Path, max_runs: usize) -> Result<Spec, SpecError> {
        let bytes = std::fs::read(path).map_err(|source| SpecError::Read { path: path.to_path_buf(), source })?;
        let src = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let pos = crate::data::text::position_of(e.as_bytes(), offset);
            SpecError::Invalid { path: path.to_path_buf(), pos: Some(pos), message: "not valid UTF-8: a spec is a UTF-8 YAML file".into() }
        })?;
        Self::parse_limited(path, &src, max_runs)
    }

    pub fn parse(path: &Path, src: &str) -> Result<Spec, SpecError> {
        Self::parse_limited(path, src, DEFAULT_MAX_RUNS)
    }

    pub fn parse_limited(path: &Path, src: &str, max_runs: usize) -> Result<Spec, SpecError> {
        let invalid = |pos: Option<Position>, message: String| SpecError::Invalid { path: path.to_path_buf(), pos, message };
        let file: SpecFile = serde_yaml::from_str(src).map_err(|e| {
            let pos = e.location().map(|l| Position { line: l.line(), column: l.column() });
            invalid(pos, clean_yaml_message(&e.to_string()))
        })?;
        let locate = |keys: &[&str]| locate_key(src, keys);

        let name = match &file.name {
            Some(n) if n.trim().is_empty() => return Err(invalid(locate(&["name"]), "`name` is empty".into())),
            Some(n) => n.clone(),
            None => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "spec".into()),
        };
        let dataset = resolve_dataset(file.dataset).map_err(|(keys, msg)| invalid(locate(&keys), msg))?;
        file.method.validate().map_err(|(key, msg)| invalid(locate(&["method", key]), msg))?;
        if file.seeds.is_empty() {
            return Err(invalid(locate(&["seeds"]), "`seeds` is empty: give at least one seed".into()));
        }
        for (metric, floor) in &file.floors {
            if !(0.0..=1.0).contains(floor) {
                return Err(invalid(locate(&["floors", metric.as_str()]), format!("floor for {} is {floor}; floors are between 0 and 1", metric.as_str())));
            }
        }

        let size = expanded_size(&file.sweep, file.seeds.len());
        if size > max_runs as u128 {
            let factors: Vec<String> =
                file.sweep.values().map(|v| v.as_sequence().map_or(1, |s| s.len()).to_string()).chain([format!("{} seeds", file.seeds.len())]).collect();
            let at = locate(&["sweep"]).or_else(|| locate(&["seeds"]));
            return Err(invalid(
                at,
                format!(
                    "the spec expands to {size} runs ({}), more than the limit of {max_runs}; split the grid, or raise the limit with --max-runs",
                    factors.join(" × ")
                ),
            ));
        }
        let base = RunConfig { dataset, method: file.method, seed: 0 };
        let points = expand_sweep(&base, &file.sweep).map_err(|(key, msg)| invalid(locate(&["sweep", &key]), msg))?;
        let mut runs = Vec::new();
        for (config, point) in points {
            for &seed in &file.seeds {
                runs.push(PlannedRun { config: RunConfig { seed, ..config.clone() }, sweep_point: point.clone() });
            }
        }
        Ok(Spec { name, path: path.to_path_buf(), floors: file.floors, runs })
    }
}

/// serde_yaml puts " at line L column C" inside its messages; the position is printed in front instead.
fn clean_yaml_message(msg: &str) -> String {
    let Some(start) = msg.find(" at line ") else { return msg.to_string() };
    let rest = &msg[start + " at line ".len()..];
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let after_line = &rest[digits(rest)..];
    match after_line.strip_prefix(" column ") {
        Some(col) => format!("{}{}", &msg[..start], &col[digits(col)..]),
        None => msg.to_string(),
    }
}

type FieldError = (Vec<&'static str>, String);

fn resolve_dataset(d: DatasetSpec) -> Result<DatasetConfig, FieldError> {
    let err = |keys: &[&'static str], msg: String| Err((keys.to_vec(), msg));
    let named_names = DatasetName::ALL.map(|n| n.as_str()).join(", ");
    let source = match (d.name, d.format) {
        (Some(_), Some(_)) => return err(&["dataset", "format"], "give either `name` (a known dataset) or `format` (a generic file), not both".into()),
        (None, None) => return err(&["dataset"], format!("the dataset needs `name` (one of {named_names}) or `format` (csv, tsv, jsonl) with a `path`")),
        (Some(name), None) => {
            let parts = match (name, d.parts) {
                (DatasetName::Enron, None) => vec![1, 2, 3, 4, 5, 6],
                (DatasetName::Enron, Some(mut p)) => {
                    p.sort_unstable();
                    p.dedup();
                    p
                }
                (_, Some(_)) => return err(&["dataset", "parts"], "`parts` applies only to the enron dataset".into()),
                (_, None) => vec![],
            };
            let path = match d.path {
                None => None,
                Some(Names::One(p)) => Some(p),
                Some(Names::Many(_)) => return err(&["dataset", "path"], "a named dataset reads one `path` (a list of files is for generic datasets)".into()),
            };
            DataSource::Named { name, path, parts }
        }
        (None, Some(format)) => match d.path {
            Some(path) => DataSource::File { format, path },
            None => return err(&["dataset", "format"], format!("a {format:?} dataset needs a `path`").to_lowercase()),
        },
    };

    // Column and label defaults per source; generic files must say which columns to read.
    // A named dataset's defaults come from the catalog. A generic file is binary only when
    // `positive`/`negative` are given (then as before: 1 and 0 by default), and otherwise infers its classes.
    let named = match &source {
        DataSource::Named { name, .. } => Some(catalog::facts(*name)),
        DataSource::File { .. } => None,
    };
    let (text_default, label_default) = named.map_or((None, None), |f| (f.text_column, f.label_column));
    let (pos_default, neg_default): (&[&str], &[&str]) = named.map_or((&["1"], &["0"]), |f| (f.positive, f.negative));
    // Without `positive`/`negative`, these infer their classes from the label values found.
    let infers = named.is_none_or(|f| f.positive.is_empty());
    let text_column = d.text_column.or(text_default.map(|s| Names::One(s.to_string())));
    let label_column = d.label_column.or(label_default.map(String::from));
    let binary_given = d.positive.is_some() || d.negative.is_some();
    let classes = match d.classes {
        Some(_) if binary_given => {
            return err(&["dataset", "classes"], "give either `classes` or `positive`/`negative`, not both".into());
        }
        Some(v) => Some(class_rule(&v).map_err(|m| (vec!["dataset", "classes"], m))?),
        None if !binary_given && infers => Some(ClassRule::Inferred),
        None => None,
    };
    let (positive, negative) = if classes.is_some() {
        (vec![], vec![])
    } else {
        (
            d.positive.map(OneOrMany::into_vec).unwrap_or_else(|| pos_default.iter().map(|s| s.to_string()).collect()),
            d.negative.map(OneOrMany::into_vec).unwrap_or_else(|| neg_default.iter().map(|s| s.to_string()).collect()),
        )
    };
    let encoding = d.encoding.or(named.map(|f| f.encoding)).unwrap_or_default();
    if d.fine_labels.is_some() && !matches!(source, DataSource::Named { name: DatasetName::Trec, .. }) {
        return err(&["dataset", "fine_labels"], "`fine_labels` applies only to the trec dataset".into());
    }
    let s = d.split;
    // The datasets with a split of their own use it unless the spec asks for another.
    let own_test = named.and_then(|f| f.own_test);
    let (validation, test_file) = match (s.validation, s.test_file, own_test) {
        (None, None, Some(own)) => (None, Some(own.to_string())),
        (None, None, None) => (Some(0.2), None),
        (v, t, _) => (v, t),
    };
    let config = DatasetConfig {
        source,
        text_column,
        label_column,
        positive,
        negative,
        classes,
        fine_labels: d.fine_labels.unwrap_or(false),
        encoding,
        split: SplitConfig { validation, test_file, stratified: s.stratified.unwrap_or(true), seed: s.seed.unwrap_or(42) },
        balance: d.balance,
        dedupe: d.dedupe,
        max_examples: d.max_examples,
    };
    config.validate()?;
    Ok(config)
}

impl DatasetConfig {
    /// The checks a resolved dataset section must pass. Run on what a spec writes and again on every
    /// point of a sweep, which edits the resolved section and could otherwise bypass them.
    fn validate(&self) -> Result<(), FieldError> {
        let err = |keys: &[&'static str], msg: String| Err((keys.to_vec(), msg));
        if let DataSource::Named { name, parts, .. } = &self.source {
            match name {
                DatasetName::Enron if parts.is_empty() || parts.iter().any(|x| !(1..=6).contains(x)) => {
                    return err(&["dataset", "parts"], "Enron `parts` must be a non-empty list of numbers from 1 to 6".into())
                }
                DatasetName::Enron => {}
                _ if !parts.is_empty() => return err(&["dataset", "parts"], "`parts` applies only to the enron dataset".into()),
                _ => {}
            }
        }
        if matches!(self.source, DataSource::File { .. }) {
            if self.text_column.is_none() {
                return err(&["dataset"], "a generic dataset needs `text_column`".into());
            }
            if self.label_column.is_none() {
                return err(&["dataset"], "a generic dataset needs `label_column`".into());
            }
        }
        if let Some(ClassRule::Mapped(values)) = &self.classes {
            if let Some(m) = check_mapping(values) {
                return err(&["dataset", "classes"], m);
            }
        } else if self.classes.is_none() && (self.positive.is_empty() || self.positive.iter().any(|p| p.trim().is_empty())) {
            return err(&["dataset", "positive"], "`positive` needs at least one label value, none of them empty".into());
        }
        if let Some(both) = self.positive.iter().find(|p| self.negative.iter().any(|n| n.trim().eq_ignore_ascii_case(p.trim()))) {
            return err(&["dataset", "negative"], format!("label value {both:?} is listed as both positive and negative"));
        }
        match (self.split.validation, &self.split.test_file) {
            (Some(_), Some(_)) => {
                return err(&["dataset", "split", "test_file"], "give either `validation` (a fraction to hold out) or `test_file`, not both".into())
            }
            (None, None) => {
                return err(&["dataset", "split", "validation"], "the split needs `validation` (a fraction to hold out, e.g. 0.2) or `test_file`".into())
            }
            (Some(v), None) if !(v > 0.0 && v < 1.0) => {
                return err(&["dataset", "split", "validation"], format!("validation fraction is {v}; it must be between 0 and 1 (exclusive), e.g. 0.2"))
            }
            _ => {}
        }
        if self.max_examples.is_some_and(|m| m < 2) {
            return err(&["dataset", "max_examples"], "`max_examples` must be at least 2".into());
        }
        Ok(())
    }
}

/// Reads `classes:`: a mapping `label value: class name`, or a list of label values that are the names.
fn class_rule(v: &serde_yaml::Value) -> Result<ClassRule, String> {
    let text = |v: &serde_yaml::Value| -> Result<String, String> {
        match v {
            serde_yaml::Value::String(s) => Ok(s.clone()),
            serde_yaml::Value::Number(n) => Ok(n.to_string()),
            serde_yaml::Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!("`classes` holds label values and class names, not {}", serde_yaml::to_string(other).unwrap_or_default().trim())),
        }
    };
    let values: Vec<ClassValue> = match v {
        serde_yaml::Value::Mapping(m) => m.iter().map(|(k, c)| Ok(ClassValue { value: text(k)?, class: text(c)? })).collect::<Result<_, String>>()?,
        serde_yaml::Value::Sequence(s) => s.iter().map(|k| text(k).map(|t| ClassValue { value: t.clone(), class: t })).collect::<Result<_, String>>()?,
        _ => return Err("`classes` is a mapping `label value: class name` or a list of label values, e.g. [world, sports, business]".into()),
    };
    let values = values.into_iter().map(|v| ClassValue { value: v.value.trim().to_string(), class: v.class.trim().to_string() }).collect::<Vec<_>>();
    // Its contents (empty names, a value in two classes, fewer than two classes) are checked with the
    // rest of the dataset section, in `DatasetConfig::validate`, which sweeps go through as well.
    Ok(ClassRule::Mapped(values))
}

/// What is wrong with a class mapping, if anything.
fn check_mapping(values: &[ClassValue]) -> Option<String> {
    if let Some(v) = values.iter().find(|v| v.value.is_empty() || v.class.is_empty()) {
        return Some(format!("`classes` has an empty label value or class name ({:?}: {:?})", v.value, v.class));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].iter().any(|w| w.value.eq_ignore_ascii_case(&v.value) && w.class != v.class) {
            return Some(format!("label value {:?} is mapped to two classes", v.value));
        }
    }
    let names = ClassRule::mapped_names(values);
    if names.len() < 2 {
        return Some(format!("`classes` names {} class(es); a classifier needs at least two", names.len()));
    }
    if names.len() > crate::data::labels::MAX_CLASSES {
        return Some(format!("`classes` names {} classes; at most {}", names.len(), crate::data::labels::MAX_CLASSES));
    }
    None
}

/// A sweep's setting for one run: dotted path → the value chosen.
type SweepPoint = BTreeMap<String, serde_json::Value>;

/// How many runs one spec may expand to unless the user raises the limit (`--max-runs`): far more than
/// any honest grid, and small enough that expanding it takes no noticeable memory.
pub const DEFAULT_MAX_RUNS: usize = 10_000;

/// A sweep value as JSON. serde would turn `.nan` and `.inf` into `null` on the way, and a setting would
/// then complain of a null the user never wrote; they are refused here by name instead.
fn sweep_value(key: &str, v: &serde_yaml::Value) -> Result<serde_json::Value, (String, String)> {
    fn non_finite(v: &serde_yaml::Value) -> Option<f64> {
        match v {
            serde_yaml::Value::Number(n) => n.as_f64().filter(|f| !f.is_finite()),
            serde_yaml::Value::Sequence(s) => s.iter().find_map(non_finite),
            serde_yaml::Value::Mapping(m) => m.values().find_map(non_finite),
            serde_yaml::Value::Tagged(t) => non_finite(&t.value),
            _ => None,
        }
    }
    if let Some(f) = non_finite(v) {
        return Err((key.to_string(), format!("sweep `{key}`: {f} is not a finite number; every setting takes finite numbers")));
    }
    serde_json::to_value(v).map_err(|e| (key.to_string(), format!("sweep `{key}`: {e}")))
}

/// The number of runs a spec expands to, computed before expanding (saturating: a grid of 2^70 runs is
/// refused as too large, not wrapped into a small number).
fn expanded_size(sweep: &serde_yaml::Mapping, seeds: usize) -> u128 {
    sweep.values().fold(seeds as u128, |n, v| n.saturating_mul(v.as_sequence().map_or(1, |s| s.len()) as u128))
}

/// Expands `sweep:` (dotted path → list of values) into the grid of configs, in the order the keys are
/// written. Every point passes the same validation as a spec written out by hand.
fn expand_sweep(base: &RunConfig, sweep: &serde_yaml::Mapping) -> Result<Vec<(RunConfig, SweepPoint)>, (String, String)> {
    let base_json = serde_json::to_value(base).expect("a RunConfig serialises");
    let mut grid: Vec<(serde_json::Value, SweepPoint)> = vec![(base_json, SweepPoint::new())];
    for (key, values) in sweep {
        let key = key.as_str().ok_or_else(|| ("".to_string(), "sweep keys are dotted paths such as method.components".to_string()))?.to_string();
        let values = values.as_sequence().filter(|v| !v.is_empty()).ok_or_else(|| (key.clone(), format!("sweep `{key}` needs a non-empty list of values")))?;
        let path: Vec<&str> = key.split('.').collect();
        if !matches!(path.first(), Some(&"method") | Some(&"dataset")) || path.len() < 2 || path.get(1) == Some(&"kind") {
            return Err((key.clone(), format!("sweep key `{key}` must be a path under method or dataset, e.g. method.components or dataset.split.seed")));
        }
        let values: Vec<serde_json::Value> = values.iter().map(|v| sweep_value(&key, v)).collect::<Result<_, _>>()?;
        let mut next = Vec::new();
        for (cfg, point) in &grid {
            for v in &values {
                let mut cfg = cfg.clone();
                let slot = json_path_mut(&mut cfg, &path).ok_or_else(|| {
                    (
                        key.clone(),
                        format!("sweep `{key}`: no such setting; the settings under {} are: {}", path[0], settings_list(&base_settings(base, path[0]))),
                    )
                })?;
                *slot = v.clone();
                let mut point = point.clone();
                point.insert(key.clone(), v.clone());
                next.push((cfg, point));
            }
        }
        grid = next;
    }
    // The sweep key an error found in a point belongs to: the one naming the setting, else one under the
    // same section.
    let key_for = |point: &SweepPoint, section: &str, setting: &str| -> String {
        point
            .keys()
            .find(|k| k.ends_with(setting))
            .or_else(|| point.keys().find(|k| k.starts_with(&format!("{section}."))))
            .or_else(|| point.keys().last())
            .cloned()
            .unwrap_or_default()
    };
    grid.into_iter()
        .map(|(cfg, point)| {
            let config: RunConfig = serde_json::from_value(cfg).map_err(|e| {
                let key = point.keys().last().cloned().unwrap_or_default();
                let values: Vec<String> = point.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (key, format!("sweep value does not fit ({}): {e}", values.join(", ")))
            })?;
            config.method.validate().map_err(|(k, msg)| (key_for(&point, "method", k), msg))?;
            config.dataset.validate().map_err(|(keys, msg)| (key_for(&point, "dataset", keys.last().copied().unwrap_or("dataset")), msg))?;
            Ok((config, point))
        })
        .collect()
}

fn base_settings(base: &RunConfig, section: &str) -> serde_json::Value {
    let v = serde_json::to_value(base).expect("a RunConfig serialises");
    v.get(section).cloned().unwrap_or_default()
}

fn settings_list(v: &serde_json::Value) -> String {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        if let serde_json::Value::Object(m) = v {
            for (k, v) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                if v.is_object() {
                    walk(&p, v, out)
                } else if k != "kind" {
                    out.push(p)
                }
            }
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out.join(", ")
}

fn json_path_mut<'a>(v: &'a mut serde_json::Value, path: &[&str]) -> Option<&'a mut serde_json::Value> {
    let mut cur = v;
    for seg in path {
        cur = cur.as_object_mut()?.get_mut(*seg)?;
    }
    Some(cur)
}

/// Finds where a key path (`dataset`, `split`, `validation`) is written in block-style YAML, so that
/// errors found after parsing (out-of-range values, conflicting keys) still point at a line and column.
pub fn locate_key(src: &str, keys: &[&str]) -> Option<Position> {
    let mut parent_indent: Option<usize> = None;
    let mut start = 0usize;
    let lines: Vec<&str> = src.lines().collect();
    let mut found = None;
    for key in keys {
        found = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if i > start && parent_indent.is_some_and(|p| indent <= p) {
                break; // left the parent's block
            }
            let body = trimmed.trim_start_matches("- ");
            let matches_key = body.strip_prefix(key).is_some_and(|rest| rest.starts_with(':'))
                || body.strip_prefix(&format!("\"{key}\"")).is_some_and(|rest| rest.starts_with(':'));
            if matches_key && parent_indent.is_none_or(|p| indent > p) {
                found = Some((i, indent + (trimmed.len() - body.len())));
                break;
            }
        }
        let (i, indent) = found?;
        parent_indent = Some(indent);
        start = i;
    }
    found.map(|(i, col)| Position { line: i + 1, column: col + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "dataset:\n  name: sms\n  split:\n    validation: 0.2\nmethod:\n  kind: lsa\n  components: 50\n";

    #[test]
    fn parses_and_fills_defaults() {
        let spec = Spec::parse(Path::new("x.yaml"), BASE).unwrap();
        assert_eq!(spec.name, "x");
        assert_eq!(spec.runs.len(), 1);
        let c = &spec.runs[0].config;
        assert_eq!(c.dataset.split.seed, 42);
        assert!(c.dataset.split.stratified);
        assert_eq!(c.dataset.positive, vec!["spam"]);
    }

    #[test]
    fn sweep_and_seeds_expand_as_a_grid() {
        let src = format!("{BASE}seeds: [1, 2]\nsweep:\n  method.components: [10, 20, 30]\n  dataset.split.seed: [7, 8]\n");
        let spec = Spec::parse(Path::new("x.yaml"), &src).unwrap();
        assert_eq!(spec.runs.len(), 12);
        let mut seen: Vec<_> = spec.runs.iter().map(|r| serde_json::to_string(&r.config).unwrap()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 12, "every grid point is a distinct config");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let src = "dataset:\n  name: sms\n  bogus: 1\nmethod:\n  kind: lsa\n";
        let err = Spec::parse(Path::new("s.yaml"), src).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:3:3: dataset: unknown field `bogus`"), "{err}");
    }

    #[test]
    fn unknown_method_param_names_line() {
        let src = "dataset:\n  name: sms\nmethod:\n  kind: lsa\n  componentz: 3\n";
        let err = Spec::parse(Path::new("s.yaml"), src).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:5:3: method: unknown field `componentz`"), "{err}");
        assert!(err.contains("components"), "lists the valid keys: {err}");
    }

    #[test]
    fn out_of_range_is_located() {
        let src = BASE.replace("0.2", "1.5");
        let err = Spec::parse(Path::new("s.yaml"), &src).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:4:5: validation fraction is 1.5"), "{err}");
    }

    #[test]
    fn lora_on_a_pooler_that_mean_pooling_bypasses_is_rejected() {
        let src = "dataset:\n  name: sms\nmethod:\n  kind: lora\n  pooling: mean\n  lora:\n    targets: [query, pooler]\n";
        let err = Spec::parse(Path::new("s.yaml"), src).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:") && err.contains("pooling: mean bypasses the pooler"), "{err}");
        let ok = src.replace("pooling: mean", "pooling: cls");
        assert_eq!(Spec::parse(Path::new("s.yaml"), &ok).unwrap().runs.len(), 1);
    }

    #[test]
    fn a_lora_target_no_family_has_is_rejected_with_the_names() {
        let src = "dataset:\n  name: sms\nmethod:\n  kind: lora\n  lora:\n    targets: [query, qeury]\n";
        let err = Spec::parse(Path::new("s.yaml"), src).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:") && err.contains("\"qeury\", which is no layer LoRA can wrap (query, key, value"), "{err}");
    }

    #[test]
    fn numeric_and_boolean_label_values_read_as_text() {
        let src = "dataset:\n  format: jsonl\n  path: d.jsonl\n  text_column: text\n  label_column: label\n  positive: 1\n  negative: [0, false]\nmethod:\n  kind: lsa\n";
        let spec = Spec::parse(Path::new("s.yaml"), src).unwrap();
        assert_eq!(spec.runs[0].config.dataset.positive, vec!["1"]);
        assert_eq!(spec.runs[0].config.dataset.negative, vec!["0", "false"]);
    }

    #[test]
    fn bucketing_takes_a_bool_or_split_and_names_the_choices() {
        let lora = |b: &str| format!("dataset:\n  name: sms\nmethod:\n  kind: lora\n  bucketing: {b}\n");
        let method = |b: &str| serde_json::to_value(&Spec::parse(Path::new("s.yaml"), &lora(b)).unwrap().runs[0].config.method).unwrap();
        assert_eq!(method("true")["bucketing"], serde_json::json!(true), "stored as before, so run ids stay");
        assert_eq!(method("false")["bucketing"], serde_json::json!(false));
        assert_eq!(method("split")["bucketing"], serde_json::json!("split"));
        let err = Spec::parse(Path::new("s.yaml"), &lora("sorted")).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:") && err.contains("true (length bucketing), false (random batches) or split"), "{err}");
    }

    #[test]
    fn a_tuned_threshold_needs_a_metric_that_depends_on_it() {
        let lora = |m: &str| format!("dataset:\n  name: sms\nmethod:\n  kind: lora\n  early_stopping:\n    metric: {m}\n    tune_threshold: true\n");
        let err = Spec::parse(Path::new("s.yaml"), &lora("auroc")).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:") && err.contains("use metric: accuracy or f1"), "{err}");
        let method = |src: &str| serde_json::to_value(&Spec::parse(Path::new("s.yaml"), src).unwrap().runs[0].config.method).unwrap();
        assert_eq!(method(&lora("accuracy"))["early_stopping"]["tune_threshold"], serde_json::json!(true));
        let off = lora("f1").replace("tune_threshold: true", "patience: 2");
        assert!(method(&off)["early_stopping"].get("tune_threshold").is_none(), "left out when off, so run ids stay");
    }

    #[test]
    fn classes_are_a_mapping_a_list_or_inferred() {
        let generic = |extra: &str| format!("dataset:\n  format: csv\n  path: d.csv\n  text_column: text\n  label_column: y\n{extra}method:\n  kind: lsa\n");
        let dataset = |src: &str| Spec::parse(Path::new("s.yaml"), src).map(|s| s.runs[0].config.dataset.clone());
        // Nothing said: the classes are the label values found.
        let d = dataset(&generic("")).unwrap();
        assert_eq!(d.classes, Some(ClassRule::Inferred));
        assert!(d.positive.is_empty());
        // A mapping: several values to one class, names in first-seen order; integer keys read as text.
        let d = dataset(&generic("  classes:\n    1: world\n    2: sports\n    3: world\n")).unwrap();
        let Some(ClassRule::Mapped(values)) = &d.classes else { panic!("{:?}", d.classes) };
        assert_eq!(values.len(), 3);
        assert_eq!(ClassRule::mapped_names(values), vec!["world", "sports"]);
        assert_eq!(d.label_map().map("3"), Some(0));
        // A list: each value its own class, in the order given.
        let d = dataset(&generic("  classes: [neg, pos]\n")).unwrap();
        assert_eq!(d.label_map().classes().unwrap().names, vec!["neg", "pos"]);
        // positive/negative keep their binary meaning and defaults, and the config has no `classes` (run
        // ids stay).
        let d = dataset(&generic("  positive: spam\n")).unwrap();
        assert_eq!((d.classes.as_ref(), &d.negative[..]), (None, &["0".to_string()][..]));
        assert!(!serde_json::to_string(&d).unwrap().contains("classes"));
        // Named binary datasets stay binary; the multi-class ones infer, with their own test split.
        let named = |n: &str| dataset(&format!("dataset:\n  name: {n}\nmethod:\n  kind: lsa\n")).unwrap();
        assert_eq!(named("sms").classes, None);
        assert_eq!(named("trec").classes, Some(ClassRule::Inferred));
        assert_eq!(named("trec").split.test_file.as_deref(), Some("TREC_10.label"));
        assert_eq!(named("20newsgroups").split.validation, None);
        assert_eq!(named("20newsgroups").encoding, Encoding::Latin1);
    }

    #[test]
    fn bad_class_sections_are_located() {
        let generic = |extra: &str| format!("dataset:\n  format: csv\n  path: d.csv\n  text_column: text\n  label_column: y\n{extra}method:\n  kind: lsa\n");
        let err = |src: &str| Spec::parse(Path::new("s.yaml"), src).unwrap_err().to_string();
        let cases = [
            ("  classes: [a, b]\n  positive: a\n", "6:3", "not both"),
            ("  classes: [only]\n", "6:3", "at least two"),
            ("  classes:\n    a: x\n    A: y\n", "6:3", "mapped to two classes"),
            ("  classes: {a: x, b: [y]}\n", "6:3", "label values and class names"),
            ("  classes: 7\n", "6:3", "a mapping"),
            ("  fine_labels: true\n", "6:3", "only to the trec dataset"),
        ];
        for (extra, at, says) in cases {
            let e = err(&generic(extra));
            assert!(e.starts_with(&format!("s.yaml:{at}")) && e.contains(says), "{extra:?}: {e}");
        }
        let e = err("dataset:\n  name: sms\n  path: [a, b]\nmethod:\n  kind: lsa\n");
        assert!(e.contains("a named dataset reads one `path`"), "{e}");
    }

    #[test]
    fn several_text_columns_and_files_stay_plain_strings_when_one() {
        let src = "dataset:\n  format: csv\n  path: [a.csv, 'more/*.csv']\n  text_column: [title, body]\n  label_column: y\nmethod:\n  kind: lsa\n";
        let d = Spec::parse(Path::new("s.yaml"), src).unwrap().runs[0].config.dataset.clone();
        assert_eq!(d.text_column.as_ref().unwrap().names(), vec!["title", "body"]);
        assert!(matches!(&d.source, DataSource::File { path: Names::Many(p), .. } if p.len() == 2));
        assert_eq!(d.display_name(), "a+1");
        let one = Spec::parse(Path::new("s.yaml"), BASE).unwrap().runs[0].config.dataset.clone();
        let json = serde_json::to_value(&one).unwrap();
        assert!(json.get("text_column").unwrap().is_null());
        let csv = "dataset:\n  format: csv\n  path: a.csv\n  text_column: text\n  label_column: y\n  positive: 1\nmethod:\n  kind: lsa\n";
        let json = serde_json::to_value(&Spec::parse(Path::new("s.yaml"), csv).unwrap().runs[0].config.dataset).unwrap();
        assert_eq!((json["path"].as_str(), json["text_column"].as_str()), (Some("a.csv"), Some("text")), "one name serialises as before");
    }

    #[test]
    fn bad_sweep_key_lists_settings() {
        let src = format!("{BASE}sweep:\n  method.nope: [1]\n");
        let err = Spec::parse(Path::new("s.yaml"), &src).unwrap_err().to_string();
        assert!(err.contains("s.yaml:9:3") && err.contains("components"), "{err}");
    }

    #[test]
    fn yaml_messages_lose_their_inline_position() {
        assert_eq!(clean_yaml_message("found x at line 5 column 1, while scanning"), "found x, while scanning");
        assert_eq!(clean_yaml_message("unknown field `a` at line 2 column 3"), "unknown field `a`");
        assert_eq!(clean_yaml_message("no position here"), "no position here");
    }

    #[test]
    fn locate_key_respects_nesting() {
        let src = "a:\n  seed: 1\nb:\n  c:\n    seed: 2\n";
        assert_eq!(locate_key(src, &["b", "c", "seed"]), Some(Position { line: 5, column: 5 }));
        assert_eq!(locate_key(src, &["a", "seed"]), Some(Position { line: 2, column: 3 }));
        assert_eq!(locate_key(src, &["a", "c"]), None);
    }
}
