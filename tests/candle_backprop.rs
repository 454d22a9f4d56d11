//! The rules of the vendored candle-core's backward pass that the patch's second conversion changed
//! (vendor/candle-core/PATCH.md: the first gradient to reach a tensor is stored as it is, not added to
//! zeros), each against its closed form: once with a single consumer (the stored path) and once with
//! several (the added path). They run on the patched crate, which is the one the project builds.
//! `ToDevice`'s rule is not among them: `to_device` onto the tensor's own device records no op, so it
//! needs a second device to be reached.

use anyhow::Result;
use candle_core::{Device, Tensor, Var};

fn vals(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// Within 1e-5: a closed form of several terms adds them in another order than backward does.
fn close(a: &Tensor, b: &Tensor) -> Result<()> {
    let (a, b) = (vals(a)?, vals(b)?);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5, "{a:?} against {b:?}");
    }
    Ok(())
}

fn weights(shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

#[test]
fn matmul_both_sides() -> Result<()> {
    let a = Var::from_tensor(&weights(&[3, 4])?)?;
    let b = Var::from_tensor(&(weights(&[4, 2])? * 0.5)?)?;
    let w = weights(&[3, 2])?;
    let g = (a.matmul(&b)? * &w)?.sum_all()?.backward()?;
    assert_eq!(vals(g.get(&a).unwrap())?, vals(&w.matmul(&b.t()?)?)?);
    assert_eq!(vals(g.get(&b).unwrap())?, vals(&a.t()?.matmul(&w)?)?);
    // a as both operands of a square product, and once more through an add: three contributions.
    let s = Var::from_tensor(&weights(&[3, 3])?)?;
    let w = weights(&[3, 3])?;
    let g = ((s.matmul(&s)? + s.as_tensor())? * &w)?.sum_all()?.backward()?;
    let expected = ((w.matmul(&s.t()?)? + s.t()?.matmul(&w)?)? + &w)?;
    close(g.get(&s).unwrap(), &expected)?;
    Ok(())
}

#[test]
fn cat_twice() -> Result<()> {
    let a = Var::from_tensor(&weights(&[2, 3])?)?;
    let b = Var::from_tensor(&weights(&[1, 3])?)?;
    let w = weights(&[5, 3])?;
    let g = (Tensor::cat(&[a.as_tensor(), b.as_tensor(), a.as_tensor()], 0)? * &w)?.sum_all()?.backward()?;
    assert_eq!(vals(g.get(&a).unwrap())?, vals(&(w.narrow(0, 0, 2)? + w.narrow(0, 3, 2)?)?)?);
    assert_eq!(vals(g.get(&b).unwrap())?, vals(&w.narrow(0, 2, 1)?)?);
    Ok(())
}

#[test]
fn slice_scatter0_sides() -> Result<()> {
    let lhs = Var::from_tensor(&weights(&[4, 2])?)?;
    let rhs = Var::from_tensor(&weights(&[2, 2])?)?;
    let w = weights(&[4, 2])?;
    let g = (lhs.slice_scatter0(&rhs, 1)? * &w)?.sum_all()?.backward()?;
    assert_eq!(vals(g.get(&rhs).unwrap())?, vals(&w.narrow(0, 1, 2)?)?);
    let kept = Tensor::new(&[[1f32, 1.], [0., 0.], [0., 0.], [1., 1.]], &Device::Cpu)?;
    assert_eq!(vals(g.get(&lhs).unwrap())?, vals(&(&w * kept)?)?);
    Ok(())
}

#[test]
fn scatter_add_index_add_and_scatter() -> Result<()> {
    let dev = Device::Cpu;
    // candle's ScatterAdd rule builds its mask with a source of init's shape, so it needs src as wide as
    // init; and it masks init's gradient where the rule of a sum should not (and Scatter's does not
    // where the rule of an overwrite should). Upstream's rules, unchanged by the patch: tested as they are.
    let init = Var::from_tensor(&weights(&[3, 2])?)?;
    let src = Var::from_tensor(&weights(&[3, 2])?)?;
    let idx = Tensor::new(&[[1u32, 1], [0, 1], [1, 0]], &dev)?;
    let w = weights(&[3, 2])?;
    let g = (init.scatter_add(&idx, &src, 1)? * &w)?.sum_all()?.backward()?;
    let mask = Tensor::new(&[[1f32, 0.], [0., 0.], [0., 0.]], &dev)?;
    assert_eq!(vals(g.get(&init).unwrap())?, vals(&(&w * &mask)?)?);
    assert_eq!(vals(g.get(&src).unwrap())?, vals(&w.gather(&idx, 1)?)?);

    let g = (init.scatter(&idx, &src, 1)? * &w)?.sum_all()?.backward()?;
    assert_eq!(vals(g.get(&init).unwrap())?, vals(&w)?);
    assert_eq!(vals(g.get(&src).unwrap())?, vals(&w.gather(&idx, 1)?)?);

    let rows = Tensor::new(&[2u32, 0], &dev)?;
    let src = Var::from_tensor(&weights(&[2, 2])?)?;
    // init through index_add and once more directly: two contributions.
    let g = ((init.index_add(&rows, &src, 0)? + init.as_tensor())? * &w)?.sum_all()?.backward()?;
    assert_eq!(vals(g.get(&init).unwrap())?, vals(&(&w * 2.0)?)?);
    assert_eq!(vals(g.get(&src).unwrap())?, vals(&w.index_select(&rows, 0)?)?);
    Ok(())
}
