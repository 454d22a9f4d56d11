//! Datasets: finding them, reading them (one module per source format), and preparing the split a run
//! uses. Malformed rows are counted and kept in a report that goes into every run record.

pub mod catalog;
pub mod enron;
pub mod fetch;
pub mod labels;
pub mod newsgroups;
pub mod sms;
pub mod split;
pub mod table;
pub mod text;
pub mod trec;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::progress::Progress;
use crate::spec::{DataSource, DatasetConfig, DatasetName, Encoding, FileFormat};
pub use labels::{ClassSet, LabelMap};

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
    /// Adds another file's report to this one.
    pub fn absorb(&mut self, other: LoadReport) {
        self.rows_read += other.rows_read;
        self.malformed_rows += other.malformed_rows;
        let room = MALFORMED_EXAMPLES.saturating_sub(self.malformed_examples.len());
        self.malformed_examples.extend(other.malformed_examples.into_iter().take(room));
        self.decoded_as_latin1 += other.decoded_as_latin1;
        self.overflow_joined += other.overflow_joined;
        for (k, v) in other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
    }

    /// `12 rows skipped (10 unknown label, 2 empty text)`, or None when no row was.
    pub fn skipped_summary(&self) -> Option<String> {
        if self.malformed_rows == 0 {
            return None;
        }
        let reasons: Vec<String> = self.skipped.iter().map(|(r, n)| format!("{n} {}", r.describe())).collect();
        let rows = if self.malformed_rows == 1 { "row" } else { "rows" };
        Some(if reasons.is_empty() {
            format!("{} {rows} skipped", self.malformed_rows)
        } else {
            format!("{} {rows} skipped ({})", self.malformed_rows, reasons.join(", "))
        })
    }
}

/// Labelled texts as read from the files, in file order.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub texts: Vec<String>,
    /// Class indices (see [`labels`]); while an inferred class set is read, indices into `inferred`.
    pub labels: Vec<u32>,
    /// The line (or file number, for one-file-per-example sets) each example came from.
    pub lines: Vec<usize>,
    pub files: Vec<PathBuf>,
    pub report: LoadReport,
    /// The label values met so far when the classes are inferred, in the order first met.
    inferred: Vec<String>,
    inferred_index: rustc_hash::FxHashMap<String, u32>,
}

impl Dataset {
    fn new(path: &Path) -> Self {
        Dataset { files: vec![path.to_path_buf()], ..Default::default() }
    }

    pub(crate) fn push(&mut self, text: String, label: u32, line: usize) {
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
        let class = match labels {
            LabelMap::Inferred if raw_label.trim().is_empty() => {
                return self.malformed(path, line, SkipReason::MissingLabel, "empty label".into());
            }
            LabelMap::Inferred if body.trim().is_empty() => Some(0),
            LabelMap::Inferred => Some(self.intern(raw_label.trim())),
            _ => labels.map(raw_label),
        };
        match class {
            Some(_) if body.trim().is_empty() => self.malformed(path, line, SkipReason::EmptyText, "empty text".into()),
            Some(y) => self.push(body, y, line),
            None => {
                let shown: String = raw_label.chars().take(40).collect();
                self.malformed(path, line, SkipReason::UnknownLabel, format!("unknown label {shown:?} (expected {})", labels.describe()))
            }
        }
    }

