//! The IDX format of MNIST, Fashion-MNIST and KMNIST (LeCun et al.): a big-endian header
//! `0x00 0x00 <type> <rank>`, one u32 size per dimension, then the values; gzipped or not.

use std::io::Read;
use std::path::Path;

use nabla_core::{Error, Result};

/// An unsigned-byte IDX array: its dimensions and values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

fn bad(origin: &str, msg: impl Into<String>) -> Error {
    Error::File {
        path: origin.to_string(),
        msg: msg.into(),
    }
}

/// Parses IDX bytes (gunzipping them first if they start with the gzip magic).
pub fn parse_idx(bytes: &[u8], origin: &str) -> Result<IdxArray> {
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        raw = gunzip_capped(bytes, origin)?;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 {
        return Err(bad(
            origin,
            format!("file is {} bytes long, too short for an IDX header", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(
            origin,
            format!(
                "wrong IDX magic number at byte 0: {:02x} {:02x} {:02x} {:02x} (expected 00 00 08 <rank>)",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(bad(
            origin,
            format!(
                "IDX element type 0x{:02x} at byte 2 is not supported (only 0x08, unsigned bytes)",
                bytes[2]
            ),
        ));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad(
            origin,
            format!("truncated IDX header: {} bytes, expected {header}", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    // Checked: a product that wraps (to 0, say) must not pass for the body's length.
    let count = nabla_core::limits::checked_elements(&dims, &format!("{origin}: IDX header"))?;
    let body = &bytes[header..];
    if body.len() != count {
        return Err(bad(
            origin,
            format!(
                "IDX dimensions {dims:?} need {count} bytes after the header (offset {header}), the file has {}",
                body.len()
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

/// Gunzips `bytes`, stopping with an error as soon as the output passes the cap on one buffer
/// ([`nabla_core::limits::max_tensor_bytes`]): a 4 MB gzip bomb must not become 4 GiB first.
pub fn gunzip_capped(bytes: &[u8], origin: &str) -> Result<Vec<u8>> {
    let cap = nabla_core::limits::max_tensor_bytes();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(origin, format!("gzip data is corrupt or truncated: {e}")))?;
    if out.len() > cap {
        return Err(bad(
            origin,
            format!(
                "gzip data unpacks to more than {cap} bytes, the limit for one buffer (set NABLA_MAX_TENSOR_BYTES to change it)"
            ),
        ));
    }
    Ok(out)
}

/// Reads an IDX file from disk.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| bad(&path.display().to_string(), e.to_string()))?;
    parse_idx(&bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_written_file_and_rejects_bad_ones() {
        let mut b = vec![0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend([1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&b, "t").unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        let e = parse_idx(&[1, 0, 8, 1, 0, 0, 0, 0], "x.idx").unwrap_err().to_string();
        assert!(e.starts_with("x.idx: wrong IDX magic number at byte 0"), "{e}");
        let e = parse_idx(&b[..15], "y").unwrap_err().to_string();
        assert!(
            e.contains("need 6 bytes after the header (offset 12), the file has 3"),
            "{e}"
        );
    }
}
