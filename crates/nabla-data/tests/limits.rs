//! Sizes from files are checked before allocating. This file has a process of its own: the
//! cap on one buffer is lowered to 1 MiB here.

use nabla_data::idx::parse_idx;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_gzip_bomb_stops_at_the_cap_instead_of_unpacking() {
    nabla_core::limits::set_max_tensor_bytes(1 << 20);
    // 16 MiB of zeros packs into about 16 KB: 1000 times its size once unpacked.
    let mut idx = vec![0u8, 0, 8, 1];
    idx.extend(((16u32 << 20) - 8).to_be_bytes());
    idx.resize(16 << 20, 0);
    let bomb = gzip(&idx);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let e = parse_idx(&bomb, "bomb.gz").unwrap_err().to_string();
    assert!(
        e.starts_with("bomb.gz: gzip data unpacks to more than 1048576 bytes"),
        "{e}"
    );
    // Under the cap it unpacks as before.
    let small = gzip(&[0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
    assert_eq!(parse_idx(&small, "ok.gz").unwrap().data, vec![7, 8, 9]);
}

#[test]
fn idx_sizes_that_wrap_or_are_zero_are_errors() {
    // 2^16 · 2^16 · 2^16 · 2^16 wraps to 0 in 64 bits: with an empty body it "matched".
    let mut wrap = vec![0u8, 0, 8, 4];
    for _ in 0..4 {
        wrap.extend(65536u32.to_be_bytes());
    }
    let e = parse_idx(&wrap, "wrap.idx").unwrap_err().to_string();
    assert!(e.contains("past the address space"), "{e}");
    let h0 = [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 28];
    let images = parse_idx(&h0, "h0").unwrap();
    let labels = parse_idx(&[0, 0, 8, 1, 0, 0, 0, 2, 0, 1], "l").unwrap();
    let e = nabla_data::mnist::from_idx(images, labels, vec!["a".into(), "b".into()], "h0.idx")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("h0.idx: images [N, H, W] = [2, 0, 28] has a zero size"),
        "{e}"
    );
}

#[test]
fn an_image_claiming_huge_dimensions_is_refused_by_the_decoder() {
    nabla_core::limits::set_max_tensor_bytes(1 << 20);
    // A real 2000×2000 PNG (4 MB of pixels once decoded, a few KB packed).
    let mut png = Vec::new();
    image::GrayImage::new(2000, 2000)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let opts = nabla_data::folder::FolderOptions {
        mode: nabla_data::folder::ColorMode::Grey,
        size: [28, 28],
    };
    let e = nabla_data::folder::decode_image(&png, std::path::Path::new("big.png"), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("big.png: cannot decode image"), "{e}");
}

#[test]
fn a_tar_gz_bomb_is_not_unpacked_past_the_cap() {
    nabla_core::limits::set_max_tensor_bytes(1 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let zeros = vec![0u8; 8 << 20];
    let mut header = tar::Header::new_gnu();
    header.set_size(zeros.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "zeros.bin", &zeros[..]).unwrap();
    let archive = tmp.path().join("bomb.tar.gz");
    std::fs::write(&archive, gzip(&tar.into_inner().unwrap())).unwrap();
    let e = nabla_data::download::extract_tar_gz(&archive, &tmp.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than the limit for one buffer"), "{e}");
}

#[test]
fn a_holdout_split_is_seeded_disjoint_and_complete() {
    let (kept, held) = nabla_data::holdout_split(100, 0.2, 7);
    assert_eq!((kept.len(), held.len()), (80, 20));
    let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(nabla_data::holdout_split(100, 0.2, 7), (kept.clone(), held.clone()));
    assert_ne!(nabla_data::holdout_split(100, 0.2, 8).1, held);
    // At least one held out, at least one kept; none for a fraction of 0.
    assert_eq!(nabla_data::holdout_split(3, 0.01, 1).1.len(), 1);
    assert_eq!(nabla_data::holdout_split(3, 0.99, 1).0.len(), 1);
    assert!(nabla_data::holdout_split(50, 0.0, 1).1.is_empty());
}
