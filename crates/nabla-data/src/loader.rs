//! The batching loader: seeded shuffling each epoch, optional drop-last, and samples decoded
//! and augmented on worker threads ahead of the model (bounded prefetch), in a fixed order so
//! that a seed gives the same batches however the threads are scheduled.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use crate::dataset::Dataset;
use crate::transforms::{Sample, Transform};
use nabla_core::rng::splitmix64;
use nabla_core::{Generator, Result, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
    /// Threads that prepare batches (0: prepare them on the caller's thread).
    pub workers: usize,
    /// Batches each worker may prepare ahead.
    pub prefetch: usize,
    /// `(rank, world)` of data-parallel training: each batch of `batch_size` samples (the
    /// global batch) is cut into `world` contiguous parts and this loader yields part `rank`.
    pub shard: (usize, usize),
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 64,
            shuffle: true,
            drop_last: false,
            seed: 0,
            workers: 1,
            prefetch: 4,
            shard: (0, 1),
        }
    }
}

/// One mini-batch: inputs `[B, C, H, W]` (f32) and labels `[B]` (i64).
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    /// Position of the batch in its epoch.
    pub index: usize,
    /// Samples in the whole batch of all ranks (this loader's part is `x`'s first dimension).
    pub global_len: usize,
}

#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    transform: Option<Arc<dyn Transform>>,
    pub config: LoaderConfig,
}

/// A seed for (run seed, epoch, salt), mixed by splitmix64.
fn mix(seed: u64, epoch: u64, salt: u64) -> u64 {
    let mut s = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.rotate_left(32);
    splitmix64(&mut s)
}

impl DataLoader {
    pub fn new(dataset: Arc<dyn Dataset>, transform: Option<Arc<dyn Transform>>, config: LoaderConfig) -> Self {
        DataLoader {
            dataset,
            transform,
            config: LoaderConfig {
                batch_size: config.batch_size.max(1),
                ..config
            },
        }
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.config.batch_size);
        if self.config.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// The sample order of `epoch`: a seeded Fisher–Yates permutation, or 0..n.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.config.shuffle {
            Generator::seed_from_u64(mix(self.config.seed, epoch as u64, 1)).shuffle(&mut order);
        }
        order
    }

    /// Builds batch `b` of `epoch` (augmentation seeded per sample, so order-independent).
    fn make_batch(
        dataset: &dyn Dataset,
        transform: Option<&dyn Transform>,
        order: &[usize],
        cfg: &LoaderConfig,
        epoch: usize,
        b: usize,
    ) -> Result<Batch> {
        let global = &order[b * cfg.batch_size..((b + 1) * cfg.batch_size).min(order.len())];
        let (rank, world) = cfg.shard;
        let idx = &global[rank * global.len() / world.max(1)..(rank + 1) * global.len() / world.max(1)];
        let mut xs = Vec::new();
        let mut ys = Vec::with_capacity(idx.len());
        let mut targets = Vec::new();
        // NOTE: every sample starts from the dataset's shape; `shape` becomes the transformed one.
        let in_shape = dataset.sample_shape();
        let mut shape = in_shape.clone();
        for &i in idx {
            let (data, y) = dataset.get(i);
            // Transforms work on [C, H, W] images; other samples (table rows) pass unchanged.
            let data = match (transform, in_shape.len()) {
                (Some(t), 3) => {
                    let s = Sample {
                        data,
                        shape: [in_shape[0], in_shape[1], in_shape[2]],
                    };
                    let s = t.apply(
                        s,
                        &mut Generator::seed_from_u64(mix(cfg.seed, epoch as u64, 2 + i as u64)),
                    );
                    shape = s.shape.to_vec();
                    s.data
                }
                _ => data,
            };
            xs.extend_from_slice(&data);
            ys.push(y);
            if let Some(t) = dataset.target(i) {
                targets.push(t);
            }
        }
        let mut dims = vec![idx.len()];
        dims.extend(&shape);
        // Regression: the targets as a [B, 1] f32 column; classification: the labels [B] (i64).
        let y = if targets.len() == idx.len() && !idx.is_empty() {
            Tensor::from_vec(targets, (idx.len(), 1))?
        } else {
            Tensor::from_vec(ys, (idx.len(),))?
        };
        Ok(Batch {
            x: Tensor::from_vec(xs, dims)?,
            y,
            index: b,
            global_len: global.len(),
        })
    }

    /// The batches of `epoch` from batch `start` on (for resuming mid-epoch).
    pub fn epoch(&self, epoch: usize, start: usize) -> EpochIter {
        let order = Arc::new(self.order(epoch));
        let total = self.num_batches();
        let workers = self.config.workers;
        let mut channels = Vec::new();
        let mut handles = Vec::new();
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Result<Batch>>(self.config.prefetch.max(1));
            let (ds, tf, order, cfg) = (self.dataset.clone(), self.transform.clone(), order.clone(), self.config);
            handles.push(std::thread::spawn(move || {
                let mut b = start + w;
                while b < total {
                    let batch = DataLoader::make_batch(ds.as_ref(), tf.as_deref(), &order, &cfg, epoch, b);
                    if tx.send(batch).is_err() {
                        return; // the consumer stopped early
                    }
                    b += workers;
                }
            }));
            channels.push(rx);
        }
        EpochIter {
            loader: self.clone(),
            order,
            epoch,
            next: start,
            first: start,
            total,
            channels,
            _handles: handles,
        }
    }
}

/// Batches of one epoch, in order.
pub struct EpochIter {
    loader: DataLoader,
    order: Arc<Vec<usize>>,
    epoch: usize,
    next: usize,
    first: usize,
    total: usize,
    channels: Vec<Receiver<Result<Batch>>>,
    _handles: Vec<JoinHandle<()>>,
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if self.channels.is_empty() {
            let l = &self.loader;
            return Some(DataLoader::make_batch(
                l.dataset.as_ref(),
                l.transform.as_deref(),
                &self.order,
                &l.config,
                self.epoch,
                b,
            ));
        }
        // Worker k makes batches first + k, first + k + w, …
        let channel = (b - self.first) % self.channels.len();
        Some(self.channels[channel].recv().unwrap_or_else(|_| {
            Err(nabla_core::Error::Argument {
                op: "DataLoader",
                msg: "a worker thread stopped unexpectedly".into(),
            })
        }))
    }
}
