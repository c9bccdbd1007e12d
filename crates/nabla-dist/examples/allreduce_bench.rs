//! The all-reduce cost on this machine, for docs/DISTRIBUTED.md's scaling model:
//!
//!     cargo build --release -p nabla-dist --features mpi --example allreduce_bench
//!     mpirun -n 2 --oversubscribe target/release/examples/allreduce_bench
//!
//! For messages of 1 KB to 64 MB of f32, the median time of 20 `MPI_Allreduce` sums (after 3
//! warm-up calls), and the bus bandwidth `2(p−1)/p · bytes / time` (what a ring all-reduce moves
//! through each link), on rank 0.

#[cfg(feature = "mpi")]
fn main() {
    use nabla_dist::Collective;
    use std::time::Instant;
    let mpi = nabla_dist::mpi::Mpi::init().expect("MPI starts");
    let p = mpi.world_size() as f64;
    if mpi.rank() == 0 {
        println!("{}", mpi.describe());
        println!("{:>12}  {:>12}  {:>14}", "bytes", "median µs", "bus GB/s");
    }
    for exp in [8usize, 12, 16, 18, 20, 22, 24] {
        let n = (1usize << exp) / 4 * 4 / 4; // f32 elements in 2^exp bytes
        let mut buf = vec![1.0f32; n.max(1)];
        let mut times = Vec::new();
        for i in 0..23 {
            mpi.barrier().unwrap();
            let t = Instant::now();
            mpi.all_reduce_sum(&mut buf).unwrap();
            if i >= 3 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let bytes = (buf.len() * 4) as f64;
        if mpi.rank() == 0 {
            let bus = 2.0 * (p - 1.0) / p * bytes / median / 1e9;
            println!("{:>12}  {:>12.1}  {:>14.2}", bytes as usize, median * 1e6, bus);
        }
    }
    mpi.finalize();
}

#[cfg(not(feature = "mpi"))]
fn main() {
    eprintln!("build with --features mpi and run under mpirun");
}
