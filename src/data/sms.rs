//! The UCI SMS Spam Collection: one message per line, `ham|spam<TAB>text`, UTF-8, no header.

use std::path::Path;

use super::{read_file, Dataset, LabelMap, SkipReason};
use crate::spec::Encoding;

pub fn read(path: &Path, labels: &LabelMap, encoding: Encoding) -> Result<Dataset, crate::error::DataError> {
    let text = read_file(path, encoding)?;
    let mut ds = Dataset::new(path);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        ds.report.rows_read += 1;
        let Some((label, body)) = line.split_once('\t') else {
            ds.malformed(path, line_no, SkipReason::NotARow, "no TAB between label and text".into());
            continue;
        };
        ds.labelled(path, line_no, body.to_string(), label, labels);
    }
    Ok(ds)
}
