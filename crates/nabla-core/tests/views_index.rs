//! Views (reshape, permute, transpose, narrow, slice with steps, broadcast, squeeze/unsqueeze,
//! flatten) and indexing (cat, stack, index_select, gather, split).

mod common;

use common::*;
use nabla_core::{DType, Tensor};

#[test]
fn contiguous_copies_only_strided_tensors() {
    let x = range(6, (2, 3));
    assert!(x.is_contiguous());
    assert!(x.contiguous().unwrap().same_storage(&x));
    let t = x.t().unwrap();
    assert!(!t.is_contiguous());
    assert!(t.same_storage(&x));
    let c = t.contiguous().unwrap();
    assert!(c.is_contiguous() && !c.same_storage(&x));
    assert_tensor(&c, &[3, 2], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
}

#[test]
fn reshape_and_flatten() {
    let x = range(6, (6,));
    let r = x.reshape((3, 2)).unwrap();
    assert_tensor(&r, &[3, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(r.same_storage(&x), "reshaping a contiguous tensor is a view");
    assert_eq!(
        r.to_vec2::<f64>().unwrap(),
        vec![vec![0.0, 1.0], vec![2.0, 3.0], vec![4.0, 5.0]]
    );
    // Of a transposed tensor: the transposed order, copied.
    let t = range(6, (2, 3)).t().unwrap();
    assert_tensor(&t.reshape((6,)).unwrap(), &[6], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_is_err(x.reshape(()));
    assert_tensor(&t64(&[7.0], (1, 1)).reshape(()).unwrap(), &[], &[7.0]);
    assert_err(
        x.reshape((4,)),
        "reshape: cannot reshape [6] (6 elements) into [4] (4 elements)",
    );

    let y = range(24, (2, 3, 4));
    assert_eq!(y.flatten(0, 1).unwrap().dims(), &[6, 4]);
    assert_eq!(y.flatten(1, 2).unwrap().dims(), &[2, 12]);
    assert_eq!(y.flatten(1, -1).unwrap().dims(), &[2, 12]);
    assert_eq!(y.flatten_from(1).unwrap().dims(), &[2, 12]);
    assert_eq!(y.flatten(2, 2).unwrap().dims(), &[2, 3, 4]);
    assert_tensor(&y.flatten(0, -1).unwrap(), &[24], &vals(&y));
    assert_tensor(&Tensor::scalar(3.0, DType::F64).flatten(0, 0).unwrap(), &[1], &[3.0]);
    assert_err(y.flatten(2, 1), "flatten: start dimension 2 is after end dimension 1");
    assert_err(
        y.flatten(0, 3),
        "flatten: dimension 3 out of range for shape [2, 3, 4] (rank 3)",
    );
    // Empty tensors reshape too.
    let e = Tensor::zeros((2, 0), DType::F32);
    assert_eq!(e.reshape((0, 5)).unwrap().dims(), &[0, 5]);
    assert_eq!(e.flatten(0, 1).unwrap().dims(), &[0]);
}

#[test]
fn permute_and_transpose() {
    // x[i][j][k] = 12i + 4j + k; permuted [2, 0, 1]: out[k][i][j].
    let y = range(24, (2, 3, 4)).permute(&[2, 0, 1]).unwrap();
    let exp: Vec<f64> = (0..4)
        .flat_map(|k| (0..2).flat_map(move |i| (0..3).map(move |j| (12 * i + 4 * j + k) as f64)))
        .collect();
    assert_tensor(&y, &[4, 2, 3], &exp);
    assert_eq!(&exp[..6], &[0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    let x = range(6, (2, 3));
    let t = [0.0, 3.0, 1.0, 4.0, 2.0, 5.0];
    assert_tensor(&x.transpose(0, 1).unwrap(), &[3, 2], &t);
    assert_tensor(&x.transpose(-1, -2).unwrap(), &[3, 2], &t);
    assert_tensor(&x.t().unwrap(), &[3, 2], &t);
    assert_tensor(&x.t().unwrap().t().unwrap(), &[2, 3], &vals(&x));
    assert_tensor(&x.transpose(1, 1).unwrap(), &[2, 3], &vals(&x));
    assert_err(
        x.permute(&[0, 0]),
        "permute: [0, 0] is not a permutation of the 2 dimensions of [2, 3]",
    );
    assert_err(
        x.permute(&[0, 2]),
        "permute: [0, 2] is not a permutation of the 2 dimensions of [2, 3]",
    );
    assert_err(
        x.permute(&[0]),
        "permute: [0] is not a permutation of the 2 dimensions of [2, 3]",
    );
    assert_err(
        x.transpose(0, 2),
        "transpose: dimension 2 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        range(24, (2, 3, 4)).t(),
        "t: expected a 2-D tensor, got shape [2, 3, 4]",
    );
}

#[test]
fn narrow_and_split() {
    let x = range(12, (3, 4));
    let n = x.narrow(1, 1, 2).unwrap();
    assert_tensor(&n, &[3, 2], &[1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
    assert!(n.same_storage(&x));
    assert_tensor(&x.narrow(0, 2, 1).unwrap(), &[1, 4], &[8.0, 9.0, 10.0, 11.0]);
    assert_tensor(&x.narrow(-1, 3, 1).unwrap(), &[3, 1], &[3.0, 7.0, 11.0]);
    assert_eq!(x.narrow(0, 3, 0).unwrap().dims(), &[0, 4]);
    // A narrowed view of a narrowed view.
    assert_tensor(
        &n.narrow(0, 1, 2).unwrap().narrow(1, 1, 1).unwrap(),
        &[2, 1],
        &[6.0, 10.0],
    );
    let l = leaf(&vals(&x), (3, 4));
    let w = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (3, 2));
    let g = l
        .narrow(1, 1, 2)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        &grad(&g, &l),
        &[0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 5.0, 6.0, 0.0],
        0.0,
    );
    assert_err(
        x.narrow(1, 3, 2),
        "narrow: range 3..5 out of bounds for dimension 1 of size 4 in [3, 4]",
    );
    assert_is_err(x.narrow(1, usize::MAX, 2));
    assert_is_err(x.narrow(1, 1, usize::MAX));
    assert_is_err(x.narrow(2, 0, 1));

    let parts = range(5, (5,)).split(2, 0).unwrap();
    assert_eq!(parts.len(), 3);
    assert_tensor(&parts[0], &[2], &[0.0, 1.0]);
    assert_tensor(&parts[1], &[2], &[2.0, 3.0]);
    assert_tensor(&parts[2], &[1], &[4.0]);
    let cols = x.split(3, 1).unwrap();
    assert_tensor(&cols[0], &[3, 3], &[0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 8.0, 9.0, 10.0]);
    assert_tensor(&cols[1], &[3, 1], &[3.0, 7.0, 11.0]);
    let l = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0], (5,));
    let p = l.split(2, 0).unwrap();
    let loss = p[0]
        .sum_all()
        .unwrap()
        .add(&p[2].mul_scalar(3.0).unwrap().sum_all().unwrap())
        .unwrap();
    assert_close(&grad(&loss.backward().unwrap(), &l), &[1.0, 1.0, 0.0, 0.0, 3.0], 0.0);
    assert_err(x.split(0, 0), "split: size must be positive");
    assert_is_err(x.split(2, 2));
}

#[test]
fn slice_with_steps() {
    let x = range(12, (3, 4));
    // x[:, 1::2] and x[::2, :3:2] (PyTorch's slicing): views.
    let s = x.slice(1, 1, usize::MAX, 2).unwrap();
    assert_tensor(&s, &[3, 2], &[1.0, 3.0, 5.0, 7.0, 9.0, 11.0]);
    assert!(s.same_storage(&x));
    assert_tensor(
        &x.slice(0, 0, 3, 2).unwrap().slice(1, 0, 3, 2).unwrap(),
        &[2, 2],
        &[0.0, 2.0, 8.0, 10.0],
    );
    // A slice of a transposed view: x.t()[1:, ::3].
    assert_tensor(
        &x.t().unwrap().slice(0, 1, 4, 1).unwrap().slice(1, 0, 3, 3).unwrap(),
        &[3, 1],
        &[1.0, 2.0, 3.0],
    );
    // Bounds clamp as in PyTorch: x[:, 5:] and x[:, 3:1] are empty, x[:, 2:100] two columns.
    assert_eq!(x.slice(1, 5, usize::MAX, 1).unwrap().dims(), &[3, 0]);
    assert_eq!(x.slice(1, 3, 1, 1).unwrap().dims(), &[3, 0]);
    assert_eq!(x.slice(1, 2, 100, 1).unwrap().dims(), &[3, 2]);
    assert_err(x.slice(1, 0, 4, 0), "slice: step must be positive");
    // A step past the end keeps the first element (no overflow of the stride).
    assert_tensor(&x.slice(1, 1, 4, usize::MAX).unwrap(), &[3, 1], &[1.0, 5.0, 9.0]);
    assert_tensor(
        &x.slice(0, 2, usize::MAX, usize::MAX).unwrap().contiguous().unwrap(),
        &[1, 4],
        &[8.0, 9.0, 10.0, 11.0],
    );
    assert_is_err(x.slice(2, 0, 1, 1));
    // δx: δ at the kept elements, zeros elsewhere.
    let l = leaf(&vals(&x), (3, 4));
    let w = t64(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    let loss = l.slice(0, 0, 3, 2).unwrap().slice(1, 1, 4, 2).unwrap().mul(&w).unwrap();
    let g = loss.sum_all().unwrap().backward().unwrap();
    assert_close(
        &grad(&g, &l),
        &[0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 4.0],
        0.0,
    );
    // Copying into a stepped view writes only its elements (the backward pass's path).
    let z = Tensor::zeros((2, 5), DType::F64);
    z.slice(1, 1, 5, 2)
        .unwrap()
        .copy_(&t64(&[1.0, 2.0, 3.0, 4.0], (2, 2)))
        .unwrap();
    assert_tensor(&z, &[2, 5], &[0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0, 0.0]);
}

#[test]
fn broadcast_unsqueeze_squeeze() {
    let r = t64(&[1.0, 2.0, 3.0], (3,));
    let b = r.broadcast_to((2, 3)).unwrap();
    assert_tensor(&b, &[2, 3], &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    assert!(b.same_storage(&r) && !b.is_contiguous());
    let c = r.reshape((3, 1)).unwrap().expand((3, 2)).unwrap();
    assert_tensor(&c, &[3, 2], &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    assert_tensor(
        &r.broadcast_to((2, 1, 3)).unwrap(),
        &[2, 1, 3],
        &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
    );
    assert_err(r.broadcast_to((2, 4)), "broadcast_to: cannot broadcast [3] to [2, 4]");
    assert_err(b.broadcast_to((3,)), "broadcast_to: cannot broadcast [2, 3] to [3]");
    let l = leaf(&[1.0, 2.0, 3.0], (3,));
    let w = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let g = l
        .broadcast_to((2, 3))
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &l), &[5.0, 7.0, 9.0], 0.0);

    let x = range(6, (2, 3));
    for (dim, dims) in [
        (0, [1, 2, 3]),
        (1, [2, 1, 3]),
        (2, [2, 3, 1]),
        (-1, [2, 3, 1]),
        (-3, [1, 2, 3]),
    ] {
        let u = x.unsqueeze(dim).unwrap();
        assert_tensor(&u, &dims, &vals(&x));
        assert!(u.same_storage(&x));
    }
    // unsqueeze of a transposed view keeps the transposed order.
    assert_tensor(
        &x.t().unwrap().unsqueeze(1).unwrap(),
        &[3, 1, 2],
        &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0],
    );
    assert_err(
        x.unsqueeze(3),
        "unsqueeze: dimension 3 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        x.unsqueeze(-4),
        "unsqueeze: dimension -4 out of range for shape [2, 3] (rank 2)",
    );
    let s = range(6, (2, 1, 3));
    assert_tensor(&s.squeeze(1).unwrap(), &[2, 3], &vals(&x));
    assert_tensor(&s.squeeze(-2).unwrap(), &[2, 3], &vals(&x));
    assert_tensor(&t64(&[4.0], (1,)).squeeze(0).unwrap(), &[], &[4.0]);
    assert_err(s.squeeze(0), "squeeze: dimension 0 of [2, 1, 3] has size 2, not 1");
    assert_err(
        s.squeeze(3),
        "squeeze: dimension 3 out of range for shape [2, 1, 3] (rank 3)",
    );
}

#[test]
fn view_gradchecks() {
    let x = t64(
        &[0.3, -1.2, 2.5, 0.9, -0.4, 1.7, 1.1, -2.2, 0.6, 0.05, 1.4, -0.8],
        (2, 3, 2),
    );
    let xs = std::slice::from_ref(&x);
    check(|t| t[0].transpose(0, 2)?.contiguous(), xs);
    check(|t| t[0].reshape((3, 4)), xs);
    check(|t| t[0].transpose(0, 1)?.reshape((12,)), xs);
    check(|t| t[0].permute(&[1, 2, 0]), xs);
    check(|t| t[0].transpose(-1, 0), xs);
    check(|t| t[0].reshape((6, 2))?.t(), xs);
    check(|t| t[0].narrow(1, 1, 2), xs);
    check(|t| t[0].narrow(1, 1, 2)?.narrow(2, 1, 1), xs);
    check(|t| t[0].slice(1, 0, 3, 2), xs);
    check(|t| t[0].transpose(0, 2)?.slice(1, 1, 3, 2)?.slice(2, 0, 2, 1), xs);
    check(|t| t[0].narrow(0, 1, 1)?.broadcast_to((4, 3, 2)), xs);
    check(|t| t[0].unsqueeze(1)?.expand((2, 5, 3, 2)), xs);
    check(|t| t[0].unsqueeze(-1), xs);
    check(|t| t[0].narrow(1, 0, 1)?.squeeze(1), xs);
    check(|t| t[0].flatten(0, 1), xs);
    check(|t| t[0].transpose(0, 1)?.flatten_from(1), xs);
    check(|t| Ok(t[0].split(2, 1)?[1].clone()), xs);
    check(|t| t[0].split(1, 2)?[0].mul(&t[0].split(1, 2)?[1]), xs);
}

#[test]
fn cat_and_stack() {
    let a = t64(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    let b = t64(&[5.0, 6.0], (1, 2));
    let c = t64(&[7.0, 8.0], (2, 1));
    assert_tensor(
        &Tensor::cat(&[&a, &b], 0).unwrap(),
        &[3, 2],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    );
    assert_tensor(
        &Tensor::cat(&[&a, &c], 1).unwrap(),
        &[2, 3],
        &[1.0, 2.0, 7.0, 3.0, 4.0, 8.0],
    );
    assert_tensor(
        &Tensor::cat(&[&c, &a, &c], -1).unwrap(),
        &[2, 4],
        &[7.0, 1.0, 2.0, 7.0, 8.0, 3.0, 4.0, 8.0],
    );
    assert_tensor(&Tensor::cat(&[&a], 0).unwrap(), &[2, 2], &vals(&a));
    // Strided pieces: a transposed tensor and a narrowed one.
    let at = a.t().unwrap(); // [[1, 3], [2, 4]]
    let bn = t64(&[0.0, 5.0, 6.0, 0.0], (1, 4)).narrow(1, 1, 2).unwrap();
    assert_tensor(
        &Tensor::cat(&[&at, &bn], 0).unwrap(),
        &[3, 2],
        &[1.0, 3.0, 2.0, 4.0, 5.0, 6.0],
    );
    // An empty piece adds nothing.
    let e = Tensor::zeros((0, 2), DType::F64);
    assert_tensor(&Tensor::cat(&[&a, &e], 0).unwrap(), &[2, 2], &vals(&a));
    let i = Tensor::cat(&[&ti64(&[1, 2], (2,)), &ti64(&[3], (1,))], 0).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 2, 3]);

    let (la, lb) = (leaf(&vals(&a), (2, 2)), leaf(&vals(&b), (1, 2)));
    let w = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (3, 2));
    let g = Tensor::cat(&[&la, &lb], 0)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &la), &[1.0, 2.0, 3.0, 4.0], 0.0);
    assert_close(&grad(&g, &lb), &[5.0, 6.0], 0.0);
    // The same tensor twice: both slices' gradients add up.
    let g = Tensor::cat(&[&lb, &lb], 0)
        .unwrap()
        .mul(&t64(&[1.0, 2.0, 3.0, 4.0], (2, 2)))
        .unwrap();
    assert_close(&grad(&g.sum_all().unwrap().backward().unwrap(), &lb), &[4.0, 6.0], 0.0);

    assert_err(
        Tensor::cat(&[&a, &b], 1),
        "cat: [2, 2] and [1, 2] differ outside dimension 1",
    );
    assert_err(
        Tensor::cat(&[&a, &t64(&[1.0, 2.0], (2,))], 0),
        "cat: [2, 2] and [2] differ outside dimension 0",
    );
    assert_err(Tensor::cat(&[], 0), "cat: needs at least one tensor");
    assert_err(
        Tensor::cat(&[&a, &a], 2),
        "cat: dimension 2 out of range for shape [2, 2] (rank 2)",
    );
    assert_err(
        Tensor::cat(&[&a, &a.to_dtype(DType::F32).unwrap()], 0),
        "cat: dtype mismatch: lhs F64, rhs F32",
    );

    let (p, q) = (t64(&[1.0, 2.0], (2,)), t64(&[3.0, 4.0], (2,)));
    assert_tensor(&Tensor::stack(&[&p, &q], 0).unwrap(), &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_tensor(&Tensor::stack(&[&p, &q], 1).unwrap(), &[2, 2], &[1.0, 3.0, 2.0, 4.0]);
    assert_tensor(
        &Tensor::stack(&[&p, &q, &p], -1).unwrap(),
        &[2, 3],
        &[1.0, 3.0, 1.0, 2.0, 4.0, 2.0],
    );
    assert_tensor(
        &Tensor::stack(&[&a, &a], 1).unwrap(),
        &[2, 2, 2],
        &[1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0],
    );
    let (lp, lq) = (leaf(&[1.0, 2.0], (2,)), leaf(&[3.0, 4.0], (2,)));
    let w = t64(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    let g = Tensor::stack(&[&lp, &lq], 1)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &lp), &[1.0, 3.0], 0.0);
    assert_close(&grad(&g, &lq), &[2.0, 4.0], 0.0);
    assert_err(
        Tensor::stack(&[&p, &b], 0),
        "stack: all tensors must have one shape, got [2] and [1, 2]",
    );
    assert_err(Tensor::stack(&[], 0), "stack: needs at least one tensor");
    assert_is_err(Tensor::stack(&[&p, &q], 2));
}

