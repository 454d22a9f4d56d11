//! `bench datasets fetch`: downloads a dataset from its public source, verifies its SHA-256, and puts it
//! in the data directory. Nothing is written unless the checksum matches: downloads go to a temporary
//! file in the destination folder and are renamed into place.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::catalog::{self, Remote, Source, ZipMember};
use crate::error::FetchError;
use crate::progress::Progress;
use crate::spec::DatasetName;

pub struct FetchOptions<'a> {
    pub data_dir: &'a Path,
    /// A mirror to download from instead of the public source: files are fetched as `<base>/<file name>`.
    pub base_url: Option<&'a str>,
    /// Download again even when a verified copy is present.
    pub force: bool,
}

/// What a fetch did, one line per file.
pub struct FetchOutcome {
    pub path: PathBuf,
    pub downloaded: bool,
}

pub fn fetch(name: DatasetName, opts: &FetchOptions<'_>, progress: &Progress) -> Result<Vec<FetchOutcome>, FetchError> {
    match &catalog::facts(name).source {
        Source::Files(files) => files.iter().map(|r| fetch_file(name, r, opts, progress)).collect(),
        Source::ZipMember(z) => fetch_zip_member(name, z, opts, progress).map(|o| vec![o]),
        Source::Manual(_) => Err(FetchError::Unsupported(catalog::how_to_get(name, opts.data_dir))),
    }
}

fn url_for(opts: &FetchOptions<'_>, default: &str, file: &str) -> String {
    match opts.base_url {
        Some(base) => format!("{}/{file}", base.trim_end_matches('/')),
        None => default.to_string(),
    }
}

/// One file kept from a downloaded zip, checked.
fn fetch_zip_member(name: DatasetName, z: &ZipMember, opts: &FetchOptions<'_>, progress: &Progress) -> Result<FetchOutcome, FetchError> {
    let dir = opts.data_dir.join(name.as_str());
    let dest = dir.join(z.member);
    if !opts.force && sha256_file(&dest).is_some_and(|h| h == z.sha256) {
        return Ok(FetchOutcome { path: dest, downloaded: false });
    }
    let url = url_for(opts, z.url, z.zip);
    let zip_bytes = download(&url, progress)?;
    let unpack = |message: String| FetchError::Unpack { what: url.clone(), message };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).map_err(|e| unpack(e.to_string()))?;
    let mut entry = archive.by_name(z.member).map_err(|e| unpack(format!("no {} in the zip: {e}", z.member)))?;
    let mut content = Vec::new();
    entry.read_to_end(&mut content).map_err(|e| unpack(e.to_string()))?;
    verify(&format!("{} from {url}", z.member), &content, z.sha256)?;
    write_atomically(&dir, &dest, &content)?;
    Ok(FetchOutcome { path: dest, downloaded: true })
}

/// One file of a dataset, stored as downloaded once its checksum holds (kept when a verified copy is there).
fn fetch_file(name: DatasetName, remote: &Remote, opts: &FetchOptions<'_>, progress: &Progress) -> Result<FetchOutcome, FetchError> {
    let dir = opts.data_dir.join(name.as_str());
    let dest = dir.join(remote.file);
    if !opts.force && sha256_file(&dest).is_some_and(|h| h == remote.sha256) {
        return Ok(FetchOutcome { path: dest, downloaded: false });
    }
    let url = url_for(opts, remote.url, remote.file);
    let bytes = download(&url, progress)?;
    verify(&url, &bytes, remote.sha256)?;
    write_atomically(&dir, &dest, &bytes)?;
    Ok(FetchOutcome { path: dest, downloaded: true })
}

fn download(url: &str, progress: &Progress) -> Result<Vec<u8>, FetchError> {
    let http = |message: String| FetchError::Http { url: url.to_string(), message };
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_connect(Some(Duration::from_secs(30))).build().into();
    let response = agent.get(url).call().map_err(|e| http(e.to_string()))?;
    let len = response.body().content_length();
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    let bar = progress.bytes(len, format!("downloading {name}"));
    let mut reader = response.into_body().into_reader();
    let mut out = Vec::with_capacity(len.unwrap_or(1 << 20) as usize);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| http(e.to_string()))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(len) = len {
        if out.len() as u64 != len {
            return Err(http(format!("connection closed after {} of {len} bytes", out.len())));
        }
    }
    Ok(out)
}

fn verify(what: &str, bytes: &[u8], expected: &str) -> Result<(), FetchError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual == expected {
        Ok(())
    } else {
        Err(FetchError::Checksum { what: what.to_string(), expected: expected.to_string(), actual })
    }
}

fn sha256_file(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| hex::encode(Sha256::digest(b)))
}

/// Temporary file in the destination folder, fsync, rename: a reader never sees a partial file.
pub fn write_atomically(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let io = |source| FetchError::Io { path: dest.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dest).map_err(|e| io(e.error))?;
    Ok(())
}
