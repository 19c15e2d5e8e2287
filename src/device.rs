//! Where a model runs, from a user-facing string: `cpu` (the kernels, or burn's flex backend with
//! `--engine burn`) or `cuda[:N]` (burn, with the `cuda` feature); and how many CPU threads the
//! kernels use (`--threads`).

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

#[cfg(feature = "burn")]
use burn::tensor::Device;

/// Where tensors live. Parsed once from `--device`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// burn's flex backend: multi-threaded, SIMD dispatched at run time (AVX-512 when present).
    #[default]
    Cpu,
    /// A CUDA GPU by index; needs the `cuda` cargo feature.
    Cuda(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceSpecError {
    #[error("unknown device `{0}`: expected `cpu`, `cuda` or `cuda:N`")]
    Unknown(String),
    #[error("device `cuda` needs a bertkit built with `--features cuda`")]
    CudaNotBuilt,
    #[error("the burn engine needs a bertkit built with `--features burn` (CPU) or `--features cuda` (GPU); the default build runs the kernels")]
    BurnNotBuilt,
}

impl FromStr for DeviceSpec {
    type Err = DeviceSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" | "flex" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or(DeviceSpecError::Unknown(s)),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The burn device for inference (no autodiff).
    #[cfg(feature = "burn")]
    pub fn device(self) -> Result<Device, DeviceSpecError> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            Self::Cuda(i) => Ok(Device::cuda(i)),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda(_) => Err(DeviceSpecError::CudaNotBuilt),
        }
    }
}

/// The compute pool already runs another number of threads than asked for.
#[derive(Debug, thiserror::Error)]
#[error("the compute pool already runs {running} threads; {asked} were asked for")]
pub struct ComputePoolError {
    pub running: usize,
    pub asked: usize,
}

/// Starts the compute pool (rayon's global pool, which the kernels run on) from the calling
/// thread, with `threads` threads, or rayon's default: `RAYON_NUM_THREADS`, else every CPU this
/// process may use (ONNX Runtime's `intra_op_num_threads`, PyTorch's `set_num_threads`). Its
/// threads are named `bertkit-compute-N` for `top -H` and profiles, and keep the calling thread's
/// priority (see `serve::priority`). A pool that already runs is kept: as it is when no size is
/// asked for or it has that size, and with an error naming both sizes when it has another.
pub fn start_compute_pool(threads: Option<NonZeroUsize>) -> Result<(), ComputePoolError> {
    let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("bertkit-compute-{i}"));
    if let Some(n) = threads {
        builder = builder.num_threads(n.get());
    }
    if builder.build_global().is_err()
        && let Some(n) = threads
        && rayon::current_num_threads() != n.get()
    {
        return Err(ComputePoolError { running: rayon::current_num_threads(), asked: n.get() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_cuda() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("CUDA".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }
}
