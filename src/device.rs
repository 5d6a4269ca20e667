//! Device selection: `auto`, `cpu` or `cuda:N`.

use crate::{Error, Result};
use candle_core::Device;

/// Parse a device spec as given on the command line (`auto`, `cpu`, `cuda`, `cuda:N`).
///
/// `auto` picks CUDA device 0 when the crate was built with the `cuda` feature and a GPU is present,
/// else the CPU (a CUDA build that finds no usable GPU says so on stderr). Asking for CUDA in a
/// build without the feature, or on a machine where the driver finds no GPU, is an error that says
/// how to fix it.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" if candle_core::utils::cuda_is_available() => match Device::new_cuda(0) {
            Ok(d) => Ok(d),
            Err(e) => {
                // A CUDA binary on a machine without a GPU: the CPU is what `auto` promises. The
                // commands open the device twice (a check before any run exists, then the load):
                // one note per process.
                static NOTED: std::sync::Once = std::sync::Once::new();
                NOTED.call_once(|| {
                    eprintln!(
                        "note: --device auto: no usable CUDA device ({}); using the CPU",
                        without_backtrace(&e)
                    )
                });
                Ok(Device::Cpu)
            }
        },
        "auto" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                None => 0,
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| Error::invalid("device", s, "auto, cpu, cuda or cuda:N"))?,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::invalid(
                    "device",
                    s,
                    "this build has no CUDA support: rebuild with `--features cuda` (needs nvcc) or use `--device cpu`",
                ));
            }
            Device::new_cuda(ordinal).map_err(|e| no_usable_gpu(s, &e))
        }
        other => Err(Error::invalid("device", other, "auto, cpu, cuda or cuda:N")),
    }
}

/// The error for a CUDA device the driver cannot open: candle's bare `DriverError(...)` names
/// neither the cause nor the way out.
fn no_usable_gpu(spec: &str, e: &candle_core::Error) -> Error {
    Error::Config {
        field: "device".into(),
        reason: format!(
            "{spec}: the CUDA driver could not open it ({}). Check that a GPU is visible \
             (`nvidia-smi`, CUDA_VISIBLE_DEVICES) and that libcuda.so.1 is the NVIDIA driver's, \
             not the build's link stub; or use `--device cpu` (`auto` falls back to the CPU)",
            without_backtrace(e)
        ),
    }
}

/// candle's message without the backtrace it attaches when `RUST_BACKTRACE` is set: one line
/// for a user-facing error.
fn without_backtrace(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => inner.to_string(),
        other => other.to_string(),
    }
}

/// A short human name for a device (`cpu`, `cuda:0`).
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Process-wide CPU settings for a program whose hot loops are heterolora's: the allocator tuning
/// of [`tune_allocator`], and candle's element-wise thread pool told to sleep between ops instead
/// of spinning. That pool (separate from the rayon pool the matmuls and fused kernels use) spins
/// 25,000 times after each of its ops; with only the gradient sums and a few small ops left on
/// it, its worker spent 8% of a training step's samples spinning on a core the matmuls needed.
///
/// Call it first thing in `main`, before any thread starts: it sets an environment variable
/// (`CANDLE_BARRIER_POOL_SPIN_LIMIT`, left alone when already set).
pub fn configure_process() {
    tune_allocator();
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
}

/// Keep freed tensor buffers in the process instead of handing them back to the kernel.
///
/// glibc serves allocations above its mmap threshold (128 KiB, growing only after a freed block)
/// with fresh `mmap`s and unmaps them on free, so every training step page-faults its activations
/// (a few MiB each) in again: on all-MiniLM-L6-v2 with batches of 32 that was 58% of the CPU time
/// spent in the kernel and 10.2 examples/s; with a 32 MiB threshold and no trimming, 17.3
/// (`heterolora bench train --bucket --steps 10`). Idempotent and cheap; called by the CLI, [`crate::notebook::Workspace`],
/// `Trainer::fit` and the benchmarks. A no-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; 32 MiB is glibc's documented
            // maximum mmap threshold on 64-bit targets.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_garbage() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device("auto").is_ok());
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("tpu") && err.contains("cuda:N"), "{err}");
        if !candle_core::utils::cuda_is_available() {
            let err = parse_device("cuda:0").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }

    #[test]
    fn an_unopenable_gpu_is_one_line_naming_the_way_out() {
        let driver = candle_core::Error::Msg("DriverError(CUDA_ERROR_NO_DEVICE)".into());
        let traced = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg(
                "DriverError(CUDA_ERROR_NO_DEVICE)".into(),
            )),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        for e in [driver, traced] {
            let msg = no_usable_gpu("cuda:1", &e).to_string();
            assert!(!msg.contains('\n'), "{msg}");
            for needle in [
                "`device`",
                "cuda:1",
                "CUDA_ERROR_NO_DEVICE",
                "nvidia-smi",
                "--device cpu",
            ] {
                assert!(msg.contains(needle), "{needle} not in {msg}");
            }
        }
    }
}
