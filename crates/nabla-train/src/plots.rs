//! The pictures of a run, as PNG files: loss and accuracy per epoch, the confusion matrix as a
//! heat map, and the first convolution layer's filters as an image grid (AlexNet, Fig. 3).
//!
//! Drawn with `plotters` into memory and encoded with `image`, so no system library is needed.
//! Text is rendered with the first TrueType font found (`NABLA_FONT`, then DejaVu Sans or
//! Liberation Sans in the usual folders); without one (or with `NABLA_FONT=none`), the plots
//! are drawn without text.

use std::path::Path;
use std::sync::OnceLock;

use crate::metrics::{EpochMetrics, Evaluation};
use nabla_core::{Error, Result, Tensor};
use nabla_nn::Module;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Where fonts are looked for, after `NABLA_FONT`.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a font as "sans-serif" once; whether text can be drawn.
/// `NABLA_FONT` names a TrueType file to use, or `none` for no text.
pub fn text_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let env = std::env::var("NABLA_FONT").ok();
        if matches!(env.as_deref(), Some("" | "none")) {
            return false;
        }
        env.iter()
            .map(String::as_str)
            .chain(FONT_PATHS.iter().copied())
            .any(|p| {
                let Ok(bytes) = std::fs::read(p) else {
                    return false;
                };
                // plotters keeps fonts for the life of the program.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
    })
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: format!("plot: {e}"),
    }
}

/// Encodes an RGB buffer as PNG and writes it crash-safely.
fn write_png(path: &Path, rgb: &[u8], (w, h): (u32, u32)) -> Result<()> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| err(path, e))?;
    nabla_nn::state::write_atomic(path, &bytes)
}

/// Draws with `draw` on a white `w`×`h` canvas and saves it.
fn render(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root).map_err(|e| err(path, e))?;
        root.present().map_err(|e| err(path, e))?;
    }
    write_png(path, &buf, (w, h))
}

