//! The definition of the three passes, seven loops deep: the oracle every algorithm is tested
//! against (`sweep.rs`), never dispatched to.
//!
//! forward  y[n, o, oy, ox]  = b[o] + Σ_(c, ki, kj) W[o, c, ki, kj] · x[n, g·C_g + c, iy, ix]
//! δx       δx[n, g·C_g + c, iy, ix] += δy[n, o, oy, ox] · W[o, c, ki, kj]
//! δW       δW[o, c, ki, kj]         += δy[n, o, oy, ox] · x[n, g·C_g + c, iy, ix]
//!
//! with iy = oy·s_h + ki·d_h − p_t, ix = ox·s_w + kj·d_w − p_l, terms outside x dropped (zero
//! padding), and g = o / (C_out / groups) the group of output channel o.

use super::ConvGeometry;
use crate::Float;

/// Calls `f(x index, weight index, output index)` for every term of the sum that defines y.
fn for_each_term(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize)) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    for n in 0..g.n {
        for co in 0..g.c_out {
            let gi = co / cout_g;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let out = ((n * g.c_out + co) * g.oh + oy) * g.ow + ox;
                    for ci in 0..cin_g {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.pad_top as isize;
                                let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xi = ((n * g.c_in + gi * cin_g + ci) * g.h + iy as usize) * g.w + ix as usize;
                                let wi = ((co * cin_g + ci) * g.kh + ki) * g.kw + kj;
                                f(xi, wi, out);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y = W ⋆ x + b.
pub fn forward<T: Float>(x: &[T], weight: &[T], bias: Option<&[T]>, g: &ConvGeometry) -> Vec<T> {
    let l = g.oh * g.ow;
    let mut y: Vec<T> = (0..g.n * g.c_out * l)
        .map(|i| bias.map_or(T::zero(), |b| b[(i / l) % g.c_out]))
        .collect();
    for_each_term(g, |xi, wi, yi| y[yi] += x[xi] * weight[wi]);
    y
}

/// δx: each term's δy spread back onto the input it read.
pub fn backward_input<T: Float>(dy: &[T], weight: &[T], g: &ConvGeometry) -> Vec<T> {
    let mut dx = vec![T::zero(); g.n * g.c_in * g.h * g.w];
    for_each_term(g, |xi, wi, yi| dx[xi] += dy[yi] * weight[wi]);
    dx
}

/// δW: each term's δy times the input it read.
pub fn backward_weight<T: Float>(x: &[T], dy: &[T], g: &ConvGeometry) -> Vec<T> {
    let mut dw = vec![T::zero(); g.c_out * g.cin_g() * g.kh * g.kw];
    for_each_term(g, |xi, wi, yi| dw[wi] += dy[yi] * x[xi]);
    dw
}
