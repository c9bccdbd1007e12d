//! Limits checked before allocating: a size that comes from a flag, a file header or a
//! checkpoint is validated here, so that an absurd value is an error naming it, never an abort
//! of the allocator.
//!
//! One tensor may hold at most [`max_tensor_bytes`] bytes: 4 GiB unless the environment
//! variable `NABLA_MAX_TENSOR_BYTES` says otherwise (bytes, or with a suffix `K`, `M`, `G`,
//! `T`: `NABLA_MAX_TENSOR_BYTES=16G`). The largest tensor of the lecture's networks at batch 256
//! (VGG's first activations, 256·64·224·224 f32) is 3.1 GiB.
//!
//! NOTE: sizes are multiplied with overflow checks: a product that wraps (an IDX header of
//! 2¹⁶ × 2¹⁶ × 2¹⁶ × 2¹⁶) would otherwise pass as a small or zero size.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The default cap on one tensor's bytes: 4 GiB.
pub const DEFAULT_MAX_TENSOR_BYTES: usize = 4 << 30;

/// The most threads a pool may be given: a thread costs a stack and a share of every
/// parallel op, and more than this many only adds overhead.
pub const MAX_THREADS: usize = 1024;

/// 0 means "not read from the environment yet".
static MAX_TENSOR_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Parses `4096`, `64K`, `512M`, `16G` or `1T` (powers of 1024).
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, shift) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 10),
        'M' => (&s[..s.len() - 1], 20),
        'G' => (&s[..s.len() - 1], 30),
        'T' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: usize = digits.trim().parse().ok()?;
    n.checked_mul(1usize.checked_shl(shift)?).filter(|&b| b > 0)
}

/// The cap on one tensor's bytes (see the module's documentation).
pub fn max_tensor_bytes() -> usize {
    let cap = MAX_TENSOR_BYTES.load(Ordering::Relaxed);
    if cap != 0 {
        return cap;
    }
    let cap = std::env::var("NABLA_MAX_TENSOR_BYTES")
        .ok()
        .and_then(|v| parse_bytes(&v))
        .unwrap_or(DEFAULT_MAX_TENSOR_BYTES);
    MAX_TENSOR_BYTES.store(cap, Ordering::Relaxed);
    cap
}

/// Sets the cap on one tensor's bytes for this process (tests, fuzzing, a program that knows
/// its machine).
pub fn set_max_tensor_bytes(bytes: usize) {
    MAX_TENSOR_BYTES.store(bytes.max(1), Ordering::Relaxed);
}

/// The invalid value named by `NABLA_MAX_TENSOR_BYTES`, if it is set to something unreadable.
pub fn check_env() -> Result<()> {
    if let Ok(v) = std::env::var("NABLA_MAX_TENSOR_BYTES")
        && parse_bytes(&v).is_none()
    {
        return Err(Error::Argument {
            op: "NABLA_MAX_TENSOR_BYTES",
            msg: format!("'{v}' is not a positive size in bytes (e.g. 8589934592 or 8G)"),
        });
    }
    threads_from_env().map(|_| ())
}

/// The product of `dims`, or an error naming `what` when it overflows.
pub fn checked_elements(dims: &[usize], what: &str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| too_large(what, dims, None))
}

/// Checks that a tensor of `dims` with `elem_bytes`-byte elements fits under the cap; returns
/// its number of elements. `what` says where the size came from ("Linear weight",
/// "conv2d output", "IDX header of train-images-idx3-ubyte").
pub fn check_tensor(dims: &[usize], elem_bytes: usize, what: &str) -> Result<usize> {
    let n = checked_elements(dims, what)?;
    let bytes = n.checked_mul(elem_bytes).ok_or_else(|| too_large(what, dims, None))?;
    if bytes > max_tensor_bytes() {
        return Err(too_large(what, dims, Some(bytes)));
    }
    Ok(n)
}

/// Checks a number of bytes (a buffer that is not a tensor: a file's decompressed contents,
/// a batch of pixels) against the same cap.
pub fn check_bytes(bytes: usize, what: &str) -> Result<()> {
    if bytes > max_tensor_bytes() {
        return Err(Error::Argument {
            op: "limits",
            msg: format!(
                "{what}: {} is more than the limit of {} for one buffer (set NABLA_MAX_TENSOR_BYTES to change it)",
                human(bytes as f64),
                human(max_tensor_bytes() as f64)
            ),
        });
    }
    Ok(())
}

fn too_large(what: &str, dims: &[usize], bytes: Option<usize>) -> Error {
    let size = match bytes {
        Some(b) => format!("needs {}", human(b as f64)),
        None => {
            let approx: f64 = dims.iter().map(|&d| d as f64).product();
            format!("has about {approx:.2e} elements (past the address space)")
        }
    };
    Error::Argument {
        op: "limits",
        msg: format!(
            "{what}: shape {dims:?} {size}, more than the limit of {} for one tensor (set NABLA_MAX_TENSOR_BYTES to change it)",
            human(max_tensor_bytes() as f64)
        ),
    }
}

fn human(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} bytes")
    } else if u + 1 == UNITS.len() && v >= 1024.0 {
        format!("{bytes:.3e} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The thread count asked for by `NABLA_NUM_THREADS`: `None` when unset, an error when it is
/// not a number in 1..=[`MAX_THREADS`].
pub fn threads_from_env() -> Result<Option<usize>> {
    match std::env::var("NABLA_NUM_THREADS") {
        Ok(v) => check_threads(v.trim().parse().ok(), "NABLA_NUM_THREADS", &v).map(Some),
        Err(_) => Ok(None),
    }
}

/// `n` when it is a usable thread count, else an error naming `source` and what was given.
pub fn check_threads(n: Option<usize>, source: &'static str, given: &str) -> Result<usize> {
    match n {
        Some(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(Error::Argument {
            op: source,
            msg: format!("'{given}' is not a thread count from 1 to {MAX_THREADS}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("64K"), Some(65536));
        assert_eq!(parse_bytes("2g"), Some(2 << 30));
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("99999999999999999999T"), None);
    }

    #[test]
    fn products_that_wrap_are_refused() {
        // 2^16 · 2^16 · 2^16 · 2^16 = 2^64 wraps to 0 in usize.
        let e = checked_elements(&[65536; 4], "IDX header").unwrap_err().to_string();
        assert!(e.contains("IDX header") && e.contains("address space"), "{e}");
        assert_eq!(checked_elements(&[3, 4, 5], "x").unwrap(), 60);
        assert_eq!(checked_elements(&[], "x").unwrap(), 1);
    }

    #[test]
    fn a_tensor_over_the_cap_names_its_origin_and_size() {
        // 10^12 f32 = 3.6 TiB; the default cap is 4 GiB.
        let e = check_tensor(&[1_000_000, 1_000_000], 4, "Linear weight")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Linear weight") && e.contains("3.6 TiB"), "{e}");
        assert_eq!(check_tensor(&[1000, 1000], 4, "ok").unwrap(), 1_000_000);
    }

    #[test]
    fn thread_counts_are_bounded() {
        assert_eq!(check_threads(Some(4), "t", "4").unwrap(), 4);
        assert!(check_threads(Some(0), "t", "0").is_err());
        assert!(check_threads(Some(100_000), "t", "100000").is_err());
        assert!(check_threads(None, "t", "abc").is_err());
    }
}
