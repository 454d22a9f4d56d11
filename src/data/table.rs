//! Tables with named columns: CSV, TSV and JSON Lines. Row-level problems (a wrong number of fields,
//! an unknown label, an empty text, a stray quote) are counted and kept in the report with their line;
//! a missing column, an empty file or a file that cannot be decoded is an error.
//!
//! Line numbers come from the byte offsets of each row in the decoded text, so they are right for
//! LF and CRLF files alike and for rows whose quoted text spans several lines.

use std::path::Path;

use super::{read_file, Dataset, LabelMap, SkipReason};
use crate::error::{DataError, Position};
use crate::spec::{Encoding, FileFormat};

/// What to read from a table.
pub struct Columns<'a> {
    /// Joined with a newline when there are several (Enron's CSV form: Subject and Message).
    pub text: &'a [String],
    pub label: &'a str,
    /// Kaggle's spam.csv: text that spilled past unquoted commas into unnamed trailing columns is
    /// joined back onto the text.
    pub join_overflow: bool,
}

/// Column names shown when a column is missing: enough to spot a typo, never a whole line of a file
/// that is not a table at all.
const NAMES_SHOWN: usize = 20;
const NAME_CHARS: usize = 40;

/// The files a generic dataset names: paths relative to the spec's folder, or glob patterns (`data/*.csv`)
/// matched in sorted order. A pattern that matches nothing is an error, as a missing file is.
pub fn expand_paths(base: &Path, names: &[String]) -> Result<Vec<std::path::PathBuf>, DataError> {
    let mut out = Vec::new();
    for name in names {
        let full = if Path::new(name).is_absolute() { std::path::PathBuf::from(name) } else { base.join(name) };
        if name.contains(['*', '?', '[']) {
            let pattern = full.to_string_lossy().into_owned();
            let bad = |message: String| DataError::Malformed { path: full.clone(), pos: None, message };
            let mut matched: Vec<std::path::PathBuf> =
                glob::glob(&pattern).map_err(|e| bad(format!("not a valid glob pattern: {e}")))?.filter_map(Result::ok).filter(|p| p.is_file()).collect();
            matched.sort();
            if matched.is_empty() {
                return Err(DataError::Missing { path: full, hint: "the pattern matches no file (paths are relative to the spec file's folder)".into() });
            }
            out.extend(matched);
        } else if full.exists() {
            out.push(full);
        } else {
            return Err(DataError::Missing { path: full, hint: "the path is relative to the spec file's folder".into() });
        }
    }
    Ok(out)
}

/// Reads several files of one format as one dataset, in the order given.
pub fn read_all(paths: &[std::path::PathBuf], format: FileFormat, encoding: Encoding, cols: &Columns<'_>, labels: &LabelMap) -> Result<Dataset, DataError> {
    let mut all: Option<Dataset> = None;
    for path in paths {
        let ds = read(path, format, encoding, cols, labels)?;
        match &mut all {
            None => all = Some(ds),
            Some(a) => a.append(ds),
        }
    }
    Ok(all.unwrap_or_default())
}

pub fn read(path: &Path, format: FileFormat, encoding: Encoding, cols: &Columns<'_>, labels: &LabelMap) -> Result<Dataset, DataError> {
    let text = read_file(path, encoding)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        let expected = match format {
            FileFormat::Jsonl => "one JSON object per line",
            FileFormat::Csv | FileFormat::Tsv => "a header row naming the columns, then one row per example",
        };
        return Err(DataError::Malformed { path: path.to_path_buf(), pos: None, message: format!("the file is empty; expected {expected}") });
    }
    match format {
        // TSV is not a quoted format (the SMS corpus and most TSV exports put quotes in text as they are).
        FileFormat::Csv => read_delimited(path, text, b',', true, cols, labels),
        FileFormat::Tsv => read_delimited(path, text, b'\t', false, cols, labels),
        FileFormat::Jsonl => read_jsonl(path, text, cols, labels),
    }
}

fn column_index(path: &Path, headers: &[String], name: &str, role: &'static str) -> Result<usize, DataError> {
    headers.iter().position(|h| h == name).ok_or_else(|| DataError::MissingColumn {
        path: path.to_path_buf(),
        column: name.to_string(),
        role,
        available: shown_names(headers),
    })
}

