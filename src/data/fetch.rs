//! `bench datasets fetch`: downloads a dataset from its public source, verifies its SHA-256, and puts it
//! in the data directory. Nothing is written unless the checksum matches: downloads go to a temporary
//! file in the destination folder and are renamed into place.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::FetchError;
use crate::progress::Progress;
use crate::spec::DatasetName;

/// UCI's archive of the SMS Spam Collection.
pub const SMS_URL: &str = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip";
/// The Enron-Spam authors' preprocessed tarballs (`enron1.tar.gz` … `enron6.tar.gz`).
pub const ENRON_BASE_URL: &str = "http://www.aueb.gr/users/ion/data/enron-spam/preprocessed";

/// SHA-256 of the unpacked SMSSpamCollection file (UCI's zip is repackaged from time to time; the data is not).
const SMS_SHA256: &str = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d";
/// 20 Newsgroups "bydate" from its maintainer's page (the file scikit-learn downloads).
pub const NEWSGROUPS_URL: &str = "http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz";
const NEWSGROUPS_SHA256: &str = "8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4c87b786e15c759fa66d95610";
/// TREC question classification from Li & Roth's page (the files Hugging Face's and torchtext's loaders use).
pub const TREC_BASE_URL: &str = "https://cogcomp.seas.upenn.edu/Data/QA/QC";
const TREC_SHA256: [(&str, &str); 2] = [
    ("train_5500.label", "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3"),
    ("TREC_10.label", "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e"),
];
const ENRON_SHA256: [&str; 6] = [
    "a3ced1f5f661fd43119b1122e6cea04d5cb0cced650be7153846e6360a216c3b",
    "42955907e0b5fd8812388be9fc653ef64f0f2c21592d37c2cdda5531ebee34db",
    "5e2286033cd558080922db0ec9f92b1178f0e7f20aa77226ad7f852464820b99",
    "f898c8643a0886e36fa22fe249ebdacb2cbafca188227f238be6ba781e96ba14",
    "4fbc0a772f8d5a76236e48aa15fe7186367641c7c974fb591d20338856caea50",
    "2f34e4b133a27de7188155d485b37c30581b3770658b02095cff03d08cf3c85d",
];

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
    match name {
        DatasetName::Sms => fetch_sms(opts, progress).map(|o| vec![o]),
        DatasetName::Enron => (1..=6)
            .map(|n| {
                let file = format!("enron{n}.tar.gz");
                // textbench reads the tarballs directly (faster than 33,716 small files); `tar xzf` unpacks them if wanted.
                fetch_file(name, &file, &format!("{ENRON_BASE_URL}/{file}"), ENRON_SHA256[n - 1], opts, progress)
            })
            .collect(),
        DatasetName::Newsgroups20 => fetch_file(name, super::newsgroups::TARBALL, NEWSGROUPS_URL, NEWSGROUPS_SHA256, opts, progress).map(|o| vec![o]),
        DatasetName::Trec => TREC_SHA256.iter().map(|(file, sha)| fetch_file(name, file, &format!("{TREC_BASE_URL}/{file}"), sha, opts, progress)).collect(),
        DatasetName::SmsKaggle => Err(FetchError::Unsupported(
            "sms-kaggle is only distributed through Kaggle (a login is needed); `bench datasets fetch sms` downloads the same corpus from UCI".into(),
        )),
        DatasetName::Jigsaw => Err(FetchError::Unsupported(super::catalog::jigsaw_instructions(opts.data_dir))),
    }
}

fn url_for(opts: &FetchOptions<'_>, default: &str, file: &str) -> String {
    match opts.base_url {
        Some(base) => format!("{}/{file}", base.trim_end_matches('/')),
        None => default.to_string(),
    }
}

fn fetch_sms(opts: &FetchOptions<'_>, progress: &Progress) -> Result<FetchOutcome, FetchError> {
    let dir = opts.data_dir.join("sms");
    let dest = dir.join("SMSSpamCollection");
    if !opts.force && sha256_file(&dest).is_some_and(|h| h == SMS_SHA256) {
        return Ok(FetchOutcome { path: dest, downloaded: false });
    }
    let url = url_for(opts, SMS_URL, "smsspamcollection.zip");
    let zip_bytes = download(&url, progress)?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).map_err(|e| FetchError::Unpack { what: url.clone(), message: e.to_string() })?;
    let mut entry =
        archive.by_name("SMSSpamCollection").map_err(|e| FetchError::Unpack { what: url.clone(), message: format!("no SMSSpamCollection in the zip: {e}") })?;
    let mut content = Vec::new();
    entry.read_to_end(&mut content).map_err(|e| FetchError::Unpack { what: url.clone(), message: e.to_string() })?;
    verify(&format!("SMSSpamCollection from {url}"), &content, SMS_SHA256)?;
    write_atomically(&dir, &dest, &content)?;
    Ok(FetchOutcome { path: dest, downloaded: true })
}

/// One file of a dataset, stored as downloaded once its checksum holds (kept when a verified copy is there).
fn fetch_file(
    name: DatasetName,
    file: &str,
    default_url: &str,
    expected: &str,
    opts: &FetchOptions<'_>,
    progress: &Progress,
) -> Result<FetchOutcome, FetchError> {
    let dir = opts.data_dir.join(name.as_str());
    let dest = dir.join(file);
    if !opts.force && sha256_file(&dest).is_some_and(|h| h == expected) {
        return Ok(FetchOutcome { path: dest, downloaded: false });
    }
    let url = url_for(opts, default_url, file);
    let bytes = download(&url, progress)?;
    verify(&url, &bytes, expected)?;
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
