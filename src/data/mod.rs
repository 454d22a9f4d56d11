//! Datasets: finding them, reading them (one module per source format), and preparing the split a run
//! uses. Malformed rows are counted and kept in a report that goes into every run record.

pub mod catalog;
pub mod enron;
pub mod fetch;
pub mod sms;
pub mod split;
pub mod table;
pub mod text;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::progress::Progress;
use crate::spec::{DataSource, DatasetConfig, DatasetName, Encoding, FileFormat};

/// How many malformed rows are quoted in the report (all are counted).
const MALFORMED_EXAMPLES: usize = 20;

/// Why a row was set aside. Every skipped row is counted under one of these, and `bench run` prints the
/// counts: rows are never dropped without a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The label is in none of the classes the spec maps.
    UnknownLabel,
    /// The row has no label value at all.
    MissingLabel,
    EmptyText,
    /// Too few fields for the columns read, or more than the header has.
    WrongFieldCount,
    /// A quote that opens a field and does not close it on that row, so the field would swallow the rows
    /// after it.
    StrayQuote,
    /// A line that is not a JSON object (JSON Lines), or has no TAB (the SMS corpus).
    NotARow,
    /// A row the CSV reader could not read.
    Unreadable,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::UnknownLabel => "unknown label",
            Self::MissingLabel => "no label",
            Self::EmptyText => "empty text",
            Self::WrongFieldCount => "wrong number of fields",
            Self::StrayQuote => "stray quote",
            Self::NotARow => "not a row",
            Self::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MalformedRow {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// What reading the files found, beyond the examples themselves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub rows_read: usize,
    pub malformed_rows: usize,
    /// The first few malformed rows, with their file and line.
    pub malformed_examples: Vec<MalformedRow>,
    /// Files or rows that were not valid UTF-8 and were read as Windows-1252 (Enron).
    pub decoded_as_latin1: usize,
    /// Rows whose text had spilled into extra columns and was joined back (Kaggle's spam.csv).
    pub overflow_joined: usize,
    /// The malformed rows counted by reason (absent in records older than it).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub skipped: std::collections::BTreeMap<SkipReason, usize>,
}

impl LoadReport {
    /// `12 rows skipped (10 unknown label, 2 empty text)`, or None when no row was.
    pub fn skipped_summary(&self) -> Option<String> {
        if self.malformed_rows == 0 {
            return None;
        }
        let reasons: Vec<String> = self.skipped.iter().map(|(r, n)| format!("{n} {}", r.describe())).collect();
        let rows = if self.malformed_rows == 1 { "row" } else { "rows" };
        Some(if reasons.is_empty() { format!("{} {rows} skipped", self.malformed_rows) } else { format!("{} {rows} skipped ({})", self.malformed_rows, reasons.join(", ")) })
    }
}

/// Labelled texts as read from the files, in file order.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub texts: Vec<String>,
    pub labels: Vec<bool>,
    /// The line (or file number, for one-file-per-example sets) each example came from.
    pub lines: Vec<usize>,
    pub files: Vec<PathBuf>,
    pub report: LoadReport,
}

impl Dataset {
    fn new(path: &Path) -> Self {
        Dataset { files: vec![path.to_path_buf()], ..Default::default() }
    }

    fn push(&mut self, text: String, label: bool, line: usize) {
        self.texts.push(text);
        self.labels.push(label);
        self.lines.push(line);
    }

    fn malformed(&mut self, path: &Path, line: usize, why: SkipReason, reason: String) {
        self.report.malformed_rows += 1;
        *self.report.skipped.entry(why).or_default() += 1;
        if self.report.malformed_examples.len() < MALFORMED_EXAMPLES {
            self.report.malformed_examples.push(MalformedRow { file: path.display().to_string(), line, reason });
        }
    }

