//! Evaluation: a model's top-1, top-5, mean loss and confusion matrix on a loader, in
//! evaluation mode (dropout off, batch norm's running statistics) without gradients.

use crate::metrics::Evaluation;
use nabla_core::Result;
use nabla_data::DataLoader;
use nabla_nn::Module;
use nabla_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};

/// The device of a model's parameters (the CPU for a model without any).
pub fn model_device(model: &dyn Module) -> nabla_core::Device {
    model
        .parameters()
        .first()
        .map_or(nabla_core::Device::Cpu, |p| p.device())
}

/// `model` on every batch of `loader` (on the model's device): softmax cross-entropy, top-1,
/// top-5 and the confusion matrix over `classes` classes for class labels; the mean squared
/// error for f32 targets (regression).
pub fn evaluate(model: &dyn Module, loader: &DataLoader, classes: usize) -> Result<Evaluation> {
    model.eval();
    let mut eval = Evaluation::new(classes);
    let _guard = nabla_core::NoGradGuard::new();
    let device = model_device(model);
    for batch in loader.epoch(0, 0) {
        let mut batch = batch?;
        (batch.x, batch.y) = (batch.x.to_device(device)?, batch.y.to_device(device)?);
        let out = model.forward(&batch.x)?;
        if batch.y.dtype() == nabla_core::DType::F32 {
            // Regression: the summed squared error; accuracy does not apply.
            let loss = mse_loss(&out, &batch.y, Reduction::Sum)?;
            eval.add_regression(loss.item()?, batch.y.elem_count());
            eval.add_predictions(&batch.y.to_vec::<f32>()?, &out.to_vec::<f32>()?);
            continue;
        }
        let opts = CrossEntropyOptions {
            reduction: Reduction::Sum,
            ..Default::default()
        };
        let loss = cross_entropy(&out, &batch.y, &opts)?;
        eval.add(&out.to_vec::<f32>()?, &batch.y.to_vec::<i64>()?, loss.item()?);
    }
    Ok(eval)
}
