//! Without a font (`NABLA_FONT=none`) every plot is still drawn, without text.

use nabla_train::plots::{text_available, write_run_plots};
use nabla_train::{EpochMetrics, Evaluation};

#[test]
fn plots_without_text() {
    // SAFETY: the only test of this binary sets the variable before any thread reads it.
    unsafe { std::env::set_var("NABLA_FONT", "none") };
    assert!(!text_available());
    let dir = std::env::temp_dir().join(format!("nabla-plots-nofont-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = |epoch: usize, loss: f64| EpochMetrics {
        epoch,
        train_loss: loss,
        train_acc: 0.6,
        test_loss: loss,
        test_top1: 0.5,
        test_top5: 0.9,
        lr: 0.01,
        seconds: 1.0,
        train_samples_per_s: 10.0,
        val_loss: loss * 1.05,
        val_top1: 0.45,
        val_top5: 0.95,
    };
    let mut eval = Evaluation::new(2);
    eval.add(&[1.0, 0.0, 0.0, 1.0], &[0, 0], 0.5);
    let classes = vec!["yes".to_string(), "no".to_string()];
    let net = nabla_nn::Conv2d::new(1, 4, 3).unwrap();
    write_run_plots(&dir, &[m(1, 1.0), m(2, 0.5)], &eval, &classes, &net).unwrap();
    for f in ["loss.png", "accuracy.png", "confusion.png", "filters.png"] {
        let img = image::open(dir.join(f)).unwrap();
        assert!(img.width() > 0 && img.height() > 0, "{f}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
