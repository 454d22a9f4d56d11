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

/// A fake hub serving MiniLM's files.
fn serve_hub() -> String {
    serve_files(FILES.iter().map(|f| (format!("/{ID}/resolve/main/{f}"), std::fs::read(minilm().join(f)).unwrap())).collect())
}

/// A fake hub: answers `/{id}/resolve/main/{file}` with the headers hf-hub checks and byte ranges.
fn serve_files(files: HashMap<String, Vec<u8>>) -> String {
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

/// The tiny LLaMA of tests/data saved in two shards with an index, as Hugging Face saves large
/// checkpoints (`model-00001-of-00002.safetensors`, …, `model.safetensors.index.json`).
fn sharded_tiny_llama(dir: &Path) -> Vec<&'static str> {
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    std::fs::create_dir_all(dir).unwrap();
    let tensors = candle_core::safetensors::load(tiny.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    let mut parts: [HashMap<String, candle_core::Tensor>; 2] = Default::default();
    let mut weight_map = serde_json::Map::new();
    for (i, (name, t)) in tensors.into_iter().enumerate() {
        weight_map.insert(name.clone(), names[i % 2].into());
        parts[i % 2].insert(name, t);
    }
    for (part, name) in parts.iter().zip(names) {
        candle_core::safetensors::save(part, dir.join(name)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(tiny.join(f), dir.join(f)).unwrap();
    }
    let mut files = vec!["config.json", "tokenizer.json", "model.safetensors.index.json"];
    files.extend(names);
    files
}

/// A checkpoint in shards loads from its folder and downloads from a hub (no model.safetensors there):
/// the same ids and states as the single-file folder.
#[test]
fn a_sharded_checkpoint_loads_from_its_folder_and_from_the_hub() {
    let sb = Sandbox::new();
    let folder = sb.path().join("sharded");
    let files = sharded_tiny_llama(&folder);
    let single = embed(&sb, Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama").to_str().unwrap(), &[]);
    assert_eq!(embed(&sb, folder.to_str().unwrap(), &[]), single);
    let id = "textbench-tests/tiny-llama-sharded";
    let served = files.iter().map(|f| (format!("/{id}/resolve/main/{f}"), std::fs::read(folder.join(f)).unwrap())).collect();
    let hf_home = sb.path().join("hf").display().to_string();
    assert_eq!(embed(&sb, id, &[("HF_HOME", hf_home.clone()), ("HF_ENDPOINT", serve_files(served))]), single);
    assert_eq!(embed(&sb, id, &[("HF_HOME", hf_home), ("HF_HUB_OFFLINE", "1".into())]), single);
}
