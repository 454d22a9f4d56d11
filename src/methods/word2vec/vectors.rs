//! Word vectors on disk: read in word2vec's text or binary format or GloVe's text format (the format and
//! the dimension found from the file), written in word2vec's text format, which gensim's
//! `KeyedVectors.load_word2vec_format` reads.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::ModelError;

/// Words and their vectors, row i for word i.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub words: Vec<String>,
    pub dim: usize,
    pub values: Vec<f32>,
}

impl Vectors {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }
}

/// The file a spec's `vectors:` names: a path as given, else under the models directory.
pub fn locate(name: &str, models_dir: &Path) -> Result<PathBuf, ModelError> {
    let direct = PathBuf::from(name);
    [direct.clone(), models_dir.join(name)].into_iter().find(|p| p.is_file()).ok_or_else(|| ModelError::Missing {
        path: direct,
        hint: format!("no word-vector file here or under the models directory {} (set --models-dir or BENCH_MODELS_DIR)", models_dir.display()),
    })
}

fn invalid(path: &Path, line: usize, message: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid { path: path.to_path_buf(), message: format!("line {line}: {message}") }
}

/// Reads word2vec text (a `count dim` header, then `word v1 … vdim` lines), word2vec binary (the same
/// header, then each word, a space and dim little-endian f32) or GloVe text (no header).
pub fn read(path: &Path) -> Result<Vectors, ModelError> {
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| BufReader::new(f).read_to_end(&mut bytes)).map_err(io)?;
    let first_end = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
    let first = std::str::from_utf8(&bytes[..first_end]).map_err(|_| invalid(path, 1, "not UTF-8: expected a `count dim` header or a `word v1 v2 …` line"))?;
    let header: Vec<&str> = first.split_whitespace().collect();
    let counts = match header.as_slice() {
        [n, d] => n.parse::<usize>().ok().zip(d.parse::<usize>().ok()),
        _ => None,
    };
    let Some((count, dim)) = counts else {
        return read_text(path, &bytes, None, 1);
    };
    if dim == 0 {
        return Err(invalid(path, 1, "the header gives dimension 0"));
    }
    let rest = &bytes[(first_end + 1).min(bytes.len())..];
    // Text if the first entry's line holds a word and `dim` numbers.
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let looks_text = std::str::from_utf8(&rest[..line_end])
        .map(|l| {
            let mut parts = l.split_whitespace();
            parts.next().is_some() && parts.clone().count() == dim && parts.all(|p| p.parse::<f32>().is_ok())
        })
        .unwrap_or(false);
    let vectors = if looks_text || count == 0 { read_text(path, rest, Some(dim), 2)? } else { read_binary(path, rest, count, dim)? };
    if vectors.words.len() != count {
        return Err(invalid(path, 1, format!("the header announces {count} words, the file holds {}", vectors.words.len())));
    }
    Ok(vectors)
}

fn read_text(path: &Path, bytes: &[u8], dim: Option<usize>, first_line: usize) -> Result<Vectors, ModelError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| invalid(path, first_line + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count(), "not UTF-8"))?;
    let (mut words, mut values, mut dim) = (Vec::new(), Vec::new(), dim);
    for (k, line) in text.lines().enumerate() {
        let n = first_line + k;
        let mut parts = line.split_whitespace();
        let Some(word) = parts.next() else { continue };
        let row: Vec<f32> = parts.map(|p| p.parse::<f32>().map_err(|_| invalid(path, n, format!("{p:?} is not a number")))).collect::<Result<_, _>>()?;
        let want = *dim.get_or_insert(row.len());
        if row.len() != want || want == 0 {
            return Err(invalid(path, n, format!("{} numbers after the word {word:?}, expected {want}", row.len())));
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(invalid(path, n, format!("a value of {word:?} is not finite")));
        }
        words.push(word.to_string());
        values.extend(row);
    }
    let dim = dim.ok_or_else(|| invalid(path, first_line, "no vectors in the file"))?;
    Ok(Vectors { words, dim, values })
}

