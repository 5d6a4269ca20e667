//! `fetch glue` from a local GLUE folder: install, idempotence, repair, checksum mismatch, and
//! GLUE's MRPC formatting. Source: HETEROLORA_GLUE_DIR or datasets/glue.

use heterolora::assets::checksum::sha256_bytes;
use heterolora::assets::glue::{fetch_glue, format_mrpc_train_dev, GlueFetchOptions};
use heterolora::assets::{self, glue_manifest, FetchStatus};
use heterolora::data::Task;
use heterolora::Error;
use std::path::{Path, PathBuf};

fn source() -> PathBuf {
    assets::require_glue_dir(Task::Mrpc).unwrap_or_else(|e| panic!("{e}"))
}

fn opts(dest: &Path, from: Option<PathBuf>) -> GlueFetchOptions {
    GlueFetchOptions {
        dest: dest.to_path_buf(),
        from,
        online: false,
        cache: dest.join(".cache"),
        progress: false,
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect()
}

#[test]
fn installs_every_task_then_does_nothing_then_repairs() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("glue");
    let o = opts(&dest, Some(source()));
    let first = fetch_glue(&[], &o).unwrap();
    assert_eq!(first.len(), Task::ALL.len());
    for r in &first {
        assert!(matches!(r.status, FetchStatus::Installed { .. }), "{r}");
        for f in glue_manifest().files_for(r.task) {
            if f.required {
                assert!(
                    dest.join(r.task.dir_name()).join(&f.file).is_file(),
                    "{}",
                    f.file
                );
            }
        }
    }
    // Provenance files come along.
    assert!(dest.join("MRPC/SOURCE.txt").is_file());
    let second = fetch_glue(&[Task::Mrpc, Task::Stsb], &o).unwrap();
    assert!(second
        .iter()
        .all(|r| r.status == FetchStatus::AlreadyPresent));
    // Without a source and offline, an intact copy is still fine.
    let third = fetch_glue(&[Task::Rte], &opts(&dest, None)).unwrap();
    assert_eq!(third[0].status, FetchStatus::AlreadyPresent);

    // A damaged file is detected and replaced from the source.
    let dev = dest.join("RTE/dev.tsv");
    let mut bytes = std::fs::read(&dev).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&dev, &bytes).unwrap();
    let err = fetch_glue(&[Task::Rte], &opts(&dest, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--from"), "{err}");
    let fixed = fetch_glue(&[Task::Rte], &o).unwrap();
    assert!(matches!(fixed[0].status, FetchStatus::Repaired { .. }));
    assert_eq!(
        sha256_bytes(&std::fs::read(&dev).unwrap()),
        glue_manifest()
            .file(Task::Rte, "dev.tsv")
            .unwrap()
            .sha256
            .clone()
            .unwrap()
    );
    assert!(leftovers(&dest.join("RTE")).is_empty());
}

#[test]
fn a_checksum_mismatch_names_the_file_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("src");
    let src_task = source().join("WNLI");
    std::fs::create_dir_all(fake.join("WNLI")).unwrap();
    for f in ["train.tsv", "dev.tsv", "test.tsv"] {
        std::fs::copy(src_task.join(f), fake.join("WNLI").join(f)).unwrap();
    }
    // Same rows, one changed character.
    let dev = fake.join("WNLI/dev.tsv");
    let text = std::fs::read_to_string(&dev)
        .unwrap()
        .replacen("clogged", "blocked", 1);
    std::fs::write(&dev, text).unwrap();
    let dest = tmp.path().join("glue");
    let err = fetch_glue(&[Task::Wnli], &opts(&dest, Some(fake.clone()))).unwrap_err();
    match &err {
        Error::Checksum { path, expected, .. } => {
            assert_eq!(path, &dev);
            assert_eq!(
                Some(expected),
                glue_manifest()
                    .file(Task::Wnli, "dev.tsv")
                    .unwrap()
                    .sha256
                    .as_ref()
            );
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(err.to_string().contains("WNLI/dev.tsv"));
    assert!(!dest.join("WNLI/dev.tsv").exists());
    if dest.join("WNLI").is_dir() {
        assert!(leftovers(&dest.join("WNLI")).is_empty());
    }
    // A missing source file is named too.
    std::fs::copy(src_task.join("dev.tsv"), &dev).unwrap();
    std::fs::remove_file(fake.join("WNLI/test.tsv")).unwrap();
    let err = fetch_glue(&[Task::Wnli], &opts(&dest, Some(fake)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("WNLI/test.tsv") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn mrpc_formatting_reproduces_the_official_split() {
    let src = source().join("MRPC");
    let train_txt = std::fs::read_to_string(src.join("msr_paraphrase_train.txt"))
        .expect("the GLUE copy keeps MRPC/msr_paraphrase_train.txt");
    let ids = std::fs::read_to_string(src.join("dev_ids.tsv")).unwrap();
    let (train, dev) = format_mrpc_train_dev(&train_txt, &ids).unwrap();
    let m = glue_manifest();
    assert_eq!(
        Some(sha256_bytes(train.as_bytes())),
        m.file(Task::Mrpc, "train.tsv").unwrap().sha256
    );
    assert_eq!(
        Some(sha256_bytes(dev.as_bytes())),
        m.file(Task::Mrpc, "dev.tsv").unwrap().sha256
    );
}

#[test]
fn cli_says_when_there_is_nothing_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_heterolora"))
            .args(["fetch", "glue", "mrpc", "sst-2", "--offline", "--data-dir"])
            .arg(tmp.path())
            .arg("--from")
            .arg(source())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(first.contains("installed from"), "{first}");
    let second = run();
    assert!(second.contains("nothing to do"), "{second}");
    assert!(!second.contains("installed"), "{second}");
    assert!(tmp.path().join("glue/SST-2/train.tsv").is_file());
}

/// The download path without the network: archives already in the cache are used as they are
/// (a download writes them there all-or-nothing). The RTE zip is laid out like GLUE's, with an
/// `original/` folder whose files must be ignored; MRPC's source files are rebuilt from the split
/// files (the test source gets a dummy label column that GLUE's formatting drops).
#[test]
fn archive_path_installs_from_cached_official_files() {
    use std::io::Write;
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("MRPC")).unwrap();
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(cache.join("RTE.zip")).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.add_directory("RTE/", o).unwrap();
        for f in ["train.tsv", "dev.tsv", "test.tsv"] {
            z.start_file(format!("RTE/{f}"), o).unwrap();
            z.write_all(&std::fs::read(src.join("RTE").join(f)).unwrap())
                .unwrap();
        }
        z.start_file("RTE/original/dev.tsv", o).unwrap();
        z.write_all(b"not the file\n").unwrap();
        z.finish().unwrap();
    }
    for f in ["msr_paraphrase_train.txt", "dev_ids.tsv"] {
        std::fs::copy(src.join("MRPC").join(f), cache.join("MRPC").join(f)).unwrap();
    }
    let test = std::fs::read_to_string(src.join("MRPC/test.tsv")).unwrap();
    let mut msr_test = String::from("\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n");
    for row in test.lines().skip(1) {
        let (_, rest) = row.split_once('\t').unwrap();
        msr_test.push_str(&format!("0\t{rest}\r\n"));
    }
    std::fs::write(cache.join("MRPC/msr_paraphrase_test.txt"), msr_test).unwrap();

    let dest = tmp.path().join("glue");
    let o = GlueFetchOptions {
        dest: dest.clone(),
        from: None,
        online: true,
        cache,
        progress: false,
    };
    let r = fetch_glue(&[Task::Rte, Task::Mrpc], &o).unwrap();
    assert!(r
        .iter()
        .all(|r| matches!(r.status, FetchStatus::Installed { .. })));
    for (task, f) in [
        (Task::Rte, "dev.tsv"),
        (Task::Mrpc, "train.tsv"),
        (Task::Mrpc, "dev.tsv"),
        (Task::Mrpc, "test.tsv"),
    ] {
        let got = sha256_bytes(&std::fs::read(dest.join(task.dir_name()).join(f)).unwrap());
        assert_eq!(
            Some(got),
            glue_manifest().file(task, f).unwrap().sha256,
            "{task} {f}"
        );
    }
    let again = fetch_glue(&[Task::Rte, Task::Mrpc], &o).unwrap();
    assert!(again
        .iter()
        .all(|r| r.status == FetchStatus::AlreadyPresent));
}
