//! Sharding: the runs of a sweep split into N parts that processes compute alike without talking to
//! each other (Slurm array tasks, say), so that each executes its own part.
//!
//! The parts depend only on the run ids and on costs read from records that the sweep itself does not
//! write (earlier runs of the same configurations, e.g. under another code version), so a shard that
//! starts after others have finished runs still computes the same parts. Without costs, the ids in sorted
//! order are dealt out in turn: the parts differ in size by at most one. With costs, the longest run goes
//! first to the part with the least work so far (longest processing time first); a run without a cost
//! counts as the median of those with one. Shards sharing a runs directory rely on the store's claims as
//! well, so an overlap between two sweeps' shards never executes a run twice.

use std::collections::{BTreeSet, HashMap};

/// `I/N`: the I-th (from 1) of N parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// The most parts a sweep can be cut into.
pub const MAX_SHARDS: usize = 100_000;

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = || format!("{s:?}: a shard is I/N, the I-th of N parts, with 1 ≤ I ≤ N ≤ {MAX_SHARDS} (e.g. 2/8)");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let (index, count): (usize, usize) = (i.trim().parse().map_err(|_| usage())?, n.trim().parse().map_err(|_| usage())?);
        if index == 0 || index > count || count > MAX_SHARDS {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which part (0-based) each run id falls in. `costs` gives a run's expected seconds where known.
pub fn assign(ids: &[&str], costs: &HashMap<String, f64>, count: usize) -> HashMap<String, usize> {
    let ids: BTreeSet<&str> = ids.iter().copied().collect();
    let known: Vec<f64> = ids.iter().filter_map(|id| costs.get(*id)).copied().filter(|c| c.is_finite() && *c >= 0.0).collect();
    if known.is_empty() {
        return ids.iter().enumerate().map(|(i, id)| (id.to_string(), i % count)).collect();
    }
    let mut sorted = known.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let cost = |id: &str| costs.get(id).copied().filter(|c| c.is_finite() && *c >= 0.0).unwrap_or(median);
    let mut order: Vec<&str> = ids.into_iter().collect();
    order.sort_by(|a, b| cost(b).total_cmp(&cost(a)).then_with(|| a.cmp(b)));
    let mut load = vec![(0.0f64, 0usize); count];
    let mut out = HashMap::new();
    for id in order {
        let part = (0..count).min_by(|&a, &b| load[a].0.total_cmp(&load[b].0).then(load[a].1.cmp(&load[b].1)).then(a.cmp(&b))).expect("count ≥ 1");
        load[part].0 += cost(id);
        load[part].1 += 1;
        out.insert(id.to_string(), part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_ids(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<String> {
        (0..n).map(|_| format!("{:016x}", rng.gen::<u64>())).collect()
    }

    #[test]
    fn shards_partition_the_runs_and_differ_by_at_most_one_without_costs() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let n_ids = rng.gen_range(0..300);
            let ids = random_ids(&mut rng, n_ids);
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let count = rng.gen_range(1..=64);
            let parts = assign(&refs, &HashMap::new(), count);
            // Every id in exactly one part, and the same answer however the ids are ordered.
            assert_eq!(parts.len(), ids.len());
            let mut shuffled = refs.clone();
            shuffled.reverse();
            assert_eq!(assign(&shuffled, &HashMap::new(), count), parts);
            let mut sizes = vec![0usize; count];
            for &p in parts.values() {
                assert!(p < count);
                sizes[p] += 1;
            }
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "sizes {sizes:?}");
        }
    }

    #[test]
    fn known_costs_balance_the_work() {
        let ids: Vec<String> = (0..10).map(|i| format!("{i:016x}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        // One long run and nine short ones: the long one gets a part to itself.
        let costs: HashMap<String, f64> = ids.iter().enumerate().map(|(i, id)| (id.clone(), if i == 3 { 90.0 } else { 10.0 })).collect();
        let parts = assign(&refs, &costs, 2);
        let alone: Vec<&String> = parts.keys().filter(|id| parts[*id] == parts[&ids[3]]).collect();
        assert_eq!(alone, vec![&ids[3]]);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "1/1000000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
