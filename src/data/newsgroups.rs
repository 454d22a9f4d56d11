//! 20 Newsgroups, "bydate" version: one raw message per file, `20news-bydate-train/<group>/<id>` and
//! `20news-bydate-test/<group>/<id>`, read straight from `20news-bydate.tar.gz` or from extracted
//! folders. The group is the label. Messages are 8-bit text with no declared charset: read as the spec's
//! encoding (latin-1 by default, as scikit-learn does).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{text, Dataset, LabelMap};
use crate::error::DataError;
use crate::spec::Encoding;

pub const TARBALL: &str = "20news-bydate.tar.gz";
pub const TRAIN_FOLDER: &str = "20news-bydate-train";
pub const TEST_FOLDER: &str = "20news-bydate-test";

pub enum Source {
    Tarball(PathBuf),
    Folder(PathBuf),
}

/// Finds the split `folder` as `<base>/20news-bydate.tar.gz`, `<base>/<folder>/`, or `base` itself when
/// it is the tarball.
pub fn locate(base: &Path, folder: &str, hint: &str) -> Result<Source, DataError> {
    if base.is_file() {
        return Ok(Source::Tarball(base.to_path_buf()));
    }
    let tarball = base.join(TARBALL);
    let extracted = base.join(folder);
    if tarball.is_file() {
        Ok(Source::Tarball(tarball))
    } else if extracted.is_dir() {
        Ok(Source::Folder(extracted))
    } else {
        Err(DataError::Missing { path: tarball, hint: format!("(no extracted {} either). {hint}", extracted.display()) })
    }
}

/// `<folder>/<group>/<id>` → the group, for entries of the wanted split.
fn group_of<'a>(path: &'a str, folder: &str) -> Option<&'a str> {
    let rest = path.trim_start_matches("./").strip_prefix(folder)?.strip_prefix('/')?;
    let (group, file) = rest.split_once('/')?;
    (!group.is_empty() && !file.is_empty() && !file.contains('/')).then_some(group)
}

fn decode(bytes: Vec<u8>, encoding: Encoding) -> (String, bool) {
    match encoding {
        Encoding::Latin1 => (text::latin1(&bytes), false),
        Encoding::Utf8 => text::utf8_or_latin1(bytes),
    }
}

/// Reads one split; messages come out ordered by path (group, then file name), whatever the archive order.
pub fn read(source: &Source, folder: &str, labels: &LabelMap, encoding: Encoding) -> Result<Dataset, DataError> {
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let path = match source {
        Source::Tarball(p) => {
            let io = |source| DataError::Io { path: p.clone(), source };
            let file = std::fs::File::open(p).map_err(io)?;
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
            for entry in archive.entries().map_err(io)? {
                let mut entry = entry.map_err(io)?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
                if group_of(&name, folder).is_some() {
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    entry.read_to_end(&mut bytes).map_err(io)?;
                    messages.push((name, bytes));
                }
            }
            p.clone()
        }
        Source::Folder(dir) => {
            let io = |path: &Path, source| DataError::Io { path: path.to_path_buf(), source };
            for group in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
                let group = group.map_err(|e| io(dir, e))?.path();
                if !group.is_dir() {
                    continue;
                }
                for file in std::fs::read_dir(&group).map_err(|e| io(&group, e))? {
                    let file = file.map_err(|e| io(&group, e))?.path();
                    if file.is_file() {
                        let rel = format!(
                            "{folder}/{}/{}",
                            group.file_name().unwrap_or_default().to_string_lossy(),
                            file.file_name().unwrap_or_default().to_string_lossy()
                        );
                        messages.push((rel, std::fs::read(&file).map_err(|e| io(&file, e))?));
                    }
                }
            }
            dir.clone()
        }
    };
    messages.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ds = Dataset::new(&path);
    for (i, (name, bytes)) in messages.into_iter().enumerate() {
        ds.report.rows_read += 1;
        let (body, fallback) = decode(bytes, encoding);
        ds.report.decoded_as_latin1 += fallback as usize;
        let group = group_of(&name, folder).expect("filtered").to_string();
        ds.labelled(Path::new(&name), i + 1, body, &group, labels);
    }
    if ds.report.rows_read == 0 {
        return Err(DataError::Malformed { path, pos: None, message: format!("no message files under {folder}/<group>/; expected the 20news-bydate layout") });
    }
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_from_paths() {
        assert_eq!(group_of("20news-bydate-train/sci.space/60804", TRAIN_FOLDER), Some("sci.space"));
        assert_eq!(group_of("./20news-bydate-train/sci.space/60804", TRAIN_FOLDER), Some("sci.space"));
        assert_eq!(group_of("20news-bydate-test/sci.space/60804", TRAIN_FOLDER), None);
        assert_eq!(group_of("20news-bydate-train/sci.space/", TRAIN_FOLDER), None);
        assert_eq!(group_of("20news-bydate-train/README", TRAIN_FOLDER), None);
    }
}
