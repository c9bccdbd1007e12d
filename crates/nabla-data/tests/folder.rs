//! Image folders with PNG and JPEG files written here by the `image` crate.

use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};
use nabla_data::folder::{self, ColorMode, FolderOptions};

fn solid_rgb(path: &Path, w: u32, h: u32, px: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_pixel(w, h, Rgb(px)).save(path).unwrap();
}

fn tree(root: &Path) {
    solid_rgb(&root.join("cat/b.png"), 8, 8, [255, 0, 0]);
    solid_rgb(&root.join("cat/a.jpg"), 16, 12, [0, 0, 255]);
    solid_rgb(&root.join("ant/x.JPEG"), 4, 4, [0, 255, 0]);
    std::fs::create_dir_all(root.join("ant")).unwrap();
    GrayImage::from_pixel(8, 8, Luma([200]))
        .save(root.join("ant/y.png"))
        .unwrap();
    std::fs::write(root.join("cat/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("README"), "a file at the top is not a class").unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
}

#[test]
fn classes_are_sorted_folders_and_images_stack() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    let opts = FolderOptions {
        mode: ColorMode::Rgb,
        size: [8, 8],
    };
    let ds = folder::load_image_folder(tmp.path(), &opts).unwrap();
    assert_eq!(ds.classes, vec!["ant", "cat"]);
    assert_eq!(ds.shape, [3, 8, 8]);
    // Sorted files: ant/x.JPEG, ant/y.png, cat/a.jpg, cat/b.png.
    assert_eq!(ds.labels, vec![0, 0, 1, 1]);
    let per = 3 * 64;
    let img = |i: usize, c: usize| &ds.pixels[i * per + c * 64..i * per + (c + 1) * 64];
    // A grey PNG becomes three equal planes.
    assert!(img(1, 0).iter().chain(img(1, 2)).all(|&p| p == 200));
    // The red PNG, planar: red plane 255, others 0.
    assert!(img(3, 0).iter().all(|&p| p == 255));
    assert!(img(3, 1).iter().chain(img(3, 2)).all(|&p| p == 0));
    // JPEGs are lossy: the blue one (resized from 16×12) is mostly blue, the green one mostly green.
    let mean = |s: &[u8]| s.iter().map(|&p| p as f64).sum::<f64>() / s.len() as f64;
    assert!(mean(img(2, 2)) > 230.0 && mean(img(2, 0)) < 25.0, "{:?}", img(2, 2));
    assert!(mean(img(0, 1)) > 230.0 && mean(img(0, 0)) < 25.0);
}

#[test]
fn grey_mode_and_resizing() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    let opts = FolderOptions {
        mode: ColorMode::Grey,
        size: [5, 7],
    };
    let ds = folder::load_image_folder(tmp.path(), &opts).unwrap();
    assert_eq!(ds.shape, [1, 5, 7]);
    assert_eq!(ds.pixels.len(), 4 * 35);
    // Pure red to luma: 0.2126 × 255 ≈ 54; a uniform image stays uniform when resized.
    let red = &ds.pixels[3 * 35..4 * 35];
    assert!(red.iter().all(|&p| p.abs_diff(54) <= 1), "{red:?}");
    let grey = &ds.pixels[35..70];
    assert!(grey.iter().all(|&p| p == 200));
}

#[test]
fn resize_is_bilinear_between_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c/ramp.png");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    // Left half black, right half white; downscaling blends at the edge only.
    GrayImage::from_fn(8, 2, |x, _| Luma([if x < 4 { 0 } else { 255 }]))
        .save(&p)
        .unwrap();
    let opts = FolderOptions {
        mode: ColorMode::Grey,
        size: [1, 4],
    };
    let px = folder::load_image(&p, &opts).unwrap();
    assert_eq!(px.len(), 4);
    assert!(px[0] < 40 && px[3] > 215, "{px:?}");
    assert!(px[0] <= px[1] && px[1] <= px[2] && px[2] <= px[3], "{px:?}");
}

#[test]
fn unreadable_images_and_empty_folders_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = FolderOptions {
        mode: ColorMode::Rgb,
        size: [4, 4],
    };
    // No class folders.
    let e = folder::load_image_folder(tmp.path(), &opts).unwrap_err().to_string();
    assert!(e.contains("no class sub-folders"), "{e}");
    // Class folders without images.
    std::fs::create_dir_all(tmp.path().join("a")).unwrap();
    let e = folder::load_image_folder(tmp.path(), &opts).unwrap_err().to_string();
    assert!(e.contains("no .png, .jpg or .jpeg files"), "{e}");
    // A broken PNG among good ones: the error names it.
    solid_rgb(&tmp.path().join("a/good.png"), 4, 4, [1, 2, 3]);
    let bad = tmp.path().join("a/broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nthis is not the rest of a png").unwrap();
    let e = folder::load_image_folder(tmp.path(), &opts).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: cannot decode image", bad.display())), "{e}");
    // A truncated JPEG.
    std::fs::remove_file(&bad).unwrap();
    let jpg = tmp.path().join("a/cut.jpg");
    solid_rgb(&jpg, 32, 32, [9, 9, 9]);
    let bytes = std::fs::read(&jpg).unwrap();
    std::fs::write(&jpg, &bytes[..bytes.len() / 3]).unwrap();
    let e = folder::load_image_folder(tmp.path(), &opts).unwrap_err().to_string();
    assert!(e.contains("cut.jpg"), "{e}");
    // A zero size.
    let zero = FolderOptions {
        mode: ColorMode::Rgb,
        size: [0, 4],
    };
    assert!(folder::load_image_folder(tmp.path(), &zero).is_err());
}

#[test]
fn a_test_split_is_labelled_with_the_training_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    for (dir, class, v) in [
        (&train, "ant", 10u8),
        (&train, "bee", 100),
        (&train, "cat", 200),
        (&test, "cat", 200),
    ] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        GrayImage::from_pixel(4, 4, Luma([v]))
            .save(dir.join(class).join("p.png"))
            .unwrap();
    }
    let opts = FolderOptions {
        mode: ColorMode::Grey,
        size: [4, 4],
    };
    let classes = folder::list_image_folder(&train).unwrap().1;
    // Alone, the test folder's only class would be class 0; it is "cat", class 2.
    assert_eq!(folder::load_image_folder(&test, &opts).unwrap().labels, vec![0]);
    let ds = folder::load_image_folder_as(&test, &opts, Some(&classes)).unwrap();
    assert_eq!((ds.labels, ds.classes), (vec![2], classes.clone()));
    std::fs::create_dir_all(test.join("emu")).unwrap();
    let e = folder::load_image_folder_as(&test, &opts, Some(&classes))
        .unwrap_err()
        .to_string();
    assert!(e.contains("class 'emu' is not one of the training classes"), "{e}");
}
