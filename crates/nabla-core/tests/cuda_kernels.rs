//! CUDA kernels (feature `cuda`). The NVRTC test needs no GPU, only libnvrtc; the others compare
//! the GPU with a host computation and are skipped, saying so, where no device is present.
#![cfg(feature = "cuda")]

use nabla_core::cuda::context::Library;
use nabla_core::cuda::kernels;

/// Every kernel module compiles through NVRTC (for the default architecture and for sm_90).
#[test]
fn nvrtc_compiles_every_kernel() {
    if !Library::Nvrtc.is_present() {
        println!("skipped: libnvrtc not found");
        return;
    }
    let mut failures = Vec::new();
    for arch in [None, Some("compute_90")] {
        for m in kernels::MODULES {
            match kernels::compile(m, arch) {
                Ok(ptx) => {
                    let text = ptx.to_src();
                    let n = text.matches(".entry").count();
                    println!(
                        "{:>8} {:<12} {n:>3} kernels, {:>7} bytes of PTX",
                        m.name,
                        arch.unwrap_or("default"),
                        text.len()
                    );
                    if let Ok(dir) = std::env::var("NABLA_PTX_DIR") {
                        let file = format!("{dir}/{}_{}.ptx", m.name, arch.unwrap_or("default"));
                        std::fs::write(&file, text).unwrap();
                    }
                }
                Err(e) => failures.push(format!("{} ({arch:?}): {e}", m.name)),
            }
        }
    }
    assert!(failures.is_empty(), "NVRTC errors:\n{}", failures.join("\n"));
}