#[test]
fn index_select() {
    let x = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], (3, 3));
    let rows = x.index_select(0, &ti64(&[2, 0, 2], (3,))).unwrap();
    assert_tensor(&rows, &[3, 3], &[7.0, 8.0, 9.0, 1.0, 2.0, 3.0, 7.0, 8.0, 9.0]);
    let cols = x.index_select(1, &ti64(&[1, 1], (2,))).unwrap();
    assert_tensor(&cols, &[3, 2], &[2.0, 2.0, 5.0, 5.0, 8.0, 8.0]);
    assert_tensor(
        &x.index_select(-1, &ti64(&[-1], (1,))).unwrap(),
        &[3, 1],
        &[3.0, 6.0, 9.0],
    );
    assert_eq!(x.index_select(0, &ti64(&[], (0,))).unwrap().dims(), &[0, 3]);
    // Of a transposed view: selects columns of the base.
    let xt = x.t().unwrap();
    assert_tensor(
        &xt.index_select(0, &ti64(&[1], (1,))).unwrap(),
        &[1, 3],
        &[2.0, 5.0, 8.0],
    );
    // Of contiguous rows with an offset: rows 1..3 of the 3×3.
    let rows = x.narrow(0, 1, 2).unwrap(); // [[4, 5, 6], [7, 8, 9]]
    assert_tensor(
        &rows.index_select(1, &ti64(&[2, 0], (2,))).unwrap(),
        &[2, 2],
        &[6.0, 4.0, 9.0, 7.0],
    );
    assert_tensor(&rows.gather(1, &ti64(&[1, 2], (2, 1))).unwrap(), &[2, 1], &[5.0, 9.0]);
    assert_tensor(
        &Tensor::cat(&[&rows, &rows.narrow(0, 1, 1).unwrap()], 0).unwrap(),
        &[3, 3],
        &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 7.0, 8.0, 9.0],
    );
    // i64 data (embedding ids, labels).
    let ids = ti64(&[10, 20, 30], (3,))
        .index_select(0, &ti64(&[2, 2, 0], (3,)))
        .unwrap();
    assert_eq!(ids.to_vec::<i64>().unwrap(), vec![30, 30, 10]);

    let l = leaf(&vals(&x), (3, 3));
    let g = l
        .index_select(0, &ti64(&[2, 0, 2], (3,)))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &l), &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0], 0.0);
    let w = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (3, 2));
    let g = l
        .index_select(1, &ti64(&[2, 0], (2,)))
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &l), &[2.0, 0.0, 1.0, 4.0, 0.0, 3.0, 6.0, 0.0, 5.0], 0.0);

    assert_err(
        x.index_select(0, &ti64(&[3], (1,))),
        "index_select: index 3 out of range for dimension 0 of size 3",
    );
    assert_err(
        x.index_select(0, &ti64(&[-4], (1,))),
        "index_select: index -4 out of range for dimension 0 of size 3",
    );
    assert_err(
        x.index_select(0, &t64(&[1.0], (1,))),
        "index_select: indices must be i64, got F64",
    );
    assert_err(
        x.index_select(0, &ti64(&[1, 2], (1, 2))),
        "index_select: indices must be 1-D, got shape [1, 2]",
    );
    assert_err(
        x.index_select(2, &ti64(&[1], (1,))),
        "index_select: dimension 2 out of range for shape [3, 3] (rank 2)",
    );
}

