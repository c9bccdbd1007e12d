use nabla_core::{DType, Tensor};
fn main() {
    nabla_core::runtime::keep_freed_memory();
    for shape in [[128usize, 6, 28, 28], [128, 16, 10, 10]] {
        let g = Tensor::randn(shape.to_vec(), DType::F32).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..100 {
            g.sum(&[0, 2, 3], false).unwrap();
        }
        println!("{shape:?} sum over [0,2,3]: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
        let t = std::time::Instant::now();
        for _ in 0..100 {
            g.relu().unwrap();
        }
        println!("{shape:?} relu: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
        let t = std::time::Instant::now();
        for _ in 0..100 {
            g.contiguous_copy().unwrap();
        }
        println!("{shape:?} copy: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
    }
}
