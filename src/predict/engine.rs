//! Which implementation scores texts: burn's modules (any device) or the `bertkit-kernels` CPU
//! path (fp32, bf16 GEMM operands on CPUs with AVX512-BF16 or AMX, or int8 on request).

use std::fmt;
use std::str::FromStr;

use bertkit_kernels::{Precision, bf16_is_faster};

use crate::DeviceSpec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    /// The kernels on the CPU, every level (bf16 where measured faster; at the portable level
    /// they were measured 1.6x burn's inference and 2.7x its fine-tuning), burn on a GPU.
    #[default]
    Auto,
    Burn,
    /// The kernels, fp32 throughout: scores match burn's within float rounding.
    Kernels,
    /// The kernels with bf16 GEMM operands (fp32 accumulation): faster, scores differ from
    /// fp32 in the third decimal. Falls back to fp32 without AVX512-BF16, and every command
    /// that runs it says so ([`Engine::fallback_note`]).
    KernelsBf16,
    /// The kernels with int8 weights (per output channel) and dynamically quantized activations
    /// (per row) in the encoder's dense layers; never chosen by `auto`.
    KernelsInt8,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown engine `{0}`: expected auto, burn, kernels, kernels-bf16 or kernels-int8")]
pub struct EngineError(String);

impl FromStr for Engine {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "burn" => Ok(Self::Burn),
            "kernels" | "kernels-fp32" => Ok(Self::Kernels),
            "kernels-bf16" | "bf16" => Ok(Self::KernelsBf16),
            "kernels-int8" | "int8" => Ok(Self::KernelsInt8),
            _ => Err(EngineError(s.to_string())),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Burn => "burn",
            Self::Kernels => "kernels",
            Self::KernelsBf16 => "kernels-bf16",
            Self::KernelsInt8 => "kernels-int8",
        })
    }
}

impl Engine {
    /// Why this engine runs in fp32 on this CPU although it asks for bf16 (a kernels level
    /// without bf16 GEMMs: AVX2, AVX-512 without BF16, portable), for the commands to say so;
    /// `auto` never picks bf16 there.
    pub fn fallback_note(self) -> Option<String> {
        let asked = self.precision()?;
        (asked.on_this_cpu() != asked).then(|| {
            format!("--engine {self} runs in fp32 here: this CPU's kernels level ({}) has no bf16 GEMMs", bertkit_kernels::isa().name())
        })
    }

    /// Decides `Auto` for `device`: the kernels only replace burn's CPU backend, and only pay off
    /// with AVX2 or better; bf16 GEMM operands where the level table measured them faster than fp32
    /// (`bertkit_kernels::bf16_is_faster`: AMX tiles, AVX512-BF16 on AMD).
    pub fn resolve(self, device: DeviceSpec) -> Self {
        match self {
            Self::Auto if device == DeviceSpec::Cpu && bf16_is_faster() => Self::KernelsBf16,
            Self::Auto if device == DeviceSpec::Cpu => Self::Kernels,
            Self::Auto => Self::Burn,
            other => other,
        }
    }

    /// The GEMM precision of a kernels engine.
    pub fn precision(self) -> Option<Precision> {
        match self {
            Self::Kernels => Some(Precision::F32),
            Self::KernelsBf16 => Some(Precision::Bf16),
            Self::KernelsInt8 => Some(Precision::Int8),
            Self::Auto | Self::Burn => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        assert_eq!("kernels-bf16".parse::<Engine>().unwrap(), Engine::KernelsBf16);
        assert!("fast".parse::<Engine>().is_err());
        assert_eq!(Engine::Auto.resolve(DeviceSpec::Cuda(0)), Engine::Burn);
        assert_eq!(Engine::Burn.resolve(DeviceSpec::Cpu), Engine::Burn);
        assert_eq!(Engine::Kernels.precision(), Some(Precision::F32));
        assert_eq!("int8".parse::<Engine>().unwrap(), Engine::KernelsInt8);
        // int8 is opt-in: auto never resolves to it.
        assert_ne!(Engine::Auto.resolve(DeviceSpec::Cpu), Engine::KernelsInt8);
    }

    /// kernels-bf16 on a level without bf16 GEMMs runs in fp32 and says so; nothing else has a
    /// note (checked at every level by the CI's `BERTKIT_CPU` runs).
    #[test]
    fn only_bf16_without_bf16_gemms_has_a_fallback_note() {
        let bf16 = bertkit_kernels::isa().bf16();
        assert_eq!(Engine::KernelsBf16.fallback_note().is_some(), !bf16);
        assert_eq!(Engine::KernelsBf16.precision().map(Precision::on_this_cpu), Some(if bf16 { Precision::Bf16 } else { Precision::F32 }));
        for engine in [Engine::Auto, Engine::Burn, Engine::Kernels, Engine::KernelsInt8] {
            assert_eq!(engine.fallback_note(), None, "{engine}");
        }
        assert_eq!(Engine::KernelsInt8.precision().map(Precision::on_this_cpu), Some(Precision::Int8));
        assert_eq!(Engine::Burn.precision().map(Precision::on_this_cpu), None);
    }
}
