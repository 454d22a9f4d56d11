//! Enron-Spam (preprocessed form): `enronN/{ham,spam}/*.txt`, one email per file, read straight from the
//! `enronN.tar.gz` tarballs or from extracted folders. Files that are not valid UTF-8 are read as
//! Windows-1252 and counted. The one-file CSV form (Message ID, Subject, Message, Spam/Ham, Date) is read
//! by the table reader.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{text, Dataset, LabelMap};
use crate::error::DataError;

/// Where one part (enron1..6) lives.
pub enum PartSource {
    Tarball(PathBuf),
    Folder(PathBuf),
}

/// Finds each part as `enronN.tar.gz` or an extracted `enronN/` folder under `dir`.
pub fn locate_parts(dir: &Path, parts: &[u8], hint: &str) -> Result<Vec<(u8, PartSource)>, DataError> {
    parts
        .iter()
        .map(|&n| {
            let tarball = dir.join(format!("enron{n}.tar.gz"));
            let folder = dir.join(format!("enron{n}"));
            if tarball.is_file() {
                Ok((n, PartSource::Tarball(tarball)))
            } else if folder.join("ham").is_dir() || folder.join("spam").is_dir() {
                Ok((n, PartSource::Folder(folder)))
            } else {
                Err(DataError::Missing { path: tarball, hint: format!("(no extracted {} either). {hint}", folder.display()) })
            }
        })
        .collect()
}

/// One email: its path inside the part, its label, its bytes.
struct Email {
    name: String,
    spam: bool,
    bytes: Vec<u8>,
}

/// Label from a path such as `enron1/spam/0001.txt`; `None` for anything else (Summary.txt, folders).
fn label_of(path: &str) -> Option<bool> {
    let mut comps = path.rsplit('/');
    let file = comps.next()?;
    if !file.ends_with(".txt") {
        return None;
    }
    match comps.next()? {
        "spam" => Some(true),
        "ham" => Some(false),
        _ => None,
    }
}

fn read_tarball(path: &Path) -> Result<Vec<Email>, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
        if let Some(spam) = label_of(&name) {
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(io)?;
            out.push(Email { name, spam, bytes });
        }
    }
    Ok(out)
}

fn read_folder(dir: &Path) -> Result<Vec<Email>, DataError> {
    let mut out = Vec::new();
    for class in ["ham", "spam"] {
        let sub = dir.join(class);
        if !sub.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&sub).map_err(|source| DataError::Io { path: sub.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| DataError::Io { path: sub.clone(), source })?;
            let path = entry.path();
            let name = format!("{}/{class}/{}", dir.file_name().unwrap_or_default().to_string_lossy(), entry.file_name().to_string_lossy());
            if let Some(spam) = label_of(&name) {
                let bytes = std::fs::read(&path).map_err(|source| DataError::Io { path: path.clone(), source })?;
                out.push(Email { name, spam, bytes });
            }
        }
    }
    Ok(out)
}

/// Reads the parts in parallel; examples come out ordered by part, then by path, whatever the archive
/// or directory order, so the dataset (and its fingerprint) is the same everywhere.
pub fn read(parts: &[(u8, PartSource)], labels: &LabelMap, progress: &indicatif::ProgressBar) -> Result<Dataset, DataError> {
    let loaded: Vec<(PathBuf, Vec<Email>)> = parts
        .par_iter()
        .map(|(_, src)| {
            let r = match src {
                PartSource::Tarball(p) => read_tarball(p).map(|e| (p.clone(), e)),
                PartSource::Folder(p) => read_folder(p).map(|e| (p.clone(), e)),
            };
            progress.inc(1);
            r
        })
        .collect::<Result<_, _>>()?;
    let first = loaded.first().map(|(p, _)| p.clone()).unwrap_or_default();
    let mut ds = Dataset::new(&first);
    ds.files = loaded.iter().map(|(p, _)| p.clone()).collect();
    for (_, mut emails) in loaded {
        emails.sort_by(|a, b| a.name.cmp(&b.name));
        let decoded: Vec<(String, bool, String, bool)> = emails
            .into_par_iter()
            .map(|e| {
                let (text, fallback) = text::utf8_or_latin1(e.bytes);
                (e.name, e.spam, text, fallback)
            })
            .collect();
        for (i, (name, spam, body, fallback)) in decoded.into_iter().enumerate() {
            ds.report.rows_read += 1;
            ds.report.decoded_as_latin1 += fallback as usize;
            // The class folder is the label value.
            ds.labelled(Path::new(&name), i + 1, body, if spam { "spam" } else { "ham" }, labels);
        }
    }
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::label_of;

    #[test]
    fn labels_from_paths() {
        assert_eq!(label_of("enron1/spam/0001.2004-08-01.GP.spam.txt"), Some(true));
        assert_eq!(label_of("enron1/ham/0001.1999-12-10.farmer.ham.txt"), Some(false));
        assert_eq!(label_of("enron1/Summary.txt"), None);
        assert_eq!(label_of("enron1/ham/"), None);
    }
}
