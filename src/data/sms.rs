//! The UCI SMS Spam Collection: one message per line, `ham|spam<TAB>text`, UTF-8, no header.

use std::path::Path;

use super::{read_lines, Dataset, LabelMap, SkipReason};
use crate::spec::Encoding;

pub fn read(path: &Path, labels: &LabelMap, encoding: Encoding) -> Result<Dataset, crate::error::DataError> {
    read_lines(path, encoding, |ds, line_no, line| match line.split_once('\t') {
        Some((label, body)) => ds.labelled(path, line_no, body.to_string(), label, labels),
        None => ds.malformed(path, line_no, SkipReason::NotARow, "no TAB between label and text".into()),
    })
}