    /// A row with its text and raw label: kept when the label maps to a class and the text is not
    /// empty, counted as skipped otherwise.
    fn labelled(&mut self, path: &Path, line: usize, body: String, raw_label: &str, labels: &LabelMap) {
        match labels.map(raw_label) {
            Some(_) if body.trim().is_empty() => self.malformed(path, line, SkipReason::EmptyText, "empty text".into()),
            Some(y) => self.push(body, y, line),
            None => {
                let shown: String = raw_label.chars().take(40).collect();
                self.malformed(path, line, SkipReason::UnknownLabel, format!("unknown label {shown:?} (expected {})", labels.describe()))
            }
        }
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|&&l| l).count()
    }

    /// SHA-256 over labels and texts in order: two datasets with the same fingerprint are the same data.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (t, &y) in self.texts.iter().zip(&self.labels) {
            h.update([y as u8]);
            h.update((t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Maps raw label values to the positive class (true) or the negative class (false).
#[derive(Debug, Clone)]
pub struct LabelMap {
    positive: Vec<String>,
    /// Empty: every value that is not positive is negative.
    negative: Vec<String>,
}

impl LabelMap {
    pub fn new(positive: &[String], negative: &[String]) -> Self {
        LabelMap { positive: positive.to_vec(), negative: negative.to_vec() }
    }

    /// Label values compare trimmed and case-insensitively (`Spam`, `spam `).
    pub fn map(&self, raw: &str) -> Option<bool> {
        let raw = raw.trim();
        let is = |v: &Vec<String>| v.iter().any(|p| p.trim().eq_ignore_ascii_case(raw));
        if is(&self.positive) {
            Some(true)
        } else if self.negative.is_empty() || is(&self.negative) {
            Some(false)
        } else {
            None
        }
    }

    pub fn describe(&self) -> String {
        let neg = if self.negative.is_empty() { "anything else".to_string() } else { self.negative.join(" | ") };
        format!("positive: {}; negative: {neg}", self.positive.join(" | "))
    }
}

/// Reads a whole file and decodes it as the spec declares.
fn read_file(path: &Path, encoding: Encoding) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    match encoding {
        Encoding::Utf8 => text::utf8(path, bytes),
        Encoding::Latin1 => Ok(text::latin1(&bytes)),
    }
}

/// Where a run's data is looked for.
#[derive(Debug, Clone)]
pub struct DataLocation {
    /// The data directory for named datasets (`--data-dir`, `BENCH_DATA_DIR`, default `datasets/`).
    pub data_dir: PathBuf,
    /// The spec's folder: relative paths of generic files are relative to it.
    pub spec_dir: PathBuf,
}

/// The training data and, when the spec names a test file, the evaluation data.
pub struct Loaded {
    pub main: Dataset,
    pub test: Option<Dataset>,
}

/// Reads the data a dataset section names. Missing files name where they were looked for and how to get them.
pub fn load(cfg: &DatasetConfig, loc: &DataLocation, progress: &Progress) -> Result<Loaded, DataError> {
    let main = load_one(cfg, loc, None, progress)?;
    let test = match &cfg.split.test_file {
        Some(file) => Some(load_one(cfg, loc, Some(file), progress)?),
        None => None,
    };
    Ok(Loaded { main, test })
}

fn load_one(cfg: &DatasetConfig, loc: &DataLocation, test_file: Option<&str>, progress: &Progress) -> Result<Dataset, DataError> {
    let labels = LabelMap::new(&cfg.positive, &cfg.negative);
    let cols = |join_overflow| table::Columns {
        text: std::slice::from_ref(cfg.text_column.as_ref().expect("resolved")),
        label: cfg.label_column.as_deref().expect("resolved"),
        join_overflow,
    };
    let ds = match &cfg.source {
        DataSource::File { format, path } => {
            let path = existing(resolve(&loc.spec_dir, test_file.unwrap_or(path)), "the path is relative to the spec file's folder")?;
            table::read(&path, *format, cfg.encoding, &cols(false), &labels)?
        }
        DataSource::Named { name, path, parts } => {
            let dir = loc.data_dir.join(name.as_str());
            let hint = catalog::how_to_get(*name, &loc.data_dir);
            let file = |default: &str| {
                let p = match (test_file, path) {
                    (Some(t), _) => resolve(&dir, t),
                    (None, Some(p)) => resolve(&loc.data_dir, p),
                    (None, None) => dir.join(default),
                };
                existing(p, &hint)
            };
            match name {
                DatasetName::Sms => sms::read(&file("SMSSpamCollection")?, &labels, cfg.encoding)?,
                DatasetName::SmsKaggle => table::read(&file("spam.csv")?, FileFormat::Csv, cfg.encoding, &cols(true), &labels)?,
                DatasetName::Jigsaw => table::read(&file("train.csv")?, FileFormat::Csv, cfg.encoding, &cols(false), &labels)?,
                DatasetName::Enron => match (test_file, path) {
                    // The one-file CSV form of Enron-Spam.
                    (Some(t), _) => enron_csv(&existing(resolve(&dir, t), &hint)?, cfg, &labels)?,
                    (None, Some(p)) if p.ends_with(".csv") => enron_csv(&existing(resolve(&loc.data_dir, p), &hint)?, cfg, &labels)?,
                    (None, p) => {
                        let base = p.as_ref().map_or(dir.clone(), |p| resolve(&loc.data_dir, p));
                        let sources = enron::locate_parts(&base, parts, &hint)?;
                        let bar = progress.bar(sources.len() as u64, "reading enron", "parts");
                        let ds = enron::read(&sources, &labels, &bar)?;
                        bar.finish_and_clear();
                        ds
                    }
                },
            }
        }
    };
    if ds.is_empty() {
        let detail = format!(
            "{} rows read, {} malformed{}",
            ds.report.rows_read,
            ds.report.malformed_rows,
            ds.report.malformed_examples.first().map(|m| format!("; first: {}:{}: {}", m.file, m.line, m.reason)).unwrap_or_default()
        );
        return Err(DataError::Empty { name: format!("{} ({})", cfg.display_name(), ds.files[0].display()), detail });
    }
    Ok(ds)
}

/// The one-file CSV form: columns Message ID, Subject, Message, Spam/Ham, Date.
fn enron_csv(path: &Path, cfg: &DatasetConfig, labels: &LabelMap) -> Result<Dataset, DataError> {
    let text = match &cfg.text_column {
        Some(c) => vec![c.clone()],
        None => vec!["Subject".to_string(), "Message".to_string()],
    };
    let label = cfg.label_column.clone().unwrap_or_else(|| "Spam/Ham".to_string());
    let cols = table::Columns { text: &text, label: &label, join_overflow: false };
    table::read(path, FileFormat::Csv, cfg.encoding, &cols, labels)
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn existing(p: PathBuf, hint: &str) -> Result<PathBuf, DataError> {
    if p.exists() {
        Ok(p)
    } else {
        Err(DataError::Missing { path: p, hint: hint.to_string() })
    }
}
