//! Data-parallel sharding of the loader: every rank of a world sees the same shuffled order,
//! takes its contiguous part of each global batch, the parts are disjoint, and together they
//! are the epoch, sample for sample.

use std::sync::Arc;

use nabla_data::{DataLoader, Dataset, LoaderConfig};

/// Sample i is the single value i (its label too), so a batch shows which samples it holds.
struct Numbers(usize);

impl Dataset for Numbers {
    fn len(&self) -> usize {
        self.0
    }
    fn sample_shape(&self) -> Vec<usize> {
        vec![1]
    }
    fn get(&self, i: usize) -> (Vec<f32>, i64) {
        (vec![i as f32], i as i64)
    }
    fn classes(&self) -> Vec<String> {
        Vec::new()
    }
}

fn samples(world: usize, rank: usize, epoch: usize) -> Vec<Vec<i64>> {
    let cfg = LoaderConfig {
        batch_size: 10,
        seed: 7,
        shard: (rank, world),
        workers: 2,
        ..Default::default()
    };
    DataLoader::new(Arc::new(Numbers(53)), None, cfg)
        .epoch(epoch, 0)
        .map(|b| {
            let b = b.unwrap();
            let len = b.y.dims()[0];
            assert_eq!(b.global_len, if b.index == 5 { 3 } else { 10 });
            assert!(len == b.global_len / world || len == b.global_len / world + 1);
            b.y.to_vec::<i64>().unwrap()
        })
        .collect()
}

#[test]
fn shards_are_disjoint_and_their_union_is_the_epoch() {
    for world in [2, 3] {
        let whole = samples(1, 0, 4);
        let parts: Vec<Vec<Vec<i64>>> = (0..world).map(|r| samples(world, r, 4)).collect();
        for (b, batch) in whole.iter().enumerate() {
            // The ranks' parts of batch b, in rank order, are the batch of one process.
            let joined: Vec<i64> = parts.iter().flat_map(|p| p[b].clone()).collect();
            assert_eq!(&joined, batch, "world {world}, batch {b}");
        }
        let mut all: Vec<i64> = parts.iter().flatten().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..53).collect::<Vec<i64>>(), "world {world}");
    }
}
