//! Downloading over HTTP(S) with a progress bar, SHA-256 verification (FIPS 180-4) and
//! extraction of `.tar.gz` archives (POSIX ustar/GNU tar inside gzip, RFC 1952).
//!
//! A file is written to `<dest>.part` while it arrives and renamed to `<dest>` only once it is
//! complete (as many bytes as the server's `Content-Length` announced) and its checksum
//! matches; on any failure the `.part` file is removed, so `<dest>` is either absent or whole.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use nabla_core::{Error, Result};

/// How a download shows its progress on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// A bar when standard error is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// An indicatif bar.
    Bar,
    /// One line at the start, one per 10 % when the size is known, one at the end.
    Plain,
    /// Nothing.
    Hidden,
}

fn err(path: impl std::fmt::Display, msg: impl Into<String>) -> Error {
    Error::File {
        path: path.to_string(),
        msg: msg.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = BufReader::new(File::open(path).map_err(|e| err(path.display(), e.to_string()))?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| err(path.display(), e.to_string()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Where a download in progress is written: `<dest>.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Progress output for one download.
struct Reporter {
    bar: Option<ProgressBar>,
    plain: bool,
    label: String,
    total: Option<u64>,
    next_tenth: u64,
}

impl Reporter {
    fn new(mode: Progress, label: String, total: Option<u64>) -> Self {
        let mode = match mode {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Plain,
            m => m,
        };
        let bar = (mode == Progress::Bar).then(|| {
            let (bar, template) = match total {
                Some(t) => (
                    ProgressBar::new(t),
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                ),
                None => (ProgressBar::new_spinner(), "{msg} {spinner} {bytes} {bytes_per_sec}"),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.clone());
            bar
        });
        let plain = mode == Progress::Plain;
        if plain {
            match total {
                Some(t) => eprintln!("downloading {label} ({:.1} MB)", t as f64 / 1e6),
                None => eprintln!("downloading {label}"),
            }
        }
        Reporter {
            bar,
            plain,
            label,
            total,
            next_tenth: 1,
        }
    }

    fn update(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
        if let (true, Some(t)) = (self.plain, self.total) {
            while self.next_tenth < 10 && done * 10 >= t * self.next_tenth {
                eprintln!("  {}: {}%", self.label, self.next_tenth * 10);
                self.next_tenth += 1;
            }
        }
    }

    fn finish(&self, done: u64, ok: bool) {
        if let Some(b) = &self.bar {
            if ok { b.finish() } else { b.abandon() }
        }
        if self.plain && ok {
            eprintln!("  {}: done, {:.1} MB", self.label, done as f64 / 1e6);
        }
    }
}

/// Streams `url` into `part`, returning the byte count and SHA-256.
fn fetch_to(url: &str, part: &Path, progress: Progress, label: String) -> Result<(u64, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("nabla/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| err(url, format!("request failed: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(err(
            url,
            format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("error")
            ),
        ));
    }
    let total = resp.body().content_length();
    let mut reader = resp.body_mut().as_reader();
    let file = File::create(part).map_err(|e| err(part.display(), e.to_string()))?;
    let mut out = BufWriter::new(file);
    let mut hasher = Sha256::new();
    let mut rep = Reporter::new(progress, label, total);
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    let result = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                hasher.update(&buf[..n]);
                if let Err(e) = out.write_all(&buf[..n]) {
                    break Err(err(part.display(), e.to_string()));
                }
                done += n as u64;
                rep.update(done);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                break Err(err(url, format!("connection failed after {done}{of} bytes: {e}")));
            }
        }
    };
    let result = result.and_then(|()| match total {
        Some(t) if t != done => Err(err(url, format!("connection closed after {done} of {t} bytes"))),
        _ => Ok(()),
    });
    let result = result.and_then(|()| {
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(|e| err(part.display(), e.to_string()))
    });
    rep.finish(done, result.is_ok());
    result.map(|()| (done, hex(&hasher.finalize())))
}

/// Downloads `url` to `dest` (creating its folder), checking its SHA-256 when given.
/// Returns the number of bytes. On any failure nothing is left at `dest` or `<dest>.part`.
pub fn download(url: &str, dest: &Path, sha256: Option<&str>, progress: Progress) -> Result<u64> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err(parent.display(), e.to_string()))?;
    }
    let part = part_path(dest);
    let label = dest.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let (bytes, digest) = match fetch_to(url, &part, progress, label) {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    if let Some(expected) = sha256.filter(|x| !digest.eq_ignore_ascii_case(x)) {
        let _ = std::fs::remove_file(&part);
        return Err(err(
            url,
            format!("SHA-256 mismatch: expected {expected}, got {digest} ({bytes} bytes); the download was deleted"),
        ));
    }
    std::fs::rename(&part, dest).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        err(
            dest.display(),
            format!("cannot move the finished download into place: {e}"),
        )
    })?;
    Ok(bytes)
}

/// A reader that fails once more than `left` bytes have come through: a decompressor
/// wrapped in it cannot fill a disk (or memory) with a small bomb.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(
                "the archive unpacks to more than the limit for one buffer (set NABLA_MAX_TENSOR_BYTES to change it)",
            )
        })?;
        Ok(n)
    }
}

/// Unpacks a `.tar.gz` archive into `into` (created if needed). Entries that would land
/// outside `into` (absolute paths, `..`) are skipped, as the `tar` crate's `unpack` does. The
/// unpacked stream may be at most [`nabla_core::limits::max_tensor_bytes`] long.
pub fn extract_tar_gz(archive: &Path, into: &Path) -> Result<()> {
    let f = File::open(archive).map_err(|e| err(archive.display(), e.to_string()))?;
    std::fs::create_dir_all(into).map_err(|e| err(into.display(), e.to_string()))?;
    let unpacked = Capped {
        inner: flate2::read::GzDecoder::new(BufReader::new(f)),
        left: nabla_core::limits::max_tensor_bytes() as u64,
    };
    tar::Archive::new(unpacked).unpack(into).map_err(|e| {
        // The tar crate's message names the entry; the cause is in its source chain.
        let mut msg = format!("cannot extract into {}: {e}", into.display());
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            msg.push_str(&format!(": {c}"));
            cause = c.source();
        }
        err(archive.display(), msg)
    })
}
