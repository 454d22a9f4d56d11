//! Tables with named columns: CSV, TSV and JSON Lines. Row-level problems (a wrong number of fields,
//! an unknown label, an empty text) are counted and kept in the report with their line; a missing
//! column or a file that cannot be decoded is an error.

use std::path::Path;

use super::{read_file, Dataset, LabelMap};
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

pub fn read(path: &Path, format: FileFormat, encoding: Encoding, cols: &Columns<'_>, labels: &LabelMap) -> Result<Dataset, DataError> {
    let text = read_file(path, encoding)?;
    match format {
        FileFormat::Csv => read_delimited(path, &text, b',', cols, labels),
        FileFormat::Tsv => read_delimited(path, &text, b'\t', cols, labels),
        FileFormat::Jsonl => read_jsonl(path, &text, cols, labels),
    }
}

fn column_index(path: &Path, headers: &[String], name: &str, role: &'static str) -> Result<usize, DataError> {
    headers.iter().position(|h| h == name).ok_or_else(|| DataError::MissingColumn {
        path: path.to_path_buf(),
        column: name.to_string(),
        role,
        available: headers.to_vec(),
    })
}

fn read_delimited(path: &Path, text: &str, delimiter: u8, cols: &Columns<'_>, labels: &LabelMap) -> Result<Dataset, DataError> {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| DataError::Malformed { path: path.to_path_buf(), pos: Some(Position { line: 1, column: 1 }), message: format!("cannot read the header: {e}") })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let text_idx: Vec<usize> = cols.text.iter().map(|c| column_index(path, &headers, c, "text_column")).collect::<Result<_, _>>()?;
    let label_idx = column_index(path, &headers, cols.label, "label_column")?;
    let needed = text_idx.iter().chain([&label_idx]).copied().max().unwrap_or(0) + 1;

    let mut ds = Dataset::new(path);
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as usize + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                ds.report.rows_read += 1;
                ds.malformed(path, line, format!("unreadable row: {e}"));
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line() as usize);
        ds.report.rows_read += 1;
        if record.len() < needed {
            ds.malformed(path, line, format!("{} fields, expected {}", record.len(), headers.len()));
            continue;
        }
        let mut body = text_idx.iter().map(|&i| &record[i]).collect::<Vec<_>>().join("\n");
        if record.len() > headers.len() && !cols.join_overflow {
            ds.malformed(path, line, format!("{} fields, expected {}", record.len(), headers.len()));
            continue;
        }
        if cols.join_overflow {
            let extra: Vec<&str> = record.iter().skip(needed).filter(|f| !f.is_empty()).collect();
            if !extra.is_empty() {
                body = std::iter::once(body.as_str()).chain(extra).collect::<Vec<_>>().join(",");
                ds.report.overflow_joined += 1;
            }
        }
        let raw_label = &record[label_idx];
        match labels.map(raw_label) {
            Some(_) if body.trim().is_empty() => ds.malformed(path, line, "empty text".into()),
            Some(y) => ds.push(body, y, line),
            None => ds.malformed(path, line, format!("unknown label {raw_label:?} (expected {})", labels.describe())),
        }
    }
    Ok(ds)
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
                ds.malformed(path, line_no, format!("column {}: not a JSON object: {e}", e.column()));
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
                ds.malformed(path, line_no, format!("no {:?} value", cols.label));
                continue;
            }
            Some(v) => v.to_string(),
        };
        match labels.map(&raw_label) {
            Some(_) if body.trim().is_empty() => ds.malformed(path, line_no, "empty text".into()),
            Some(y) => ds.push(body, y, line_no),
            None => ds.malformed(path, line_no, format!("unknown label {raw_label:?} (expected {})", labels.describe())),
        }
    }
    Ok(ds)
}
