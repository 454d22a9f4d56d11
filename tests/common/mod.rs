//! Helpers shared by the end-to-end tests: a temporary project with a data dir and a runs dir, and
//! the `bench` binary pointed at them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.path().join("runs")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// `bench` with this sandbox's data and runs dirs, in the sandbox folder.
    pub fn bench(&self) -> Command {
        Command::from_std(self.bench_process())
    }

    /// The same as a plain process, for tests that signal it.
    pub fn bench_process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"));
        cmd.current_dir(self.path())
            .env("BENCH_DATA_DIR", self.data_dir())
            .env("BENCH_RUNS_DIR", self.runs_dir())
            .env_remove("BENCH_THREADS")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Record files in the runs dir (not temporary files).
    pub fn records(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(self.runs_dir()) else { return vec![] };
        let mut v: Vec<PathBuf> = rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        v.sort();
        v
    }

    /// Nothing at all in the runs dir (it may not even exist).
    pub fn runs_dir_is_empty(&self) -> bool {
        std::fs::read_dir(self.runs_dir()).map_or(true, |mut d| d.next().is_none())
    }
}

/// The shipped smoke sample.
pub fn smoke_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/smoke/sms-smoke.csv")
}

/// ../shared/datasets beside the checkout (CI has it).
pub fn shared_datasets() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    assert!(p.is_dir(), "these tests read the real data in {} (../shared beside the checkout)", p.display());
    p
}

/// A spec on a generic CSV in the sandbox, with the method section given.
pub fn csv_spec(csv: &str, method: &str) -> String {
    format!(
        "dataset:\n  format: csv\n  path: {csv}\n  text_column: text\n  label_column: label\n  positive: spam\n  negative: ham\n  split:\n    validation: 0.25\nmethod:\n{method}"
    )
}

/// A synthetic corpus big enough that each LSA run takes a noticeable fraction of a second.
pub fn synthetic_csv(rows: usize, seed: u64) -> String {
    let mut s = String::from("text,label\n");
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..rows {
        let spam = i % 4 == 0;
        let mut words = Vec::new();
        for _ in 0..30 {
            let w = next() % 3000;
            // Spam draws a third of its words from its own range; the rest is shared vocabulary.
            let w = if spam && w % 3 == 0 { 3000 + w } else { w };
            words.push(format!("w{w}"));
        }
        s.push_str(&format!("{},{}\n", words.join(" "), if spam { "spam" } else { "ham" }));
    }
    s
}

/// A request as a loopback test server sees it: the path, and a `Range: bytes=a-b` header if any.
pub struct Request {
    pub path: String,
    pub range: Option<(usize, Option<usize>)>,
}

/// A response: status line text, extra headers, body.
pub struct Response {
    pub status: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Serves HTTP/1.1 on 127.0.0.1 (one request per connection) with `handler`; returns the base URL.
/// Bounded: it stops after 64 connections, far more than any test makes.
pub fn serve_http(handler: impl Fn(&Request) -> Response + Send + 'static) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut req = Request { path: line.split_whitespace().nth(1).unwrap_or("/").to_string(), range: None };
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let (a, b) = v.trim().split_once('-').unwrap_or(("0", ""));
                    req.range = Some((a.parse().unwrap_or(0), b.parse().ok()));
                }
                header.clear();
            }
            let resp = handler(&req);
            let mut head = format!("HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n", resp.status, resp.body.len());
            for (k, v) in &resp.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&resp.body);
        }
    });
    base
}