fn shown_names(headers: &[String]) -> Vec<String> {
    let mut shown: Vec<String> = headers
        .iter()
        .take(NAMES_SHOWN)
        .map(|h| if h.chars().count() > NAME_CHARS { format!("{}…", h.chars().take(NAME_CHARS).collect::<String>()) } else { h.clone() })
        .collect();
    if headers.len() > NAMES_SHOWN {
        shown.push(format!("… {} more", headers.len() - NAMES_SHOWN));
    }
    shown
}

/// Byte offsets where each line starts, to turn a byte offset into a 1-based line number.
struct Lines(Vec<usize>);

impl Lines {
    fn of(text: &str) -> Lines {
        Lines(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }
    fn line_of(&self, byte: usize) -> usize {
        self.0.partition_point(|&s| s <= byte)
    }
    /// The byte offset where the line after `line` (1-based) starts.
    fn start_after(&self, line: usize) -> Option<usize> {
        self.0.get(line).copied()
    }
}

fn reader(delimiter: u8, quoting: bool, bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().delimiter(delimiter).quoting(quoting).flexible(true).has_headers(false).from_reader(bytes)
}

fn read_delimited(path: &Path, text: &str, delimiter: u8, quoting: bool, cols: &Columns<'_>, labels: &LabelMap) -> Result<Dataset, DataError> {
    let lines = Lines::of(text);
    let format = if delimiter == b',' { "CSV" } else { "TSV" };
    let mut header_reader = reader(delimiter, quoting, text.as_bytes());
    let mut header = csv::StringRecord::new();
    let header_error = |message: String| DataError::Malformed { path: path.to_path_buf(), pos: Some(Position { line: 1, column: 1 }), message };
    match header_reader.read_record(&mut header) {
        Ok(true) => {}
        Ok(false) => return Err(header_error("the file has no header row".into())),
        Err(e) => return Err(header_error(format!("cannot read the header: {e}"))),
    }
    let headers: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    // A file that is not a table has no delimiter on its first line; its content is not echoed back.
    if headers.len() < 2 {
        let sep = if delimiter == b',' { "`,`" } else { "TAB" };
        return Err(header_error(format!(
            "the first line is not a {format} header: expected column names separated by {sep}, and found no {sep} (is this the right file and format?)"
        )));
    }
    let text_idx: Vec<usize> = cols.text.iter().map(|c| column_index(path, &headers, c, "text_column")).collect::<Result<_, _>>()?;
    let label_idx = column_index(path, &headers, cols.label, "label_column")?;
    let needed = text_idx.iter().chain([&label_idx]).copied().max().unwrap_or(0) + 1;

    let mut ds = Dataset::new(path);
    let mut record = csv::StringRecord::new();
    let mut base = header_reader.position().byte() as usize;
    'restart: while base < text.len() {
        let mut rows = reader(delimiter, quoting, &text.as_bytes()[base..]);
        loop {
            let start = base + rows.position().byte() as usize;
            match rows.read_record(&mut record) {
                Ok(false) => break 'restart,
                Ok(true) => {}
                Err(e) => {
                    let at = e.position().map_or(start, |p| base + p.byte() as usize);
                    ds.report.rows_read += 1;
                    ds.malformed(path, lines.line_of(at), SkipReason::Unreadable, format!("unreadable row: {e}"));
                    continue;
                }
            }
            // The reader counts the `\n` of a CRLF as the start of the next record: the record's own
            // bytes begin after any line breaks, and end before its own.
            let start = base + record.position().map_or(start - base, |p| p.byte() as usize);
            let start = start + text[start..].bytes().take_while(|b| matches!(b, b'\r' | b'\n')).count();
            let end = (base + rows.position().byte() as usize).max(start);
            let end = start + text[start..end].trim_end_matches(['\r', '\n']).len();
            let line = lines.line_of(start);
            if record.len() == 1 && record[0].trim().is_empty() {
                continue; // a blank line
            }
            ds.report.rows_read += 1;
            if quoting && lines.line_of(end.saturating_sub(1).max(start)) > line {
                let at_end = text[end..].trim_end_matches(['\r', '\n']).is_empty();
                if let Some(why) = stray_quote(&text[start..end], at_end, delimiter, (headers.len(), label_idx), labels) {
                    ds.malformed(
                        path,
                        line,
                        SkipReason::StrayQuote,
                        format!("a quoted field opened on this line {why}; the row is skipped and reading goes on at the next line"),
                    );
                    match lines.start_after(line) {
                        Some(next) => {
                            base = next;
                            continue 'restart;
                        }
                        None => break 'restart,
                    }
                }
            }
            if record.len() < needed || (record.len() > headers.len() && !cols.join_overflow) {
                ds.malformed(path, line, SkipReason::WrongFieldCount, format!("{} fields, expected {}", record.len(), headers.len()));
                continue;
            }
            let mut body = text_idx.iter().map(|&i| &record[i]).collect::<Vec<_>>().join("\n");
            if cols.join_overflow {
                let extra: Vec<&str> = record.iter().skip(needed).filter(|f| !f.is_empty()).collect();
                if !extra.is_empty() {
                    body = std::iter::once(body.as_str()).chain(extra).collect::<Vec<_>>().join(",");
                    ds.report.overflow_joined += 1;
                }
            }
            ds.labelled(path, line, body, &record[label_idx], labels);
        }
    }
    Ok(ds)
}