#[test]
fn gather() {
    let x = t64(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    // torch.gather's example: out[i][j] = x[i][index[i][j]].
    assert_tensor(
        &x.gather(1, &ti64(&[0, 0, 1, 0], (2, 2))).unwrap(),
        &[2, 2],
        &[1.0, 1.0, 4.0, 3.0],
    );
    // dim 0: out[i][j] = x[index[i][j]][j].
    assert_tensor(
        &x.gather(0, &ti64(&[0, 1, 1, 0], (2, 2))).unwrap(),
        &[2, 2],
        &[1.0, 4.0, 3.0, 2.0],
    );
    // A smaller index, and one longer than the input along `dim`.
    let y = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], (3, 3));
    assert_tensor(&y.gather(1, &ti64(&[2, 0], (1, 2))).unwrap(), &[1, 2], &[3.0, 1.0]);
    assert_tensor(
        &y.gather(1, &ti64(&[2, 2, 2, 1, 0, 0, 1, 1], (2, 4))).unwrap(),
        &[2, 4],
        &[3.0, 3.0, 3.0, 2.0, 4.0, 4.0, 5.0, 5.0],
    );
    // Picking the label's log-probability, as the NLL loss does.
    assert_tensor(
        &y.gather(1, &ti64(&[1, 2, 0], (3, 1))).unwrap(),
        &[3, 1],
        &[2.0, 6.0, 7.0],
    );
    // Of a transposed view: y.t() = [[1, 4, 7], [2, 5, 8], [3, 6, 9]].
    assert_tensor(
        &y.t().unwrap().gather(1, &ti64(&[2, 0, 1], (3, 1))).unwrap(),
        &[3, 1],
        &[7.0, 2.0, 6.0],
    );

    let l = leaf(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    let g = l
        .gather(1, &ti64(&[0, 0, 1, 0], (2, 2)))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &l), &[2.0, 0.0, 1.0, 1.0], 0.0);
    let w = t64(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    let g = l
        .gather(0, &ti64(&[1, 1, 1, 0], (2, 2)))
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &l), &[0.0, 4.0, 4.0, 2.0], 0.0);

    assert_err(
        x.gather(1, &ti64(&[2, 0, 0, 0], (2, 2))),
        "gather: index 2 out of range for dimension 1 of size 2",
    );
    assert_err(
        x.gather(1, &ti64(&[0, 0], (2,))),
        "gather: index [2] does not fit input [2, 2] along dimension 1",
    );
    assert_err(
        x.gather(1, &ti64(&[0, 0, 0], (3, 1))),
        "gather: index [3, 1] does not fit input [2, 2] along dimension 1",
    );
    assert_is_err(x.gather(1, &t64(&[0.0, 0.0, 0.0, 0.0], (2, 2))));
    assert_is_err(x.gather(2, &ti64(&[0, 0, 0, 0], (2, 2))));
}

