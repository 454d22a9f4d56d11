//! Decoding raw bytes into text: strict UTF-8 with the position of the first bad byte, and
//! Windows-1252 (what files labelled "latin-1" hold in practice).

use std::path::Path;

use crate::error::{DataError, Position};

/// Decodes UTF-8 strictly; the error names the line and column of the first invalid byte.
pub fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, DataError> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let pos = position_of(bytes, offset);
        DataError::NotUtf8 { path: path.to_path_buf(), pos, offset }
    })
}

/// 1-based line and column (in characters) of a byte offset into mostly-valid UTF-8.
pub fn position_of(bytes: &[u8], offset: usize) -> Position {
    let before = &bytes[..offset];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Position { line, column }
}

/// Windows-1252 code points for bytes 0x80–0x9F (the rest of the byte range maps to itself).
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}',
    '\u{8D}', '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}',
    '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

/// Decodes Windows-1252 / Latin-1. Never fails: every byte is a character.
pub fn latin1(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[(b - 0x80) as usize],
            _ => b as char,
        })
        .collect()
}

/// UTF-8 when valid, otherwise Windows-1252; the flag says whether the fallback was used.
pub fn utf8_or_latin1(bytes: Vec<u8>) -> (String, bool) {
    match String::from_utf8(bytes) {
        Ok(s) => (s, false),
        Err(e) => (latin1(e.as_bytes()), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_line_and_column_of_bad_byte() {
        let bytes = b"ok\nab\xffc\n".to_vec();
        match utf8(Path::new("f.csv"), bytes) {
            Err(DataError::NotUtf8 { pos, offset, .. }) => {
                assert_eq!(pos, Position { line: 2, column: 3 });
                assert_eq!(offset, 5);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn latin1_maps_windows_1252() {
        assert_eq!(latin1(b"caf\xe9 \x93hi\x94 \x80"), "café \u{201C}hi\u{201D} €");
    }
}
