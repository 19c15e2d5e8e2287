//! `bertkit cpu`: the CPU model, the instruction-set flags the kernels care about, the level the
//! kernels run at (after any `BERTKIT_CPU` cap) and every level this machine can run, so that a
//! user, a bug report or the test script can see which code path is in use.

use bertkit_kernels::{Isa, detected_isa, isa};
use clap::Args;

#[derive(Args, Debug)]
pub struct CpuCmd {
    /// Print only the levels this CPU can run, highest first, one per line (for scripts:
    /// each is a valid `BERTKIT_CPU` value).
    #[arg(long, env = "BERTKIT_LEVELS")]
    levels: bool,
}

impl CpuCmd {
    pub fn run(self) -> anyhow::Result<()> {
        if self.levels {
            for level in levels() {
                println!("{}", level.name());
            }
        } else {
            println!("{}", cpu_summary());
            let names: Vec<&str> = levels().into_iter().map(Isa::name).collect();
            println!("levels this CPU runs (BERTKIT_CPU): {}", names.join(", "));
        }
        Ok(())
    }
}

/// Every level this CPU runs (at or below the detected one; `avx2-vnni` only with AVX-VNNI),
/// highest first.
fn levels() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|&l| bertkit_kernels::runs(l)).collect()
}

/// The value of the first `/proc/cpuinfo` line starting with `name` (trimmed), if any.
pub fn cpuinfo_field(name: &str) -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string())
}

/// The CPU's model name and flags, and the kernels' level.
pub fn cpu_summary() -> String {
    let model = cpuinfo_field("model name").filter(|m| !m.is_empty()).unwrap_or_else(|| "unknown CPU".into());
    let flags_line = cpuinfo_field("flags").unwrap_or_default();
    let flags: Vec<&str> = flags_line.split_whitespace().collect();
    let wanted = ["avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile"];
    let have: Vec<&str> = wanted.into_iter().filter(|w| flags.contains(w)).collect();
    format!(
        "{model} [{}], {} threads; kernels level {} (detected {}; int8 on {})",
        have.join(" "),
        rayon::current_num_threads(),
        isa().name(),
        detected_isa().name(),
        bertkit_kernels::int8_kernel()
    )
}