#[test]
fn index_gradchecks() {
    let a = t64(&[0.3, -1.2, 2.5, 0.9, -0.4, 1.7], (2, 3));
    let b = t64(&[1.1, -2.2, 0.6], (1, 3));
    let c = t64(&[0.05, 1.4, -0.8, 0.7], (2, 2));
    check(|t| Tensor::cat(&[&t[0], &t[1]], 0), &[a.clone(), b.clone()]);
    check(|t| Tensor::cat(&[&t[0], &t[1], &t[0]], -1), &[a.clone(), c.clone()]);
    check(|t| Tensor::cat(&[&t[0].t()?, &t[1].t()?], 1), &[a.clone(), b.clone()]);
    check(|t| Tensor::stack(&[&t[0], &t[0].sqr()?], 1), std::slice::from_ref(&a));
    check(|t| Tensor::stack(&[&t[0], &t[1]], 0), &[b.clone(), b.exp().unwrap()]);
    let idx = ti64(&[2, 0, 2, 1], (4,));
    check(|t| t[0].index_select(1, &idx), std::slice::from_ref(&a));
    check(|t| t[0].t()?.index_select(0, &idx), std::slice::from_ref(&a));
    let gidx = ti64(&[2, 2, 0, 1, 1, 0], (2, 3));
    check(|t| t[0].gather(1, &gidx), std::slice::from_ref(&a));
    check(
        |t| t[0].gather(0, &ti64(&[1, 0, 1, 1, 1, 0], (2, 3))),
        std::slice::from_ref(&a),
    );
    check(
        |t| t[0].t()?.gather(1, &ti64(&[1, 0, 1], (3, 1))),
        std::slice::from_ref(&a),
    );
}

