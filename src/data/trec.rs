//! TREC question classification (Li & Roth 2002): one question a line, `COARSE:fine question text`, its
//! own training file (`train_5500.label`) and test file (`TREC_10.label`). The label is the coarse class
//! (six: ABBR, DESC, ENTY, HUM, LOC, NUM), or `COARSE:fine` (50) with `fine_labels: true`.

use std::path::Path;

use super::{read_lines, Dataset, LabelMap, SkipReason};
use crate::spec::Encoding;

pub const TRAIN_FILE: &str = "train_5500.label";
pub const TEST_FILE: &str = "TREC_10.label";

pub fn read(path: &Path, labels: &LabelMap, encoding: Encoding, fine: bool) -> Result<Dataset, crate::error::DataError> {
    read_lines(path, encoding, |ds, line_no, line| {
        let Some((label, question)) = line.split_once(' ') else {
            return ds.malformed(path, line_no, SkipReason::NotARow, "expected `COARSE:fine question`, found no space after the label".into());
        };
        let Some((coarse, _)) = label.split_once(':') else {
            let shown: String = label.chars().take(40).collect();
            return ds.malformed(path, line_no, SkipReason::NotARow, format!("expected a label `COARSE:fine`, found {shown:?}"));
        };
        ds.labelled(path, line_no, question.trim().to_string(), if fine { label } else { coarse }, labels);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_and_fine_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.label");
        std::fs::write(&p, b"NUM:date When was it ?\nLOC:city Where is \xf0 ?\nbroken\nHUM:ind Who ?\n").unwrap();
        let ds = read(&p, &LabelMap::Inferred, Encoding::Latin1, false).unwrap();
        assert_eq!(ds.texts, vec!["When was it ?", "Where is ð ?", "Who ?"]);
        assert_eq!(ds.inferred, vec!["NUM", "LOC", "HUM"]);
        assert_eq!(ds.report.malformed_rows, 1);
        let fine = read(&p, &LabelMap::Inferred, Encoding::Latin1, true).unwrap();
        assert_eq!(fine.inferred, vec!["NUM:date", "LOC:city", "HUM:ind"]);
    }
}