/// Whether a row spanning several lines is a quoted text with line breaks (kept) or a stray quote that
/// swallowed the rows after it (skipped): it runs to the end of the file without closing, or a line
/// between its first and its last is a whole row of its own (read alone: as many fields as the header,
/// and a known label), which a line of prose almost never is. (The last line is where the quote closes
/// and the row's other fields follow, so it looks like a row's tail whether or not the quote is stray.)
/// Returns what went wrong, for the message.
fn stray_quote(raw: &str, at_end: bool, delimiter: u8, shape: (usize, usize), labels: &LabelMap) -> Option<String> {
    let (fields, label_idx) = shape;
    let inner: Vec<&str> = raw.trim_end_matches(['\r', '\n']).lines().skip(1).collect();
    let quotes = raw.bytes().filter(|&b| b == b'"').count();
    if at_end && quotes % 2 == 1 {
        return Some(format!("is never closed: it runs over {} lines to the end of the file", inner.len() + 1));
    }
    let mut record = csv::StringRecord::new();
    let mut looks_like_row = |l: &str| {
        matches!(reader(delimiter, true, l.as_bytes()).read_record(&mut record), Ok(true)) && record.len() == fields && labels.plausible(&record[label_idx])
    };
    let between = &inner[..inner.len().saturating_sub(1)];
    let swallowed = between.iter().filter(|l| looks_like_row(l)).count();
    (swallowed > 0).then(|| format!("runs over {} lines and swallows {swallowed} line(s) that look like rows of their own", inner.len() + 1))
}

fn read_jsonl(path: &Path, text: &str, cols: &Columns<'_>, labels: &LabelMap) -> Result<Dataset, DataError> {
    let mut ds = Dataset::new(path);
    let mut checked_columns = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        ds.report.rows_read += 1;
        let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
            Ok(o) => o,
            Err(e) => {
                // serde_json counts columns from 1, except for a value of the wrong type, at column 0.
                ds.malformed(path, line_no, SkipReason::NotARow, format!("column {}: not a JSON object: {e}", e.column().max(1)));
                continue;
            }
        };
        // The first object decides whether the columns exist at all: a typo is an error, not 100% malformed rows.
        if !checked_columns {
            let keys: Vec<String> = obj.keys().cloned().collect();
            for c in cols.text {
                column_index(path, &keys, c, "text_column")?;
            }
            column_index(path, &keys, cols.label, "label_column")?;
            checked_columns = true;
        }
        let mut parts = Vec::new();
        for c in cols.text {
            match obj.get(c) {
                Some(serde_json::Value::String(s)) => parts.push(s.clone()),
                Some(serde_json::Value::Null) | None => {}
                Some(other) => parts.push(other.to_string()),
            }
        }
        let body = parts.join("\n");
        let raw_label = match obj.get(cols.label) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => {
                ds.malformed(path, line_no, SkipReason::MissingLabel, format!("no {:?} value", cols.label));
                continue;
            }
            Some(v) => v.to_string(),
        };
        ds.labelled(path, line_no, body, &raw_label, labels);
    }
    Ok(ds)
}
