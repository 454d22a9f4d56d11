//! `bench datasets fetch` against a small HTTP server on loopback that serves the real files.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{serve_http, shared_datasets, Response, Sandbox};
use predicates::prelude::*;

/// Serves `files` by path on loopback; counts the requests it answered.
struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

fn serve(files: HashMap<String, Vec<u8>>) -> Server {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let base = serve_http(move |req| {
        counter.fetch_add(1, Ordering::SeqCst);
        match files.get(&req.path) {
            Some(b) => Response { status: "200 OK", headers: vec![], body: b.clone() },
            None => Response { status: "404 Not Found", headers: vec![], body: b"not here".to_vec() },
        }
    });
    Server { base, requests }
}

fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    w.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(content).unwrap();
    w.finish().unwrap();
    buf.into_inner()
}

fn sms_bytes() -> Vec<u8> {
    std::fs::read(shared_datasets().join("sms/SMSSpamCollection")).unwrap()
}

#[test]
fn fetches_sms_verifies_and_unpacks() {
    let sb = Sandbox::new();
    let server = serve(HashMap::from([("/smsspamcollection.zip".to_string(), zip_of("SMSSpamCollection", &sms_bytes()))]));
    sb.bench().args(["datasets", "fetch", "sms", "--base-url", &server.base]).assert().success().stdout(predicate::str::contains("downloaded and verified"));
    assert_eq!(std::fs::read(sb.data_dir().join("sms/SMSSpamCollection")).unwrap(), sms_bytes());
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // A verified copy is not downloaded again.
    sb.bench().args(["datasets", "fetch", "sms", "--base-url", &server.base]).assert().success().stdout(predicate::str::contains("already present"));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // And the fetched data is usable at once.
    let spec = sb.write("s.yaml", "dataset:\n  name: sms\nmethod:\n  kind: lsa\n  components: 10\n");
    sb.bench().args(["-q", "run"]).arg(&spec).assert().success();
}

#[test]
fn a_corrupted_download_writes_nothing() {
    let sb = Sandbox::new();
    let mut bad = sms_bytes();
    bad[100] ^= 1;
    let server = serve(HashMap::from([("/smsspamcollection.zip".to_string(), zip_of("SMSSpamCollection", &bad))]));
    sb.bench()
        .args(["datasets", "fetch", "sms", "--base-url", &server.base])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("checksum mismatch").and(predicate::str::contains("7d039a24")));
    assert!(!sb.data_dir().join("sms").exists() || std::fs::read_dir(sb.data_dir().join("sms")).unwrap().next().is_none());
}

#[test]
fn a_missing_file_on_the_server_is_a_clear_error() {
    let sb = Sandbox::new();
    let server = serve(HashMap::new());
    sb.bench()
        .args(["datasets", "fetch", "sms", "--base-url", &server.base])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("smsspamcollection.zip").and(predicate::str::contains("404")));
}

#[test]
fn fetches_the_six_enron_tarballs() {
    let sb = Sandbox::new();
    let files: HashMap<String, Vec<u8>> =
        (1..=6).map(|n| (format!("/enron{n}.tar.gz"), std::fs::read(shared_datasets().join(format!("enron/enron{n}.tar.gz"))).unwrap())).collect();
    let server = serve(files);
    sb.bench().args(["datasets", "fetch", "enron", "--base-url", &server.base]).assert().success();
    for n in 1..=6 {
        assert!(sb.data_dir().join(format!("enron/enron{n}.tar.gz")).is_file());
    }
    sb.bench().args(["datasets"]).assert().success().stdout(predicate::str::is_match(r"enron +found +33715").unwrap());
}

#[test]
fn jigsaw_explains_how_to_get_it() {
    let sb = Sandbox::new();
    sb.bench()
        .args(["datasets", "fetch", "jigsaw"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Kaggle").and(predicate::str::contains("kaggle competitions download")));
}