#[test]
fn strided_inputs_match_contiguous_copies() {
    let v = [0.5, 1.25, 2.0, 0.75, 1.5, 2.5];
    check_views(v, |t| t.contiguous());
    check_views(v, |t| t.reshape((3, 2)));
    check_views(v, |t| t.permute(&[1, 0]));
    check_views(v, |t| t.t()?.sqr());
    check_views(v, |t| t.narrow(1, 1, 2));
    check_views(v, |t| t.broadcast_to((4, 2, 3)));
    check_views(v, |t| t.unsqueeze(1)?.mul_scalar(2.0));
    check_views(v, |t| t.unsqueeze(0)?.squeeze(0));
    check_views(v, |t| t.flatten(0, 1));
    check_views(v, |t| Tensor::cat(&[t, &t.sqr()?], 1));
    check_views(v, |t| Tensor::stack(&[t, t], 0));
    check_views(v, |t| t.index_select(1, &ti64(&[2, 0, 2], (3,))));
    check_views(v, |t| t.index_select(0, &ti64(&[1, 1, 0], (3,))));
    check_views(v, |t| t.gather(1, &ti64(&[2, 1, 1, 0, 0, 2], (2, 3))));
    check_views(v, |t| Ok(t.split(2, 1)?[0].clone()));
}
