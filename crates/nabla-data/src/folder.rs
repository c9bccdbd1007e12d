//! Image folders in the layout of torchvision's `ImageFolder`: one sub-folder per class,
//! holding that class's pictures.
//!
//! ```text
//! root/
//!   cat/  001.png  002.jpg …
//!   dog/  a.jpeg …
//! ```
//!
//! Class indices follow the sorted sub-folder names (byte order, as `ImageFolder` does);
//! within a class the files are taken in sorted order, so a folder always gives the same
//! dataset. PNG and JPEG files (by extension, any case) are decoded with the `image` crate,
//! converted to one colour mode and resized (bilinear) to one size so that they stack into an
//! [`ImageDataset`]. Other files and hidden entries are skipped.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};

use crate::dataset::ImageDataset;
use nabla_core::{Error, Result};

/// The colour mode images are converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// One channel of grey levels (Rec. 709 luma weights 0.2126, 0.7152, 0.0722, as the
    /// `image` crate computes it).
    Grey,
    /// Three channels, red, green, blue; an alpha channel is dropped.
    Rgb,
}

impl ColorMode {
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grey => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// How the pictures of a folder are made to stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderOptions {
    pub mode: ColorMode,
    /// Height and width every image is resized to.
    pub size: [usize; 2],
}

/// Whether `path` names a picture this reader decodes (`.png`, `.jpg`, `.jpeg`).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

fn file_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| file_err(dir, e.to_string()))? {
        let entry = entry.map_err(|e| file_err(dir, e.to_string()))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Decodes one picture into bytes `[C, H, W]` of the requested mode and size.
pub fn load_image(path: &Path, opts: &FolderOptions) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, format!("cannot open image: {e}")))?;
    decode_image(&bytes, path, opts)
}

/// Decodes an encoded picture (PNG, JPEG, …, recognised by its content). The decoder may
/// allocate at most the cap on one buffer ([`nabla_core::limits::max_tensor_bytes`]).
pub fn open_image(bytes: &[u8], path: &Path) -> Result<image::DynamicImage> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| file_err(path, format!("cannot open image: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(nabla_core::limits::max_tensor_bytes() as u64);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| file_err(path, format!("cannot decode image: {e}")))
}

/// Decodes an encoded picture (PNG, JPEG, …, by its content) into bytes `[C, H, W]` of the
/// requested mode and size. The decoder may allocate at most the cap on one buffer
/// ([`nabla_core::limits::max_tensor_bytes`]): a 100-byte PNG header that claims
/// 100,000 × 100,000 pixels is an error, not 30 GB.
pub fn decode_image(bytes: &[u8], path: &Path, opts: &FolderOptions) -> Result<Vec<u8>> {
    let [h, w] = opts.size;
    let out_bytes = nabla_core::limits::checked_elements(&[opts.mode.channels(), h, w], "image size")?;
    nabla_core::limits::check_bytes(out_bytes, &format!("{}: image size {h}×{w}", path.display()))?;
    let img = open_image(bytes, path)?;
    let (hw, ww) = (h as u32, w as u32);
    Ok(match opts.mode {
        ColorMode::Grey => {
            let g = img.to_luma8();
            if g.dimensions() == (ww, hw) {
                g.into_raw()
            } else {
                imageops::resize(&g, ww, hw, FilterType::Triangle).into_raw()
            }
        }
        ColorMode::Rgb => {
            let mut rgb = img.to_rgb8();
            if rgb.dimensions() != (ww, hw) {
                rgb = imageops::resize(&rgb, ww, hw, FilterType::Triangle);
            }
            // Interleaved HWC to planar CHW.
            let raw = rgb.into_raw();
            let mut out = vec![0u8; raw.len()];
            for (i, px) in raw.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * h * w + i] = px[c];
                }
            }
            out
        }
    })
}

/// The (file, class index) pairs of an image folder and its class names.
pub fn list_image_folder(root: &Path) -> Result<(Vec<(PathBuf, i64)>, Vec<String>)> {
    list_image_folder_as(root, None)
}

/// As [`list_image_folder`], with the class indices of `classes` when given (a test split
/// labelled as its training split was): a sub-folder that is not one of them is an error, a
/// class without a sub-folder is allowed.
pub fn list_image_folder_as(root: &Path, classes: Option<&[String]>) -> Result<(Vec<(PathBuf, i64)>, Vec<String>)> {
    let class_dirs: Vec<PathBuf> = sorted_entries(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if class_dirs.is_empty() {
        return Err(file_err(root, "no class sub-folders (expected root/<class>/<image>)"));
    }
    let mut files = Vec::new();
    let mut names = Vec::new();
    for dir in &class_dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let label = match classes {
            None => names.len(),
            Some(known) => known.iter().position(|c| *c == name).ok_or_else(|| {
                file_err(
                    dir,
                    format!("class '{name}' is not one of the training classes {known:?}"),
                )
            })?,
        };
        names.push(name);
        for f in sorted_entries(dir)? {
            if f.is_file() && is_image_file(&f) {
                files.push((f, label as i64));
            }
        }
    }
    let classes = classes.map_or(names, <[String]>::to_vec);
    if files.is_empty() {
        return Err(file_err(root, "no .png, .jpg or .jpeg files in the class sub-folders"));
    }
    Ok((files, classes))
}

/// Reads an image folder into memory, decoding on all cores. The first unreadable image
/// (in sorted order) is the error, naming the file.
pub fn load_image_folder(root: &Path, opts: &FolderOptions) -> Result<ImageDataset> {
    load_image_folder_as(root, opts, None)
}

/// As [`load_image_folder`], labelled with the indices of `classes` when given (see
/// [`list_image_folder_as`]).
pub fn load_image_folder_as(root: &Path, opts: &FolderOptions, classes: Option<&[String]>) -> Result<ImageDataset> {
    if opts.size.contains(&0) {
        return Err(file_err(root, format!("image size {:?} must be positive", opts.size)));
    }
    let (files, classes) = list_image_folder_as(root, classes)?;
    let per = opts.mode.channels() * opts.size[0] * opts.size[1];
    let total = nabla_core::limits::checked_elements(&[files.len(), per], "image folder")?;
    nabla_core::limits::check_bytes(total, &format!("{}: {} images", root.display(), files.len()))?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len());
    let chunk = files.len().div_ceil(threads);
    let mut pixels = vec![0u8; files.len() * per];
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .zip(pixels.chunks_mut(chunk * per))
            .map(|(fs, out)| {
                s.spawn(move || -> Result<()> {
                    for ((path, _), dst) in fs.iter().zip(out.chunks_exact_mut(per)) {
                        dst.copy_from_slice(&load_image(path, opts)?);
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(file_err(root, "an image decoding thread panicked")))
        })
    })?;
    let labels = files.iter().map(|f| f.1).collect();
    ImageDataset::new(
        pixels,
        [opts.mode.channels(), opts.size[0], opts.size[1]],
        labels,
        classes,
    )
}
