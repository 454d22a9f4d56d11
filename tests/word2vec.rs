//! The word2vec method: the same spec and seed give the same vectors to the bit whatever the thread
//! count; pretrained vectors (word2vec text, word2vec binary, GloVe text) are used as they are or trained
//! further; bad settings and bad vector files are errors naming the spec line or the file.

mod common;

use std::path::Path;

use common::{csv_spec, smoke_csv, Sandbox};

const METHOD: &str = "  kind: word2vec\n  vector_size: 30\n  epochs: 8\n  min_count: 1\n";

/// Runs a spec in the sandbox with extra global arguments; the one record.
fn run(sb: &Sandbox, spec: &Path, args: &[&str]) -> serde_json::Value {
    let out = sb.bench().args(args).args(["-q", "run", "--force"]).arg(spec).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = sb.records();
    serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap()
}

fn artifact(sb: &Sandbox, r: &serde_json::Value, file: &str) -> Vec<u8> {
    std::fs::read(sb.runs_dir().join(r["artifact"].as_str().unwrap()).join(file)).unwrap()
}

/// Both threads counts' vectors and records for the method section `method` (the smoke CSV).
fn on_one_and_two_threads(method: &str) -> ((Vec<u8>, serde_json::Value), (Vec<u8>, serde_json::Value)) {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let spec = sb.write("s.yaml", csv_spec("smoke.csv", method));
    let one = run(&sb, &spec, &["--threads", "1"]);
    let vectors_one = artifact(&sb, &one, "vectors.txt");
    let two = run(&sb, &spec, &["--threads", "2"]);
    ((vectors_one, one), (artifact(&sb, &two, "vectors.txt"), two))
}

#[test]
fn vectors_and_probabilities_do_not_depend_on_the_thread_count() {
    let ((vectors_one, one), (vectors_two, two)) = on_one_and_two_threads(METHOD);
    assert!(vectors_one == vectors_two, "vectors differ between --threads 1 and --threads 2");
    assert_eq!(one["predictions"], two["predictions"]);
    // Several jobs ran side by side: the corpus is cut into more jobs than one period holds.
    let words = one["method_details"]["train_raw_words"].as_u64().unwrap() / 8;
    assert!(words > 2 * 500, "{words} words per epoch: too few to exercise parallel jobs");
    // The saved vectors are word2vec's text format: a header, then a word and its numbers per line.
    let text = String::from_utf8(vectors_one).unwrap();
    let mut lines = text.lines();
    let header: Vec<usize> = lines.next().unwrap().split(' ').map(|x| x.parse().unwrap()).collect();
    assert_eq!(header[1], 30);
    assert_eq!(lines.clone().count(), header[0]);
    assert!(lines.all(|l| l.split(' ').count() == 31));
}

/// Negatives drawn per pair (word2vec's and gensim's way) and CBOW are as deterministic, and differ from
/// the default (shared negatives, skip-gram).
#[test]
fn per_pair_negatives_and_cbow_do_not_depend_on_the_thread_count_either() {
    let ((default, _), _) = on_one_and_two_threads(METHOD);
    for extra in ["  shared_negatives: false\n", "  architecture: cbow\n"] {
        let ((one, _), (two, _)) = on_one_and_two_threads(&format!("{METHOD}{extra}"));
        assert!(one == two, "{extra}: vectors differ between --threads 1 and --threads 2");
        assert!(one != default, "{extra}: the same vectors as the default");
    }
}

