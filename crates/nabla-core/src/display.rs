//! A compact `Display`: shape, dtype, and the values, elided in the middle of long dimensions.

use crate::Tensor;

const EDGE: usize = 3;

fn fmt_value(v: f64, is_int: bool) -> String {
    if is_int {
        format!("{}", v as i64)
    } else if v == v.trunc() && v.abs() < 1e6 {
        format!("{v:.1}")
    } else if v.abs() >= 1e-3 && v.abs() < 1e6 {
        format!("{v:.4}")
    } else {
        format!("{v:.4e}")
    }
}

fn write_dim(out: &mut String, values: &[f64], dims: &[usize], depth: usize, is_int: bool) {
    if dims.is_empty() {
        out.push_str(&fmt_value(values[0], is_int));
        return;
    }
    let n = dims[0];
    let step: usize = dims[1..].iter().product();
    out.push('[');
    let show: Vec<Option<usize>> = if n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain([None])
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    for (k, i) in show.iter().enumerate() {
        if k > 0 {
            out.push(',');
            if dims.len() > 1 {
                out.push('\n');
                out.push_str(&" ".repeat(depth + 1));
            } else {
                out.push(' ');
            }
        }
        match i {
            Some(i) => write_dim(out, &values[i * step..(i + 1) * step], &dims[1..], depth + 1, is_int),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = match self.to_vec_f64() {
            Ok(v) => v,
            Err(e) => {
                return write!(
                    f,
                    "<values unavailable: {e}>\nTensor{} {:?}",
                    self.shape(),
                    self.dtype()
                );
            }
        };
        let mut s = String::new();
        if self.elem_count() == 0 {
            s.push_str("[]");
        } else {
            write_dim(&mut s, &values, self.dims(), 0, self.dtype() == crate::DType::I64);
        }
        write!(f, "{s}\nTensor{} {:?}", self.shape(), self.dtype())
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn display_is_compact() {
        let t = Tensor::arange(0., 6., 1., DType::F32).unwrap().reshape((2, 3)).unwrap();
        assert_eq!(t.to_string(), "[[0.0, 1.0, 2.0],\n [3.0, 4.0, 5.0]]\nTensor[2, 3] F32");
        let long = Tensor::arange(0., 10., 1., DType::I64).unwrap();
        assert_eq!(long.to_string(), "[0, 1, 2, ..., 7, 8, 9]\nTensor[10] I64");
    }
}