fn read_binary(path: &Path, bytes: &[u8], count: usize, dim: usize) -> Result<Vectors, ModelError> {
    let mut at = 0;
    let mut words = Vec::with_capacity(count.min(1 << 24));
    let mut values = Vec::with_capacity(count.saturating_mul(dim).min(1 << 28));
    for k in 0..count {
        while at < bytes.len() && bytes[at] == b'\n' {
            at += 1;
        }
        let end = bytes[at..].iter().position(|&b| b == b' ').map(|p| at + p);
        let Some(end) = end else { return Err(invalid(path, 2, format!("entry {} of {count}: the file ends inside a word", k + 1))) };
        let word = std::str::from_utf8(&bytes[at..end]).map_err(|_| invalid(path, 2, format!("entry {}: the word is not UTF-8", k + 1)))?;
        at = end + 1;
        let need = dim * 4;
        if bytes.len() < at + need {
            return Err(invalid(path, 2, format!("entry {} ({word:?}) of {count}: the file ends inside its vector", k + 1)));
        }
        values.extend(bytes[at..at + need].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        words.push(word.to_string());
        at += need;
    }
    Ok(Vectors { words, dim, values })
}

/// word2vec's text format, written to a temporary file and renamed.
pub fn write_text(v: &Vectors, path: &Path) -> Result<(), ModelError> {
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(io)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        writeln!(out, "{} {}", v.words.len(), v.dim).map_err(io)?;
        for (i, w) in v.words.iter().enumerate() {
            write!(out, "{w}").map_err(io)?;
            for x in v.row(i) {
                // Shortest representation that reads back to the same f32.
                write!(out, " {x}").map_err(io)?;
            }
            writeln!(out).map_err(io)?;
        }
        out.flush().map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vectors {
        Vectors { words: vec!["spam".into(), "ham".into(), "é_ok".into()], dim: 3, values: vec![0.5, -1.25, 3e-7, 1.0, 2.0, 3.0, -0.1, 0.2, 0.3] }
    }

    #[test]
    fn word2vec_text_round_trips_to_the_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        write_text(&sample(), &path).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("3 3\n"));
        assert_eq!(read(&path).unwrap(), sample());
    }

    #[test]
    fn word2vec_binary_and_glove_text_read() {
        let dir = tempfile::tempdir().unwrap();
        let v = sample();
        let mut bin = b"3 3\n".to_vec();
        for (i, w) in v.words.iter().enumerate() {
            bin.extend(w.as_bytes());
            bin.push(b' ');
            v.row(i).iter().for_each(|x| bin.extend(x.to_le_bytes()));
            bin.push(b'\n');
        }
        std::fs::write(dir.path().join("v.bin"), &bin).unwrap();
        assert_eq!(read(&dir.path().join("v.bin")).unwrap(), v);
        std::fs::write(dir.path().join("glove.txt"), "the 0.1 0.2\nof -0.3 0.4\n").unwrap();
        let g = read(&dir.path().join("glove.txt")).unwrap();
        assert_eq!((g.words.clone(), g.dim, g.values.clone()), (vec!["the".to_string(), "of".to_string()], 2, vec![0.1, 0.2, -0.3, 0.4]));
    }

    #[test]
    fn broken_files_are_errors_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("short.txt", "2 3\nspam 1 2 3\nham 1 2\n", "line 3: 2 numbers after the word \"ham\", expected 3"),
            ("nan.txt", "the 0.1 x\n", "line 1: \"x\" is not a number"),
            ("count.txt", "3 2\na 1 2\nb 3 4\n", "the header announces 3 words, the file holds 2"),
            ("cut.bin", "2 4\nspam \u{1}\u{2}", "the file ends inside its vector"),
            ("empty.txt", "", "no vectors in the file"),
        ];
        for (name, content, want) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        }
    }
}
