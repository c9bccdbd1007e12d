//! The datasets nabla knows by name: where their files come from, how they are checked,
//! where they are looked for on disk, and how to load them.
//!
//! Lookup order for a dataset `<name>` (first match wins):
//! 1. `--data-dir DIR`: `DIR/<name>`, or `DIR` itself when it holds the dataset's files;
//! 2. `$NABLA_DATA/<name>`;
//! 3. the user cache, `$XDG_CACHE_HOME/nabla/<name>` or `~/.cache/nabla/<name>`;
//! 4. `/usr/share/datasets/<name>` (Debian's `dataset-*` packages);
//! 5. for Fashion-MNIST, the copy compiled into the binary.
//!
//! `nabla data fetch` downloads into `--data-dir`, else `$NABLA_DATA`, else the user cache.
//!
//! Checksums are SHA-256 of the files as the sources serve them. Each one below was taken from
//! several independent public projects that pin the same file and agrees with the dataset's
//! published MD5 where one exists (MD5s noted beside them). A file whose checksum is `None`
//! is downloaded without verification (and the CLI says so); fill in the constant to check it.

use std::path::{Path, PathBuf};

use crate::cifar::{self, Cifar100Label};
use crate::dataset::ImageDataset;
use crate::download::{self, Progress};
use crate::mnist::{self, Split};
use nabla_core::{Error, Result};

/// One file a dataset is downloaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    pub file: &'static str,
    pub url: &'static str,
    pub sha256: Option<&'static str>,
}

/// A dataset nabla can find, fetch and load by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetInfo {
    /// Canonical name, also the folder name under a data root.
    pub name: &'static str,
    /// Other names accepted on the command line and folder names looked for.
    pub aliases: &'static [&'static str],
    pub files: &'static [RemoteFile],
    /// Whether `files` is one `.tar.gz` to unpack (CIFAR) rather than files used as they are.
    pub archive: bool,
    /// Whether a copy is compiled into the binary.
    pub bundled: bool,
}

macro_rules! remote {
    ($base:expr, $file:literal, $sha:expr) => {
        RemoteFile {
            file: $file,
            url: concat!($base, $file),
            sha256: $sha,
        }
    };
}

/// MNIST (LeCun, Cortes & Burges), the PyTorch mirror of the original files.
/// MD5s (torchvision): f68b3c2d…, d53e105e…, 9fb629c4…, ec29112d….
pub const MNIST_FILES: [RemoteFile; 4] = [
    remote!(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "train-images-idx3-ubyte.gz",
        Some("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")
    ),
    remote!(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "train-labels-idx1-ubyte.gz",
        Some("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c")
    ),
    remote!(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "t10k-images-idx3-ubyte.gz",
        Some("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6")
    ),
    remote!(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "t10k-labels-idx1-ubyte.gz",
        Some("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")
    ),
];

/// Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from Zalando's own bucket.
/// MD5s (the project's README): 8d4fb7e6…, 25c81989…, bef4ecab…, bb300cfd….
/// The copies bundled in `data/fashion-mnist` were re-compressed by Debian: same IDX bytes,
/// different `.gz` bytes, so their hashes (b0564c3e…, 0ae29f65…, cc1d090a…, 8d3605d1…) are
/// not those of a download.
pub const FASHION_MNIST_FILES: [RemoteFile; 4] = [
    remote!(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "train-images-idx3-ubyte.gz",
        Some("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84")
    ),
    remote!(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "train-labels-idx1-ubyte.gz",
        Some("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845")
    ),
    remote!(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "t10k-images-idx3-ubyte.gz",
        Some("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073")
    ),
    remote!(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "t10k-labels-idx1-ubyte.gz",
        Some("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")
    ),
];

/// CIFAR-10 binary version (170,052,171 bytes; MD5 c32a1d4ab5d03f1284b67883e8d87530, from
/// the dataset page).
pub const CIFAR10_FILES: [RemoteFile; 1] = [remote!(
    "https://www.cs.toronto.edu/~kriz/",
    "cifar-10-binary.tar.gz",
    Some("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")
)];

/// CIFAR-100 binary version (168,513,733 bytes; MD5 03b5dce01913d631647c71ecec9e9cb8, from
/// the dataset page).
pub const CIFAR100_FILES: [RemoteFile; 1] = [remote!(
    "https://www.cs.toronto.edu/~kriz/",
    "cifar-100-binary.tar.gz",
    Some("58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec")
)];

/// Every dataset nabla knows by name.
pub const DATASETS: [DatasetInfo; 4] = [
    DatasetInfo {
        name: "mnist",
        aliases: &[],
        files: &MNIST_FILES,
        archive: false,
        bundled: false,
    },
    DatasetInfo {
        name: "fashion-mnist",
        aliases: &["fashion_mnist", "fashion"],
        files: &FASHION_MNIST_FILES,
        archive: false,
        bundled: true,
    },
    DatasetInfo {
        name: "cifar10",
        aliases: &["cifar-10"],
        files: &CIFAR10_FILES,
        archive: true,
        bundled: false,
    },
    DatasetInfo {
        name: "cifar100",
        aliases: &["cifar-100", "cifar100-coarse"],
        files: &CIFAR100_FILES,
        archive: true,
        bundled: false,
    },
];