/// One curve: a legend label, its colour and its (epoch, value) points.
type Curve = (&'static str, RGBColor, Vec<(f64, f64)>);

/// Tick labels on whole epochs only.
fn whole_epochs(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// Line chart of `curves` against the epoch, with points marked.
/// The y axis keeps inside `limits` (e.g. 0–100 for percentages).
fn line_chart(path: &Path, title: &str, y_desc: &str, curves: Vec<Curve>, limits: (f64, f64)) -> Result<()> {
    let text = text_available();
    let finite = || curves.iter().flat_map(|c| &c.2).map(|p| p.1).filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let (lo, hi) = ((lo - pad).max(limits.0), (hi + pad).min(limits.1));
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, hi + 1.0) };
    let last = curves.iter().flat_map(|c| &c.2).map(|p| p.0).fold(1.0, f64::max);
    render(path, (800, 500), |root| {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut b = ChartBuilder::on(root);
        b.margin(15);
        if text {
            b.caption(title, ("sans-serif", 22))
                .x_label_area_size(40)
                .y_label_area_size(60);
        }
        let mut chart = b
            .build_cartesian_2d(if last > 1.0 { 1.0..last } else { 0.5..1.5 }, lo..hi)
            .map_err(|e| e.to_string())?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("epoch")
                .y_desc(y_desc)
                .x_labels((last as usize).clamp(2, 11))
                .x_label_formatter(&whole_epochs);
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        for (label, color, points) in curves {
            let points: Vec<(f64, f64)> = points.into_iter().filter(|p| p.1.is_finite()).collect();
            let style = color.stroke_width(2);
            let series = chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(|e| e.to_string())?;
            if text {
                series
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(214, 39, 40);
const TOP5: RGBColor = RGBColor(44, 160, 44);

/// The points of one metric over the epochs where it was measured (NaN where it was not:
/// the test set of a run with validation, the accuracy of regression); `None` if nowhere.
fn series(history: &[EpochMetrics], scale: f64, f: fn(&EpochMetrics) -> f64) -> Option<Vec<(f64, f64)>> {
    let pts: Vec<(f64, f64)> = history
        .iter()
        .map(|m| (m.epoch as f64, scale * f(m)))
        .filter(|p| p.1.is_finite())
        .collect();
    (!pts.is_empty()).then_some(pts)
}

const VAL: RGBColor = RGBColor(255, 127, 14);

/// `loss.png`: training, validation and test loss per epoch (those measured).
pub fn plot_loss(history: &[EpochMetrics], regression: bool, path: &Path) -> Result<()> {
    let curves = [
        ("train", TRAIN, series(history, 1.0, |m| m.train_loss)),
        ("validation", VAL, series(history, 1.0, |m| m.val_loss)),
        ("test", TEST, series(history, 1.0, |m| m.test_loss)),
    ]
    .into_iter()
    .filter_map(|(n, c, p)| Some((n, c, p?)))
    .collect();
    let y = if regression {
        "mean squared error (standardised target)"
    } else {
        "cross-entropy"
    };
    line_chart(path, "Loss", y, curves, (0.0, f64::INFINITY))
}

/// `accuracy.png`: training accuracy and validation and test top-1/top-5 per epoch, in percent.
pub fn plot_accuracy(history: &[EpochMetrics], path: &Path) -> Result<()> {
    let curves = [
        ("train", TRAIN, series(history, 100.0, |m| m.train_acc)),
        ("validation top-1", VAL, series(history, 100.0, |m| m.val_top1)),
        ("test top-1", TEST, series(history, 100.0, |m| m.test_top1)),
        ("test top-5", TOP5, series(history, 100.0, |m| m.test_top5)),
    ]
    .into_iter()
    .filter_map(|(n, c, p)| Some((n, c, p?)))
    .collect();
    line_chart(path, "Accuracy", "accuracy (%)", curves, (0.0, 100.0))
}

/// `confusion.png`: rows are true classes, columns predictions; each cell is shaded by the
/// fraction of its row (white 0 → dark blue 1) and shows its count when a font is available.
pub fn plot_confusion(eval: &Evaluation, classes: &[String], path: &Path) -> Result<()> {
    let n = eval.confusion.len().max(1);
    let text = text_available();
    let cell = (640 / n as u32).clamp(12, 60);
    let (left, top) = if text { (130, 60) } else { (10, 10) };
    let (w, h) = (
        // Wide enough for the title and the footer (about 400 pixels) however few classes.
        (left + cell * n as u32 + 20).max(if text { 420 } else { 0 }),
        top + cell * n as u32 + if text { 50 } else { 10 },
    );
    render(path, (w, h), |root| {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let font = ("sans-serif", (cell as f64 * 0.35).clamp(9.0, 16.0)).into_font();
        for (t, row) in eval.confusion.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            for (p, &count) in row.iter().enumerate() {
                let f = count as f64 / total;
                let shade = |full: u8| (255.0 - f * (255.0 - full as f64)) as u8;
                let (x, y) = ((left + p as u32 * cell) as i32, (top + t as u32 * cell) as i32);
                let rect = [(x, y), (x + cell as i32, y + cell as i32)];
                root.draw(&Rectangle::new(
                    rect,
                    RGBColor(shade(8), shade(48), shade(107)).filled(),
                ))
                .map_err(|e| e.to_string())?;
                root.draw(&Rectangle::new(rect, RGBColor(200, 200, 200)))
                    .map_err(|e| e.to_string())?;
                if text && cell >= 24 {
                    let color = if f > 0.5 { WHITE } else { BLACK };
                    let style = font.color(&color).pos(Pos::new(HPos::Center, VPos::Center));
                    let centre = (x + cell as i32 / 2, y + cell as i32 / 2);
                    root.draw_text(&count.to_string(), &style, centre)
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        if text {
            let label = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
            let right = font.color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            for t in 0..n {
                let y = (top + t as u32 * cell + cell / 2) as i32;
                root.draw_text(&label(t), &right, (left as i32 - 6, y))
                    .map_err(|e| e.to_string())?;
            }
            let centred = font.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
            for p in 0..n {
                let x = (left + p as u32 * cell + cell / 2) as i32;
                root.draw_text(&p.to_string(), &centred, (x, top as i32 - 4))
                    .map_err(|e| e.to_string())?;
            }
            let title = ("sans-serif", 16).into_font().color(&BLACK);
            root.draw_text("true class (rows) / predicted class (columns)", &title, (10, 10))
                .map_err(|e| e.to_string())?;
            let foot = format!("top-1 {:.2}%  of {} test images", 100.0 * eval.top1(), eval.count);
            root.draw_text(&foot, &title, (left as i32, (top + cell * n as u32 + 15) as i32))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// `filters.png`: the filters of a `[out, in, kh, kw]` weight as a grid, each scaled on its
/// own to [0, 1] and enlarged; RGB for three input channels, grey (the mean over the input
/// channels) otherwise, on a grey background.
pub fn plot_filters(weight: &Tensor, path: &Path) -> Result<()> {
    let &[o, i, kh, kw] = weight.dims() else {
        return Err(err(
            path,
            format!("filters need a 4-D weight, got shape {}", weight.shape()),
        ));
    };
    let v = weight.to_vec_f64().map_err(|e| err(path, e.to_string()))?;
    let scale = (64 / kh.max(kw)).clamp(2, 16);
    let (gap, cols) = (scale.max(4), (o as f64).sqrt().ceil().max(1.0) as usize);
    let rows = o.div_ceil(cols).max(1);
    let (fw, fh) = (kw * scale, kh * scale);
    let (w, h) = (gap + cols * (fw + gap), gap + rows * (fh + gap));
    let mut buf = vec![160u8; w * h * 3];
    for f in 0..o {
        let filt = &v[f * i * kh * kw..(f + 1) * i * kh * kw];
        let (lo, hi) = filt
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        let norm = |x: f64| if hi > lo { (x - lo) / (hi - lo) } else { 0.5 };
        let (x0, y0) = (gap + (f % cols) * (fw + gap), gap + (f / cols) * (fh + gap));
        for y in 0..kh {
            for x in 0..kw {
                let at = |c: usize| filt[(c * kh + y) * kw + x];
                let rgb = if i == 3 {
                    [0, 1, 2].map(|c| norm(at(c)))
                } else {
                    [norm((0..i).map(at).sum::<f64>() / i as f64); 3]
                };
                let rgb = rgb.map(|c| (c * 255.0).round() as u8);
                for dy in 0..scale {
                    let row = (y0 + y * scale + dy) * w;
                    for dx in 0..scale {
                        let px = (row + x0 + x * scale + dx) * 3;
                        buf[px..px + 3].copy_from_slice(&rgb);
                    }
                }
            }
        }
    }
    write_png(path, &buf, (w as u32, h as u32))
}

/// `predictions.png`: predicted against true values of a regression (standardised target), with
/// the diagonal where they would be equal.
pub fn plot_predictions(pairs: &[(f32, f32)], path: &Path) -> Result<()> {
    let finite: Vec<(f64, f64)> = pairs
        .iter()
        .map(|&(t, p)| (t as f64, p as f64))
        .filter(|(t, p)| t.is_finite() && p.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(t, p)| {
            (a.min(t).min(p), b.max(t).max(p))
        });
    let (lo, hi) = if lo < hi { (lo, hi) } else { (-1.0, 1.0) };
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let text = text_available();
    render(path, (600, 600), |root| {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut b = ChartBuilder::on(root);
        b.margin(15);
        if text {
            b.caption("Predicted against true", ("sans-serif", 22))
                .x_label_area_size(40)
                .y_label_area_size(50);
        }
        let mut chart = b.build_cartesian_2d(lo..hi, lo..hi).map_err(|e| e.to_string())?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("true (standardised)").y_desc("predicted");
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.5)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(finite.iter().map(|&p| Circle::new(p, 2, TRAIN.filled())))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Writes `loss.png`, `accuracy.png` and `confusion.png` (for classification) and, when the
/// model has a 4-D parameter (its first convolution), `filters.png` into `dir`.
pub fn write_run_plots(
    dir: &Path,
    history: &[EpochMetrics],
    eval: &Evaluation,
    classes: &[String],
    model: &dyn Module,
) -> Result<()> {
    plot_loss(history, eval.regression, &dir.join("loss.png"))?;
    if eval.regression {
        plot_predictions(&eval.pairs, &dir.join("predictions.png"))?;
    } else {
        plot_accuracy(history, &dir.join("accuracy.png"))?;
        plot_confusion(eval, classes, &dir.join("confusion.png"))?;
    }
    if let Some((_, w)) = model.named_parameters().into_iter().find(|(_, t)| t.rank() == 4) {
        plot_filters(&w, &dir.join("filters.png"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: usize, loss: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: loss,
            train_acc: 0.5,
            test_loss: loss * 1.1,
            test_top1: 0.4,
            test_top5: 0.9,
            lr: 0.1,
            seconds: 1.0,
            train_samples_per_s: 100.0,
            val_loss: f64::NAN,
            val_top1: f64::NAN,
            val_top5: f64::NAN,
        }
    }

    #[test]
    fn a_small_confusion_matrix_keeps_its_title_and_footer() {
        let dir = std::env::temp_dir().join(format!("nabla-plots-small-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut eval = Evaluation::new(2);
        eval.add(&[1., 0., 0., 1.], &[0, 1], 1.0);
        let path = dir.join("confusion.png");
        plot_confusion(&eval, &["dark".into(), "light".into()], &path).unwrap();
        // The title needs about 400 pixels; two 60-pixel cells and the labels need 270.
        let width = size_of(&path).0;
        assert!(width >= 420 || !text_available(), "{width}");
        std::fs::remove_dir_all(dir).ok();
    }

    fn size_of(path: &Path) -> (u32, u32) {
        let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (img.width(), img.height())
    }

    #[test]
    fn plots_are_written_and_decodable() {
        let dir = std::env::temp_dir().join(format!("nabla-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut eval = Evaluation::new(3);
        eval.add(&[3., 1., 0., 0., 2., 1., 1., 0., 5.], &[0, 1, 1], 1.0);
        let classes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let net = nabla_nn::Conv2d::new(3, 8, 5).unwrap();
        // One epoch (a single point) and several, with a NaN that must be skipped.
        for history in [
            vec![metrics(1, 2.0)],
            vec![metrics(1, 2.0), metrics(2, f64::NAN), metrics(3, 0.5)],
        ] {
            write_run_plots(&dir, &history, &eval, &classes, &net).unwrap();
            for f in ["loss.png", "accuracy.png", "confusion.png", "filters.png"] {
                let (w, h) = size_of(&dir.join(f));
                assert!(w > 0 && h > 0, "{f}");
            }
        }
        // 8 filters of 5×5 at scale 12 with gaps of 12 in a 3×3 grid: 12 + 3·(60 + 12) = 228.
        assert_eq!(size_of(&dir.join("filters.png")), (228, 228));
        // Grey filters (one input channel) and a wrong rank.
        let grey = Tensor::from_vec((0..50).map(|v| v as f32).collect::<Vec<_>>(), (2, 1, 5, 5)).unwrap();
        plot_filters(&grey, &dir.join("grey.png")).unwrap();
        let img = image::open(dir.join("grey.png")).unwrap().to_rgb8();
        // The first filter's top-left value is its minimum (black), bottom-right its maximum.
        assert_eq!(img.get_pixel(12, 12).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(12 + 59, 12 + 59).0, [255, 255, 255]);
        assert!(plot_filters(&Tensor::zeros((2, 2), nabla_core::DType::F32), &dir.join("x.png")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
