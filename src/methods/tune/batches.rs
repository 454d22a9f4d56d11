//! How training examples become batches: shuffled under the seed, optionally bucketed by length, and
//! each batch computed as one padded group or as groups of similar lengths.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::params::Bucketing;
use crate::error::ModelError;
use crate::models::Checkpoint;

/// Batches are formed from windows of this many batches' worth of examples, sorted by length.
const BUCKET_WINDOW: usize = 50;

/// Batches of example indices for one epoch. With length bucketing, windows of shuffled examples are
/// sorted by length before being cut into batches, and the batches shuffled: little padding, still
/// random. Otherwise (`false`, `split`) the shuffled examples are cut in order.
pub fn make_batches(lengths: &[usize], batch_size: usize, bucketing: Bucketing, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..lengths.len()).collect();
    idx.shuffle(rng);
    let by_length = bucketing == Bucketing::Length;
    if by_length {
        for window in idx.chunks_mut(batch_size * BUCKET_WINDOW) {
            window.sort_by_key(|&i| lengths[i]); // stable: ties keep their shuffled order
        }
    }
    let mut batches: Vec<Vec<usize>> = idx.chunks(batch_size).map(<[usize]>::to_vec).collect();
    if by_length {
        batches.shuffle(rng);
    }
    batches
}

/// The fixed cost of one more forward and backward pass, in padded tokens' worth of work: what
/// splitting a batch must save in padding to pay for itself. Measured with `bench perf` on SMS (see
/// docs/performance.md).
const GROUP_COST_TOKENS: usize = 64;

/// A batch's examples (given by their lengths) in groups of similar lengths, each padded only to its own
/// longest: contiguous runs of the batch sorted by length, the cut chosen to minimise padded tokens
/// plus GROUP_COST_TOKENS per group (exactly, by dynamic programming over the cut points). Positions
/// are into `lengths`.
pub fn length_groups(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let n = order.len();
    // cost[j]: the cheapest grouping of the j shortest; cut[j]: where its last group starts.
    let (mut cost, mut cut) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for j in 1..=n {
        let longest = lengths[order[j - 1]];
        (cost[j], cut[j]) = (0..j).map(|i| (cost[i] + (j - i) * longest + GROUP_COST_TOKENS, i)).min().expect("j >= 1");
    }
    let mut groups = Vec::new();
    let mut j = n;
    while j > 0 {
        groups.push(order[cut[j]..j].to_vec());
        j = cut[j];
    }
    groups.reverse();
    groups
}

/// One group of a training batch: token ids and mask padded to the group's longest, and the targets.
pub struct Group {
    pub tok: Tensor,
    pub mask: Tensor,
    pub targets: Tensor,
}

/// The groups a batch is computed in: its `length_groups` with `split`, else the whole batch as one.
pub fn groups_of(lengths: &[usize], split: bool) -> Vec<Vec<usize>> {
    if split {
        length_groups(lengths)
    } else {
        vec![(0..lengths.len()).collect()]
    }
}

impl Group {
    /// The examples `seqs` padded to their longest, with their `targets`.
    pub fn new(checkpoint: &Checkpoint, seqs: &[&[u32]], targets: Vec<u32>, device: &Device) -> Result<Group, ModelError> {
        let (tok, mask) = checkpoint.batch(seqs, device)?;
        let targets = Tensor::from_vec(targets, seqs.len(), device)?;
        Ok(Group { tok, mask, targets })
    }
}

/// A batch's tensors, group by group (`groups_of`), each group cut into parts of at most `micro_batch`
/// examples.
pub fn batch_groups(
    checkpoint: &Checkpoint,
    seqs: &[&[u32]],
    targets: &[u32],
    split: bool,
    micro_batch: Option<usize>,
    device: &Device,
) -> Result<Vec<Group>, ModelError> {
    let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
    groups_of(&lengths, split)
        .iter()
        .flat_map(|g| g.chunks(micro_batch.unwrap_or(usize::MAX).max(1)))
        .map(|g| Group::new(checkpoint, &g.iter().map(|&i| seqs[i]).collect::<Vec<_>>(), g.iter().map(|&i| targets[i]).collect(), device))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bucketed_batches_cover_every_example_once_and_pad_less() {
        let lengths: Vec<usize> = (0..1000).map(|i| 5 + (i * 37) % 90).collect();
        let batches = |b: Bucketing| make_batches(&lengths, 16, b, &mut ChaCha8Rng::seed_from_u64(3));
        let bucketed = batches(Bucketing::Length);
        let mut seen: Vec<usize> = bucketed.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let padded = |batches: &[Vec<usize>]| -> usize { batches.iter().map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap()).sum() };
        assert!(padded(&bucketed) * 10 < padded(&batches(Bucketing::Off)) * 7, "bucketing pads much less");
        assert_eq!(batches(Bucketing::Length), bucketed, "deterministic under the seed");
        assert_eq!(batches(Bucketing::Split), batches(Bucketing::Off), "split keeps the random batches");
    }

    /// The cost of every cut of a batch sorted by length into contiguous groups.
    fn all_grouping_costs(sorted: &[usize]) -> Vec<usize> {
        let n = sorted.len();
        (0..1usize << (n - 1))
            .map(|cuts| {
                let (mut cost, mut start) = (0, 0);
                for end in 1..=n {
                    if end == n || cuts >> (end - 1) & 1 == 1 {
                        cost += (end - start) * sorted[end - 1] + GROUP_COST_TOKENS;
                        start = end;
                    }
                }
                cost
            })
            .collect()
    }

    #[test]
    fn length_groups_are_the_cheapest_grouping() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for n in 1..=12 {
            let lengths: Vec<usize> = (0..n).map(|_| 3 + (rand::Rng::gen::<u32>(&mut rng) % 120) as usize).collect();
            let groups = length_groups(&lengths);
            let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "every example once");
            let cost: usize = groups.iter().map(|g| g.len() * g.iter().map(|&i| lengths[i]).max().unwrap() + GROUP_COST_TOKENS).sum();
            let mut sorted = lengths.clone();
            sorted.sort_unstable();
            let best = all_grouping_costs(&sorted).into_iter().min().unwrap();
            assert_eq!(cost, best, "lengths {lengths:?}: {groups:?}");
        }
        // One long example among short ones is worth a pass of its own; equal lengths never are.
        assert_eq!(length_groups(&[10, 10, 120, 10, 10, 10, 10, 10]), vec![vec![0, 1, 3, 4, 5, 6, 7], vec![2]]);
        assert_eq!(length_groups(&[20; 16]).len(), 1);
    }
}