    /// Appends the examples of another file read with the same label map (several files read as one).
    fn append(&mut self, other: Dataset) {
        let renumber: Vec<u32> = other.inferred.iter().map(|v| self.intern(v)).collect();
        for ((text, y), line) in other.texts.into_iter().zip(other.labels).zip(other.lines) {
            let y = if renumber.is_empty() { y } else { renumber[y as usize] };
            self.push(text, y, line);
        }
        self.files.extend(other.files);
        self.report.absorb(other.report);
    }

    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&i) = self.inferred_index.get(value) {
            return i;
        }
        let i = self.inferred.len() as u32;
        self.inferred.push(value.to_string());
        self.inferred_index.insert(value.to_string(), i);
        i
    }

    /// Settles the class set of a file read with [`LabelMap::Inferred`]: its distinct values, sorted,
    /// with the labels renumbered to match.
    fn settle_inferred(&mut self, name: &str) -> Result<ClassSet, DataError> {
        let names = labels::sorted_names(self.inferred.clone());
        if names.len() > labels::MAX_CLASSES {
            let shown: Vec<&str> = self.inferred.iter().take(5).map(String::as_str).collect();
            return Err(DataError::Unusable {
                name: name.to_string(),
                message: format!(
                    "the label column holds {} distinct values (first: {}); at most {} classes are read. Is `label_column` the right column?",
                    names.len(),
                    shown.join(", "),
                    labels::MAX_CLASSES
                ),
            });
        }
        let renumber: Vec<u32> = self.inferred.iter().map(|v| names.iter().position(|n| n == v).expect("a name") as u32).collect();
        for y in &mut self.labels {
            *y = renumber[*y as usize];
        }
        self.inferred.clear();
        self.inferred_index.clear();
        Ok(ClassSet::new(names))
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// SHA-256 over labels and texts in order: two datasets with the same fingerprint are the same data.
    /// A label below 255 is one byte (so binary data hashes as it always has), others 0xFF and four.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (t, &y) in self.texts.iter().zip(&self.labels) {
            if y < 255 {
                h.update([y as u8]);
            } else {
                h.update([255]);
                h.update(y.to_le_bytes());
            }
            h.update((t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Reads a file of one example a line (blank lines ignored): `row` turns each line into an example or a
/// skipped row, given the dataset, the 1-based line number and the line.
fn read_lines(path: &Path, encoding: Encoding, mut row: impl FnMut(&mut Dataset, usize, &str)) -> Result<Dataset, DataError> {
    let text = read_file(path, encoding)?;
    let mut ds = Dataset::new(path);
    for (i, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            ds.report.rows_read += 1;
            row(&mut ds, i + 1, line);
        }
    }
    Ok(ds)
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

/// The training data and, when the spec names a test file, the evaluation data, with their classes.
pub struct Loaded {
    pub main: Dataset,
    pub test: Option<Dataset>,
    pub classes: ClassSet,
}

/// Reads the data a dataset section names. Missing files name where they were looked for and how to get them.
/// Inferred classes are those of the main (training) file; a test file's rows in no such class are
/// counted as unknown labels.
pub fn load(cfg: &DatasetConfig, loc: &DataLocation, progress: &Progress) -> Result<Loaded, DataError> {
    let labels = cfg.label_map();
    let mut main = load_one(cfg, loc, None, &labels, progress)?;
    let classes = match labels.classes() {
        Some(c) => c,
        None => main.settle_inferred(&cfg.display_name())?,
    };
    let test_labels = match labels {
        LabelMap::Inferred => LabelMap::of_classes(&classes),
        other => other,
    };
    let test = match &cfg.split.test_file {
        Some(file) => Some(load_one(cfg, loc, Some(file), &test_labels, progress)?),
        None => None,
    };
    Ok(Loaded { main, test, classes })
}

fn load_one(cfg: &DatasetConfig, loc: &DataLocation, test_file: Option<&str>, labels: &LabelMap, progress: &Progress) -> Result<Dataset, DataError> {
    let text_columns = cfg.text_column.as_ref().map(|c| c.names()).unwrap_or_default();
    let cols = |join_overflow| table::Columns { text: &text_columns, label: cfg.label_column.as_deref().expect("resolved"), join_overflow };
    let ds = match &cfg.source {
        DataSource::File { format, path } => {
            let paths = match test_file {
                Some(t) => vec![existing(resolve(&loc.spec_dir, t), "the path is relative to the spec file's folder")?],
                None => table::expand_paths(&loc.spec_dir, &path.names())?,
            };
            table::read_all(&paths, *format, cfg.encoding, &cols(false), labels)?
        }
        DataSource::Named { name, path, parts } => {
            let dir = loc.data_dir.join(name.as_str());
            let hint = catalog::how_to_get(*name, &loc.data_dir);
            // The file to read: the test file, the spec's path, or the catalog's main file.
            let file = || {
                let p = match (test_file, path) {
                    (Some(t), _) => resolve(&dir, t),
                    (None, Some(p)) => resolve(&loc.data_dir, p),
                    (None, None) => dir.join(catalog::facts(*name).main_file),
                };
                existing(p, &hint)
            };
            match name {
                DatasetName::Sms => sms::read(&file()?, labels, cfg.encoding)?,
                DatasetName::SmsKaggle => table::read(&file()?, FileFormat::Csv, cfg.encoding, &cols(true), labels)?,
                DatasetName::Jigsaw => table::read(&file()?, FileFormat::Csv, cfg.encoding, &cols(false), labels)?,
                DatasetName::Trec => trec::read(&file()?, labels, cfg.encoding, cfg.fine_labels)?,
                DatasetName::Newsgroups20 => {
                    let base = path.as_ref().map_or(dir.clone(), |p| resolve(&loc.data_dir, p));
                    let split = test_file.unwrap_or(newsgroups::TRAIN_FOLDER);
                    newsgroups::read(&newsgroups::locate(&base, split, &hint)?, split, labels, cfg.encoding)?
                }
                DatasetName::Enron => match (test_file, path) {
                    // The one-file CSV form of Enron-Spam.
                    (Some(t), _) => enron_csv(&existing(resolve(&dir, t), &hint)?, cfg, labels)?,
                    (None, Some(p)) if p.ends_with(".csv") => enron_csv(&existing(resolve(&loc.data_dir, p), &hint)?, cfg, labels)?,
                    (None, p) => {
                        let base = p.as_ref().map_or(dir.clone(), |p| resolve(&loc.data_dir, p));
                        let sources = enron::locate_parts(&base, parts, &hint)?;
                        let bar = progress.bar(sources.len() as u64, "reading enron", "parts");
                        let ds = enron::read(&sources, labels, &bar)?;
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
    let text = cfg.text_column.as_ref().map_or_else(|| vec!["Subject".to_string(), "Message".to_string()], |c| c.names());
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
