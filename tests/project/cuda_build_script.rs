//! The pieces of the CUDA build and the device check that run without a GPU (issue #18): the libcuda
//! link stub (scripts/make-libcuda-stub.py) from a symbol list and from cudarc-like sources, with the
//! soname `libcuda.so.1` (readelf -d); the CUDA 13.0 version pins and the build script's settings; the
//! carried model pack (scripts/pack-device-data.py: f16 transport, widened back to f32); the device
//! script's syntax and help. Offline and fast: nothing is downloaded and nothing is built with CUDA.
//! Tests that need `python3`, `cc`, `readelf` or `nm` skip (with a line on stderr) where they are missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn need(tools: &[&str]) -> bool {
    for t in tools {
        if !have(t) {
            eprintln!("skipped: `{t}` is not installed");
            return false;
        }
    }
    true
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn make_stub(args: &[&str], out: &Path) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("scripts/make-libcuda-stub.py"))
        .arg("--out")
        .arg(out)
        .args(args);
    run(&mut cmd)
}

fn soname(lib: &Path) -> String {
    let d = run(Command::new("readelf").arg("-d").arg(lib));
    d.lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| l.split('[').nth(1))
        .map(|s| s.trim_end_matches(']').to_string())
        .unwrap_or_default()
}

fn defined(lib: &Path) -> Vec<String> {
    let d = run(Command::new("nm").args(["-D", "--defined-only"]).arg(lib));
    d.lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

#[test]
fn stub_from_symbol_list_has_libcuda_soname_and_the_symbols() {
    if !need(&["python3", "cc", "readelf", "nm"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("symbols.txt");
    fs::write(
        &list,
        "# from nm -u libcudarc-*.rlib\ncuInit\ncuDeviceGet\ncuCtxCreate_v2\n\ncuMemAlloc_v2  # trailing comment\ncublasCreate_v2\nmemcpy\n",
    )
    .unwrap();
    let out = dir.path().join("link");
    let msg = make_stub(&["--symbols", list.to_str().unwrap()], &out);
    assert!(msg.contains("4 symbols"), "{msg}");
    let lib = out.join("libcuda.so");
    assert_eq!(soname(&lib), "libcuda.so.1");
    let syms = defined(&lib);
    for s in ["cuInit", "cuDeviceGet", "cuCtxCreate_v2", "cuMemAlloc_v2"] {
        assert!(syms.iter().any(|x| x == s), "{s} missing from {syms:?}");
    }
    // other libraries' names (cuBLAS, libc) are not the driver's: left out
    assert!(!syms.iter().any(|x| x == "cublasCreate_v2" || x == "memcpy"));
    let listed = fs::read_to_string(out.join("libcuda-stub.symbols")).unwrap();
    assert_eq!(listed.lines().count(), 4);
}

#[test]
fn stub_from_cudarc_sources_reads_only_the_driver_declarations() {
    if !need(&["python3", "cc", "readelf", "nm"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("cudarc");
    let driver = src.join("src/driver/sys");
    let cublas = src.join("src/cublas/sys");
    fs::create_dir_all(&driver).unwrap();
    fs::create_dir_all(&cublas).unwrap();
    fs::write(
        driver.join("mod.rs"),
        "extern \"C\" {\n    pub fn cuInit(Flags: ::core::ffi::c_uint) -> CUresult;\n    pub fn cuStreamSynchronize(hStream: CUstream) -> CUresult;\n}\npub unsafe fn cuGetErrorString_checked(x: u32) {}\npub fn not_a_driver_call() {}\n",
    )
    .unwrap();
    fs::write(
        cublas.join("mod.rs"),
        "extern \"C\" { pub fn cublasCreate_v2(handle: *mut cublasHandle_t) -> cublasStatus_t; }\n",
    )
    .unwrap();
    let out = dir.path().join("link");
    make_stub(&["--cudarc-src", src.to_str().unwrap()], &out);
    let lib = out.join("libcuda.so");
    assert_eq!(soname(&lib), "libcuda.so.1");
    let mut syms = defined(&lib);
    syms.retain(|s| s.starts_with("cu"));
    syms.sort();
    assert_eq!(
        syms,
        ["cuGetErrorString_checked", "cuInit", "cuStreamSynchronize"]
    );
}

#[test]
fn stub_without_any_symbol_fails_clearly() {
    if !need(&["python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("empty.txt");
    fs::write(&list, "# nothing\nmemcpy\n").unwrap();
    let out = Command::new("python3")
        .arg(root().join("scripts/make-libcuda-stub.py"))
        .arg("--out")
        .arg(dir.path().join("link"))
        .arg("--symbols")
        .arg(&list)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no cu* symbol"));
}

#[test]
fn cuda_wheels_are_pinned_to_the_device_drivers_cuda_13_0() {
    let reqs = fs::read_to_string(root().join("scripts/requirements-cuda.txt")).unwrap();
    let lines: Vec<&str> = reqs
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    for pin in [
        "nvidia-cuda-nvcc==13.0.88",
        "nvidia-cuda-crt==13.0.88",
        "nvidia-nvvm==13.0.88",
        "nvidia-cuda-runtime~=13.0.0",
        "nvidia-cuda-cccl~=13.0.0",
        "nvidia-cuda-nvrtc~=13.0.0",
        "nvidia-cublas~=13.0.0",
        "nvidia-curand",
    ] {
        assert!(
            lines.contains(&pin),
            "{pin} not in scripts/requirements-cuda.txt: {lines:?}"
        );
    }
    // nothing unpinned could pull a CUDA newer than the device's driver accepts, but curand (no 13.x tag)
    for l in &lines {
        assert!(
            l.contains("13.0") || *l == "nvidia-curand",
            "{l}: pin it to CUDA 13.0"
        );
    }
}

#[test]
fn build_script_targets_hopper_in_its_own_target_dir_without_rustflags() {
    let s = fs::read_to_string(root().join("scripts/build-cuda.sh")).unwrap();
    for needle in [
        "scripts/requirements-cuda.txt",
        "CUDA_COMPUTE_CAP:-90",
        "--features cuda",
        "target-cuda",
        "LIBRARY_PATH=",
        "nice -n 19 cargo build",
        "nice -n 19 \"$venv/bin/pip\" install",
        "scripts/make-libcuda-stub.py",
        "strip -o dist/heterolora-cuda",
        "xz --x86 --lzma2=preset=9e",
    ] {
        assert!(s.contains(needle), "build-cuda.sh lacks `{needle}`");
    }
    // RUSTFLAGS would change every crate's fingerprint (a full rebuild)
    assert!(!s
        .lines()
        .any(|l| !l.trim_start().starts_with('#') && l.contains("RUSTFLAGS=")));
    let ignore = fs::read_to_string(root().join(".gitignore")).unwrap();
    for p in ["/.venv-cuda/", "/target-cuda/", "/dist/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == p),
            ".gitignore lacks {p}"
        );
    }
}

#[test]
fn device_scripts_parse_and_explain_themselves() {
    if !need(&["bash"]) {
        return;
    }
    for s in ["scripts/build-cuda.sh", "scripts/gpu-check.sh"] {
        run(Command::new("bash").arg("-n").arg(root().join(s)));
        let help = run(Command::new("bash").arg(root().join(s)).arg("--help"));
        assert!(
            help.contains("device") || help.contains("CUDA"),
            "{s} --help: {help}"
        );
    }
}

/// A little-endian safetensors file with the given (name, dtype, shape, bytes).
fn safetensors(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut off = 0;
    for (name, dtype, shape, data) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + data.len()]}),
        );
        off += data.len();
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    for (.., data) in tensors {
        out.extend(data);
    }
    out
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn device_data_pack_rounds_weights_to_f16_and_widens_them_back() {
    if !need(&["python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let glue = dir.path().join("glue/MRPC");
    fs::create_dir_all(&model).unwrap();
    fs::create_dir_all(&glue).unwrap();
    let w = [0.1f32, 1.0 / 3.0, -1.0e-3, 2.5, 0.0];
    let big = [1.0f32, 70000.0];
    let ids: Vec<u8> = [0i64, 1, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
    fs::write(
        model.join("model.safetensors"),
        safetensors(&[
            ("w", "F32", vec![5], f32s(&w)),
            ("big", "F32", vec![2], f32s(&big)),
            ("position_ids", "I64", vec![1, 3], ids.clone()),
        ]),
    )
    .unwrap();
    fs::write(model.join("config.json"), "{}").unwrap();
    fs::write(model.join("tokenizer.json"), "{}").unwrap();
    fs::write(
        glue.join("train.tsv"),
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n",
    )
    .unwrap();
    fs::write(
        glue.join("dev.tsv"),
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n",
    )
    .unwrap();
    // The default packs MRPC and RTE (the GPU study runs either).
    let rte = dir.path().join("glue/RTE");
    fs::create_dir_all(&rte).unwrap();
    fs::write(
        rte.join("train.tsv"),
        "index\tsentence1\tsentence2\tlabel\n",
    )
    .unwrap();
    let archive = dir.path().join("dist/device-data.tar.xz");
    let script = root().join("scripts/pack-device-data.py");
    run(Command::new("python3")
        .arg(&script)
        .arg("pack")
        .arg("--model")
        .arg(&model)
        .arg("--glue")
        .arg(dir.path().join("glue"))
        .arg("--out")
        .arg(&archive)
        .args(["--preset", "0"]));
    let dest = dir.path().join("unpacked");
    run(Command::new("python3")
        .arg(&script)
        .arg("unpack")
        .arg("--archive")
        .arg(&archive)
        .arg("--dest")
        .arg(&dest));
    assert!(dest.join("glue/MRPC/train.tsv").is_file());
    assert!(dest.join("glue/RTE/train.tsv").is_file());
    assert!(dest.join("model/tokenizer.json").is_file());
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dest.join("device-data.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["kept_f32_or_other"],
        serde_json::json!(["big", "position_ids"])
    );

    let bytes = fs::read(dest.join("model/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let back = |name: &str| -> Vec<f32> {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        t.data()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    for (a, b) in w.iter().zip(back("w")) {
        assert!((a - b).abs() <= a.abs() * 2f32.powi(-11), "{a} -> {b}");
    }
    assert_eq!(back("w")[4], 0.0);
    assert_eq!(back("big"), big, "a tensor f16 cannot hold stays exact");
    let pos = st.tensor("position_ids").unwrap();
    assert_eq!(pos.dtype(), safetensors::Dtype::I64);
    assert_eq!(pos.data(), &ids[..]);
}
