//! The statistics the report needs beyond the run records: McNemar's exact test between two classifiers
//! on the same examples, Wilson intervals for proportions, and Student-t intervals over seeds.

/// McNemar's exact test on paired predictions: of the examples where exactly one of two classifiers is
/// right, is the split between them more uneven than a fair coin would make it?
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McNemar {
    /// Examples only the first classifier got right.
    pub only_first: u64,
    /// Examples only the second classifier got right.
    pub only_second: u64,
    /// Two-sided exact p-value (binomial, p = 1/2, on the discordant pairs).
    pub p_value: f64,
}

/// `first_right[i]` and `second_right[i]` say whether each classifier labelled example i correctly.
pub fn mcnemar(first_right: &[bool], second_right: &[bool]) -> McNemar {
    assert_eq!(first_right.len(), second_right.len(), "paired predictions");
    let (mut b, mut c) = (0u64, 0u64);
    for (&f, &s) in first_right.iter().zip(second_right) {
        match (f, s) {
            (true, false) => b += 1,
            (false, true) => c += 1,
            _ => {}
        }
    }
    McNemar { only_first: b, only_second: c, p_value: binomial_two_sided(b.min(c), b + c) }
}

/// P(X <= k) * 2 for X ~ Binomial(n, 1/2), capped at 1: the exact two-sided p-value of a count as
/// extreme as `k`. Summed in log space, so large n neither overflows nor underflows.
fn binomial_two_sided(k: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let ln2n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0f64; // ln C(n, 0)
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_choose - ln2n);
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// Wilson score interval (95%) for a proportion `successes / trials`; None without trials.
pub fn wilson(successes: u64, trials: u64) -> Option<(f64, f64)> {
    if trials == 0 {
        return None;
    }
    let (n, z) = (trials as f64, 1.959_963_984_540_054);
    let p = successes as f64 / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95% intervals).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
        2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_hand_computed_binomial_tails() {
        // 1 vs 9 discordant: P(X<=1) for Bin(10, .5) = 11/1024; two-sided 22/1024.
        let first: Vec<bool> = [vec![true; 1], vec![false; 9], vec![true; 5]].concat();
        let second: Vec<bool> = [vec![false; 1], vec![true; 9], vec![true; 5]].concat();
        let m = mcnemar(&first, &second);
        assert_eq!((m.only_first, m.only_second), (1, 9));
        assert!((m.p_value - 22.0 / 1024.0).abs() < 1e-12, "{}", m.p_value);
        // Balanced disagreement is no evidence; no disagreement at all neither.
        assert_eq!(mcnemar(&[true, false], &[false, true]).p_value, 1.0);
        assert_eq!(mcnemar(&[true, true], &[true, true]).p_value, 1.0);
        // Large n stays finite and tiny: 0 vs 2000.
        let p = binomial_two_sided(0, 2000);
        assert!(p > 0.0 && p < 1e-300 || p == 0.0);
        assert!((binomial_two_sided(500, 1000) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn wilson_and_t_intervals() {
        // 8/10: Wilson 95% is [0.4902, 0.9433] (standard tables).
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!((lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3, "{lo} {hi}");
        assert_eq!(wilson(0, 0), None);
        assert!((wilson(10, 10).unwrap().1 - 1.0).abs() < 1e-12);
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(1000), 1.96);
    }
}