#[test]
fn pretrained_vectors_are_kept_or_trained_further() {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    // Vectors from a first run, saved as word2vec text, then as word2vec binary and as GloVe text.
    let first = run(&sb, &sb.write("a.yaml", csv_spec("smoke.csv", METHOD)), &[]);
    let text = String::from_utf8(artifact(&sb, &first, "vectors.txt")).unwrap();
    std::fs::remove_file(sb.runs_dir().join(format!("{}.json", first["id"].as_str().unwrap()))).unwrap();
    sb.write("v.txt", &text);
    let mut binary = Vec::new();
    let mut glove = String::new();
    for (k, line) in text.lines().enumerate() {
        if k == 0 {
            binary.extend(format!("{line}\n").as_bytes());
            continue;
        }
        let mut parts = line.split(' ');
        let word = parts.next().unwrap();
        binary.extend(word.as_bytes());
        binary.push(b' ');
        let values: Vec<f32> = parts.map(|x| x.parse().unwrap()).collect();
        values.iter().for_each(|v| binary.extend(v.to_le_bytes()));
        glove.push_str(line);
        glove.push('\n');
    }
    sb.write("v.bin", &binary);
    sb.write("glove.txt", &glove);
    let mut accuracies = Vec::new();
    for file in ["v.txt", "v.bin", "glove.txt"] {
        let method = format!("  kind: word2vec\n  vectors: {}\n", sb.path().join(file).display());
        let r = run(&sb, &sb.write("b.yaml", csv_spec("smoke.csv", &method)), &[]);
        assert_eq!(r["method_details"]["dimension"], 30, "{file}: the dimension comes from the file");
        assert!(r["method_details"].get("train_words_per_s").is_none(), "{file}: kept as they are, not trained");
        // Kept as they are, the saved vectors are the file's.
        assert_eq!(String::from_utf8(artifact(&sb, &r, "vectors.txt")).unwrap(), text, "{file}");
        accuracies.push(r["metrics"]["accuracy"].as_f64().unwrap());
        std::fs::remove_file(sb.runs_dir().join(format!("{}.json", r["id"].as_str().unwrap()))).unwrap();
    }
    assert!(accuracies.iter().all(|&a| a == accuracies[0]), "the three formats hold the same vectors: {accuracies:?}");
    let method = format!("  kind: word2vec\n  vectors: {}\n  train_vectors: true\n  epochs: 2\n  min_count: 1\n", sb.path().join("v.txt").display());
    let r = run(&sb, &sb.write("c.yaml", csv_spec("smoke.csv", &method)), &[]);
    assert!(r["method_details"]["vocabulary_from_vectors"].as_u64().unwrap() > 0);
    assert!(r["method_details"]["train_words_per_s"].as_f64().unwrap() > 0.0);
    assert_ne!(String::from_utf8(artifact(&sb, &r, "vectors.txt")).unwrap(), text, "trained further, the vectors moved");
}

#[test]
fn bad_settings_and_bad_vector_files_are_usage_errors_naming_where() {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let cases = [
        ("  kind: word2vec\n  window: 0\n", "s.yaml:12:3", "window must be at least 1"),
        ("  kind: word2vec\n  sample: 1.5\n", "s.yaml:12:3", "sample is 1.5"),
        ("  kind: word2vec\n  train_vectors: true\n", "s.yaml:12:3", "give `vectors:` too"),
        ("  kind: word2vec\n  head:\n    C: -1\n", "s.yaml:", "C is -1"),
        ("  kind: word2vec\n  architecture: glove\n", "s.yaml:", "unknown variant `glove`"),
        ("  kind: word2vec\n  vectors: no-such-file.txt\n", "no-such-file.txt", "no word-vector file"),
    ];
    for (method, at, message) in cases {
        let spec = sb.write("s.yaml", csv_spec("smoke.csv", method));
        let out = sb.bench().args(["-q", "run"]).arg(&spec).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{method}: {err}");
        assert!(err.contains(at) && err.contains(message), "{method}: {err}");
        assert!(sb.runs_dir_is_empty(), "{method}: nothing stored");
    }
    sb.write("broken.txt", "2 3\nspam 1 2 3\nham 1 x 3\n");
    let spec = sb.write("s.yaml", csv_spec("smoke.csv", &format!("  kind: word2vec\n  vectors: {}\n", sb.path().join("broken.txt").display())));
    let out = sb.bench().args(["-q", "run"]).arg(&spec).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.txt") && err.contains("line 3") && err.contains("\"x\" is not a number"), "{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(sb.runs_dir_is_empty(), "checked before any run starts");
}

#[test]
fn predict_refuses_pooling_weights_that_do_not_fit_the_vectors() {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let small = run(&sb, &sb.write("a.yaml", csv_spec("smoke.csv", "  kind: word2vec\n  vector_size: 10\n  min_count: 3\n")), &[]);
    let pooling = artifact(&sb, &small, "pooling.safetensors");
    std::fs::remove_file(sb.runs_dir().join(format!("{}.json", small["id"].as_str().unwrap()))).unwrap();
    let r = run(&sb, &sb.write("b.yaml", csv_spec("smoke.csv", "  kind: word2vec\n  vector_size: 10\n  min_count: 1\n")), &[]);
    let dir = sb.runs_dir().join(r["artifact"].as_str().unwrap());
    std::fs::write(dir.join("pooling.safetensors"), pooling).unwrap();
    let out = sb.bench().args(["predict", "--run", &r["id"].as_str().unwrap()[..8], "free prize"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.status.code() != Some(101), "{err}");
    assert!(err.contains("pooling.safetensors") && err.contains("pooling weights for the"), "{err}");
}