/// The dataset called `name` (canonical name or alias, any case).
pub fn info(name: &str) -> Option<&'static DatasetInfo> {
    let n = name.to_ascii_lowercase();
    DATASETS.iter().find(|d| d.name == n || d.aliases.contains(&n.as_str()))
}

fn unknown(name: &str) -> Error {
    let names: Vec<&str> = DATASETS.iter().map(|d| d.name).collect();
    Error::Argument {
        op: "data",
        msg: format!("unknown dataset '{name}' (available: {})", names.join(", ")),
    }
}

/// Where a dataset was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    DataDir,
    Env,
    Cache,
    System,
    Bundled,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::DataDir => "--data-dir",
            Origin::Env => "$NABLA_DATA",
            Origin::Cache => "user cache",
            Origin::System => "system",
            Origin::Bundled => "bundled",
        })
    }
}

/// A dataset's location: a folder, or the bundled copy (`path` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub origin: Origin,
    pub path: Option<PathBuf>,
}

/// `$NABLA_DATA`, when set and not empty.
pub fn env_data_dir() -> Option<PathBuf> {
    std::env::var_os("NABLA_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The user cache: `$XDG_CACHE_HOME/nabla`, else `$HOME/.cache/nabla`.
pub fn user_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = || {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache"))
    };
    xdg.or_else(home).map(|c| c.join("nabla"))
}

/// Debian's dataset folder.
pub const SYSTEM_DIR: &str = "/usr/share/datasets";

/// The data roots searched, in order, with their origin.
pub fn search_roots(data_dir: Option<&Path>) -> Vec<(Origin, PathBuf)> {
    let mut roots = Vec::new();
    if let Some(d) = data_dir {
        roots.push((Origin::DataDir, d.to_path_buf()));
    }
    if let Some(d) = env_data_dir() {
        roots.push((Origin::Env, d));
    }
    if let Some(d) = user_cache_dir() {
        roots.push((Origin::Cache, d));
    }
    roots.push((Origin::System, PathBuf::from(SYSTEM_DIR)));
    roots
}

/// Where `nabla data fetch` puts datasets: `data_dir`, else `$NABLA_DATA`, else the user cache.
pub fn download_root(data_dir: Option<&Path>) -> Result<PathBuf> {
    data_dir
        .map(Path::to_path_buf)
        .or_else(env_data_dir)
        .or_else(user_cache_dir)
        .ok_or_else(|| Error::Argument {
            op: "data",
            msg: "no place to store datasets: pass --data-dir or set NABLA_DATA (HOME is not set)".into(),
        })
}

/// Whether `dir` holds all of the dataset's files (in the layout its archive unpacks to).
pub fn is_complete(info: &DatasetInfo, dir: &Path) -> bool {
    let any = |names: &[String]| names.iter().all(|n| dir.join(n).is_file());
    let idx = |stem: &str| dir.join(stem).is_file() || dir.join(format!("{stem}.gz")).is_file();
    match info.name {
        "mnist" | "fashion-mnist" => info.files.iter().all(|f| idx(f.file.trim_end_matches(".gz"))),
        "cifar10" => {
            let mut names = cifar::cifar10_files(Split::Train);
            names.extend(cifar::cifar10_files(Split::Test));
            any(&names)
                || any(&names
                    .iter()
                    .map(|n| format!("cifar-10-batches-bin/{n}"))
                    .collect::<Vec<_>>())
        }
        "cifar100" => ["", "cifar-100-binary/"]
            .iter()
            .any(|p| any(&[Split::Train, Split::Test].map(|s| format!("{p}{}", cifar::cifar100_file(s))))),
        _ => false,
    }
}

/// Looks for the dataset under `roots` (each `root/<name or alias>`; the `--data-dir` root
/// itself too), then the bundled copy.
pub fn locate_in(info: &DatasetInfo, roots: &[(Origin, PathBuf)]) -> Option<Location> {
    for (origin, root) in roots {
        let mut candidates: Vec<PathBuf> = std::iter::once(info.name)
            .chain(info.aliases.iter().copied())
            .map(|n| root.join(n))
            .collect();
        if *origin == Origin::DataDir {
            candidates.push(root.clone());
        }
        if let Some(dir) = candidates.into_iter().find(|d| is_complete(info, d)) {
            return Some(Location {
                origin: origin.clone(),
                path: Some(dir),
            });
        }
    }
    info.bundled.then_some(Location {
        origin: Origin::Bundled,
        path: None,
    })
}

/// Finds the dataset called `name` in the usual places (see the module docs).
pub fn locate(name: &str, data_dir: Option<&Path>) -> Result<Option<Location>> {
    let info = info(name).ok_or_else(|| unknown(name))?;
    Ok(locate_in(info, &search_roots(data_dir)))
}

/// Loads a split of dataset `name` from where [`locate`] finds it. `cifar100` has the 100
/// fine labels, `cifar100-coarse` the 20 superclasses.
pub fn load(name: &str, data_dir: Option<&Path>, split: Split) -> Result<ImageDataset> {
    let info = info(name).ok_or_else(|| unknown(name))?;
    if let Some(dir) = data_dir {
        // A folder the user names is the only place looked in: no silent fallback to another
        // copy (or the bundled one) when it is missing or incomplete.
        let roots = [(Origin::DataDir, dir.to_path_buf())];
        let found = locate_in(info, &roots).and_then(|l| l.path);
        let Some(found) = found else {
            return Err(Error::File {
                path: dir.display().to_string(),
                msg: format!(
                    "--data-dir does not hold a complete copy of {} (looked in {} and {}; expected {}); \
                     nabla does not fall back to another copy",
                    info.name,
                    dir.display(),
                    dir.join(info.name).display(),
                    info.files.iter().map(|f| f.file).collect::<Vec<_>>().join(", ")
                ),
            });
        };
        return load_from(info, Some(&found), split, name.eq_ignore_ascii_case("cifar100-coarse"));
    }
    let roots = search_roots(data_dir);
    let Some(loc) = locate_in(info, &roots) else {
        let looked: Vec<String> = roots
            .iter()
            .map(|(_, r)| r.join(info.name).display().to_string())
            .collect();
        return Err(Error::File {
            path: info.name.to_string(),
            msg: format!(
                "dataset not found (looked in {}); download it with `nabla data fetch {}`",
                looked.join(", "),
                info.name
            ),
        });
    };
    load_from(
        info,
        loc.path.as_deref(),
        split,
        name.eq_ignore_ascii_case("cifar100-coarse"),
    )
}

/// Loads a split of `info` from `dir` (`None`: the bundled copy).
pub fn load_from(info: &DatasetInfo, dir: Option<&Path>, split: Split, coarse: bool) -> Result<ImageDataset> {
    match (info.name, dir) {
        ("fashion-mnist", d) => mnist::fashion_mnist(d, split),
        ("mnist", Some(d)) => mnist::load_dir(d, split, (0..10).map(|i| i.to_string()).collect()),
        ("cifar10", Some(d)) => cifar::cifar10(d, split),
        ("cifar100", Some(d)) => {
            let label = if coarse {
                Cifar100Label::Coarse
            } else {
                Cifar100Label::Fine
            };
            cifar::cifar100(d, split, label)
        }
        _ => Err(unknown(info.name)),
    }
}

/// Downloads (and for archives unpacks) dataset `info` into `root/<name>`, skipping files that
/// are already there with the right checksum. Returns the dataset's folder.
pub fn fetch(info: &DatasetInfo, root: &Path, progress: Progress) -> Result<PathBuf> {
    let dir = root.join(info.name);
    let io = |p: &Path, e: std::io::Error| Error::File {
        path: p.display().to_string(),
        msg: e.to_string(),
    };
    if info.archive {
        if is_complete(info, &dir) {
            return Ok(dir);
        }
        let f = &info.files[0];
        let archive = root.join(f.file);
        download::download(f.url, &archive, f.sha256, progress)?;
        // Unpack beside the target, then move the unpacked folders in.
        let tmp = root.join(format!(".{}.part", info.name));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        download::extract_tar_gz(&archive, &tmp)?;
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        for entry in std::fs::read_dir(&tmp).map_err(|e| io(&tmp, e))? {
            let entry = entry.map_err(|e| io(&tmp, e))?;
            let target = dir.join(entry.file_name());
            if target.is_dir() {
                std::fs::remove_dir_all(&target).map_err(|e| io(&target, e))?;
            }
            std::fs::rename(entry.path(), &target).map_err(|e| io(&target, e))?;
        }
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        std::fs::remove_file(&archive).map_err(|e| io(&archive, e))?;
        if !is_complete(info, &dir) {
            return Err(Error::File {
                path: dir.display().to_string(),
                msg: format!("{} did not unpack to the expected files", f.file),
            });
        }
        return Ok(dir);
    }
    for f in info.files {
        let dest = dir.join(f.file);
        if dest.is_file() {
            match f.sha256 {
                Some(sha) if download::sha256_file(&dest)?.eq_ignore_ascii_case(sha) => continue,
                None => continue,
                Some(_) => {} // wrong or damaged: fetch again
            }
        }
        download::download(f.url, &dest, f.sha256, progress)?;
    }
    Ok(dir)
}
