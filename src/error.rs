//! Error types. Two families matter to the user: input errors (a bad spec, missing or malformed data),
//! which are the user's to fix and exit with code 2 before anything is written, and failures while a run
//! executes, which are recorded in the run's record and make `bench run` exit with code 1.

use std::path::PathBuf;

/// Exit code for usage and input errors (bad arguments, bad spec, missing or unusable data).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for runs that failed, or floors that did not hold.
pub const EXIT_FAILED: i32 = 1;

/// A position in a text file, 1-based, as editors show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Formats `path[:line:column]` for messages.
pub fn at(path: &std::path::Path, pos: Option<Position>) -> String {
    match pos {
        Some(p) => format!("{}:{}", path.display(), p),
        None => path.display().to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: cannot read the spec: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", at(path, *pos))]
    Invalid { path: PathBuf, pos: Option<Position>, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: not found. {hint}", path.display())]
    Missing { path: PathBuf, hint: String },
    #[error("{}: cannot read: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not valid UTF-8 at line {}, column {} (byte offset {offset}); the spec declares encoding utf-8. If the file is Latin-1/Windows-1252, set `encoding: latin-1` in the dataset section", path.display(), pos.line, pos.column)]
    NotUtf8 { path: PathBuf, pos: Position, offset: usize },
    #[error("{}: no column named {column:?} ({role}); the columns are: {}", path.display(), available.join(", "))]
    MissingColumn { path: PathBuf, column: String, role: &'static str, available: Vec<String> },
    #[error("{}: {message}", at(path, *pos))]
    Malformed { path: PathBuf, pos: Option<Position>, message: String },
    #[error("dataset {name}: no usable examples ({detail})")]
    Empty { name: String, detail: String },
    #[error("dataset {name}: {message}")]
    Unusable { name: String, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("downloading {url}: {message}")]
    Http { url: String, message: String },
    #[error("{what}: checksum mismatch: expected sha256 {expected}, got {actual}; nothing was written")]
    Checksum { what: String, expected: String, actual: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("unpacking {what}: {message}")]
    Unpack { what: String, message: String },
    #[error("{0}")]
    Unsupported(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a valid run record: {source}", path.display())]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("{}: an unusable run record: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    #[error("{}: cannot write run records there: {source}. Give a writable folder with --runs-dir (or BENCH_RUNS_DIR)", path.display())]
    NotWritable { path: PathBuf, source: std::io::Error },
    #[error("{query:?} is not a run id: give the id (or a unique start of it) that `bench list` shows, 16 hexadecimal digits")]
    BadQuery { query: String },
    #[error("no run matches {query:?} in {}", dir.display())]
    NotFound { query: String, dir: PathBuf },
    #[error("{query:?} matches several runs in {}: {}", dir.display(), ids.join(", "))]
    Ambiguous { query: String, dir: PathBuf, ids: Vec<String> },
}

impl StoreError {
    /// The file or folder the error is about, where there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Self::Io { path, .. } | Self::Corrupt { path, .. } | Self::Unusable { path, .. } | Self::NotWritable { path, .. } => Some(path),
            Self::NotFound { .. } | Self::Ambiguous { .. } | Self::BadQuery { .. } => None,
        }
    }
}

/// Problems with a model folder (a backbone checkpoint) or running it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {hint}", path.display())]
    Missing { path: PathBuf, hint: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

/// An error raised while a method fits or predicts; recorded in the run record as the failure reason.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    #[error("{0}")]
    Numerical(String),
    /// Settings that cannot work on this data (found only once the data is split).
    #[error("{0}")]
    Unfit(String),
    #[error("logistic regression: {0}")]
    Logistic(#[from] linfa_logistic::error::Error),
    #[error("linear algebra: {0}")]
    Linalg(#[from] linfa_linalg::LinalgError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A panic inside a method, caught by the runner: a bug, never the input's fault.
    #[error("internal error (a bug in textbench, please report it): {0}")]
    Internal(String),
}

/// Whether an error (anywhere in an anyhow chain) is the user's input to fix: exit code 2.
pub fn is_usage_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let bad_run_name = matches!(
            e.downcast_ref::<StoreError>(),
            Some(
                StoreError::NotFound { .. }
                    | StoreError::Ambiguous { .. }
                    | StoreError::BadQuery { .. }
                    | StoreError::Corrupt { .. }
                    | StoreError::Unusable { .. }
                    | StoreError::NotWritable { .. }
            )
        );
        let bad_model = matches!(e.downcast_ref::<ModelError>(), Some(ModelError::Missing { .. } | ModelError::Invalid { .. } | ModelError::Device(_)));
        let bad_out = matches!(e.downcast_ref::<crate::report::ReportError>(), Some(crate::report::ReportError::Refused { .. }));
        e.is::<SpecError>() || e.is::<DataError>() || e.is::<UsageError>() || bad_run_name || bad_model || bad_out
    })
}

/// A command-line mistake that clap cannot see (for example, an unknown dataset name given to `fetch`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
