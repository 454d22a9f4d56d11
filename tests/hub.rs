//! Hub ids resolve from the local Hugging Face cache, and download into it (from a fake hub on loopback)
//! when absent.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{serve_http, Response, Sandbox};

const ID: &str = "sentence-transformers/all-MiniLM-L6-v2";
const FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

fn minilm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models/all-MiniLM-L6-v2")
}

/// `bench embed` of one text, as (input ids, embedding).
fn embed(sb: &Sandbox, model: &str, env: &[(&str, String)]) -> (serde_json::Value, serde_json::Value) {
    let mut cmd = sb.bench();
    cmd.env_remove("HF_HUB_OFFLINE").env_remove("HF_ENDPOINT").args(["embed", "--model", model, "--json", "free prize, call now"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["input_ids"].clone(), v["embedding"].clone())
}

#[test]
fn hub_id_resolves_from_the_local_cache() {
    let sb = Sandbox::new();
    let snapshot = sb.path().join("hf/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    for f in FILES {
        std::os::unix::fs::symlink(minilm().join(f), snapshot.join(f)).unwrap();
    }
    sb.write("hf/hub/models--sentence-transformers--all-MiniLM-L6-v2/refs/main", "0123abcd");
    let env = [("HF_HOME", sb.path().join("hf").display().to_string()), ("HF_HUB_OFFLINE", "1".into())];
    assert_eq!(embed(&sb, ID, &env), embed(&sb, minilm().to_str().unwrap(), &[]));
}

#[test]
fn hub_id_missing_offline_is_an_input_error() {
    let sb = Sandbox::new();
    sb.bench()
        .env("HF_HOME", sb.path().join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .args(["embed", "--model", ID, "x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not in the local Hugging Face cache"));
}

/// A fake hub: answers `/{id}/resolve/main/{file}` with the headers hf-hub checks and byte ranges.
fn serve_hub() -> String {
    let files: HashMap<String, Vec<u8>> = FILES.iter().map(|f| (format!("/{ID}/resolve/main/{f}"), std::fs::read(minilm().join(f)).unwrap())).collect();
    serve_http(move |req| {
        let Some(body) = files.get(&req.path) else {
            return Response { status: "404 Not Found", headers: vec![], body: vec![] };
        };
        let last = body.len() - 1;
        let (a, b) = req.range.map_or((0, last), |(a, b)| (a, b.unwrap_or(last).min(last)));
        let headers = vec![
            ("Content-Range".to_string(), format!("bytes {a}-{b}/{}", body.len())),
            ("ETag".to_string(), format!("\"{:x}\"", body.len() * 31 + req.path.len())),
            ("X-Repo-Commit".to_string(), "0123abcd".to_string()),
        ];
        Response { status: "206 Partial Content", headers, body: body[a..=b].to_vec() }
    })
}

#[test]
fn hub_id_downloads_into_the_cache() {
    let sb = Sandbox::new();
    let hf_home = sb.path().join("hf").display().to_string();
    let env = [("HF_HOME", hf_home.clone()), ("HF_ENDPOINT", serve_hub())];
    let downloaded = embed(&sb, ID, &env);
    assert_eq!(downloaded, embed(&sb, minilm().to_str().unwrap(), &[]));
    // Now cached: resolves offline.
    assert_eq!(embed(&sb, ID, &[("HF_HOME", hf_home), ("HF_HUB_OFFLINE", "1".into())]), downloaded);
}
