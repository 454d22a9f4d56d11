//! The training texts' vocabulary as word2vec builds it: words of at least `min_count` occurrences,
//! ordered by count (ties by the word, so the order never depends on a hash), with what training draws
//! from it: each word's chance of being kept under frequent-word down-sampling, and the unigram^0.75
//! distribution negatives are drawn from.

use rustc_hash::FxHashMap;

/// The words, most frequent first, and their counts in the training texts.
pub struct Vocabulary {
    pub words: Vec<String>,
    pub counts: Vec<u64>,
    pub index: FxHashMap<String, u32>,
}

impl Vocabulary {
    /// The words of `texts` (already tokenized) seen at least `min_count` times.
    pub fn build(texts: &[Vec<String>], min_count: u64) -> Vocabulary {
        let mut counts: FxHashMap<&str, u64> = FxHashMap::default();
        for w in texts.iter().flatten() {
            *counts.entry(w.as_str()).or_default() += 1;
        }
        let mut kept: Vec<(&str, u64)> = counts.into_iter().filter(|&(_, c)| c >= min_count).collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Vocabulary::from_counts(kept.into_iter().map(|(w, c)| (w.to_string(), c)).collect())
    }

    pub fn from_counts(words: Vec<(String, u64)>) -> Vocabulary {
        let index = words.iter().enumerate().map(|(i, (w, _))| (w.clone(), i as u32)).collect();
        let (words, counts) = words.into_iter().unzip();
        Vocabulary { words, counts, index }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The word indices of a tokenized text, words outside the vocabulary left out (as word2vec does
    /// before it forms windows).
    pub fn indices(&self, words: &[String]) -> Vec<u32> {
        words.iter().filter_map(|w| self.index.get(w).copied()).collect()
    }

    /// For each word, the threshold a uniform u32 must not exceed for an occurrence to be kept:
    /// word2vec's (and gensim's) down-sampling, keep probability (√(c / t) + 1) · t / c with
    /// t = sample · (total count), capped at 1; `sample` 0 keeps every word.
    pub fn keep_thresholds(&self, sample: f64) -> Vec<u32> {
        let total: u64 = self.counts.iter().sum();
        let t = sample * total as f64;
        self.counts
            .iter()
            .map(|&c| {
                if sample <= 0.0 {
                    return u32::MAX;
                }
                let c = c as f64;
                let p = ((c / t).sqrt() + 1.0) * t / c;
                (p.min(1.0) * u32::MAX as f64) as u32
            })
            .collect()
    }
}

/// Walker's alias table over count^0.75: one uniform draw picks a word in constant time.
pub struct Unigram {
    probability: Vec<u32>,
    alias: Vec<u32>,
}

impl Unigram {
    pub fn new(counts: &[u64]) -> Unigram {
        let n = counts.len();
        let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
        let sum: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        let mut probability = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            probability[s] = (scaled[s] * u32::MAX as f64) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Unigram { probability, alias }
    }

    /// A word from two uniform draws.
    #[inline]
    pub fn draw(&self, r: u64) -> u32 {
        let i = (((r >> 32) * self.probability.len() as u64) >> 32) as usize;
        if (r as u32) <= self.probability[i] {
            i as u32
        } else {
            self.alias[i]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_is_ordered_by_count_then_word_and_drops_rare_words() {
        let texts: Vec<Vec<String>> = ["b a c a", "b a d"].iter().map(|t| t.split(' ').map(String::from).collect()).collect();
        let v = Vocabulary::build(&texts, 2);
        assert_eq!(v.words, vec!["a", "b"]);
        assert_eq!(v.counts, vec![3, 2]);
        assert_eq!(v.indices(&texts[0]), vec![1, 0, 0]);
    }

    #[test]
    fn negatives_follow_count_to_the_three_quarters() {
        let counts = [1000u64, 100, 10, 1];
        let table = Unigram::new(&counts);
        let mut seen = [0usize; 4];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..400_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seen[table.draw(x) as usize] += 1;
        }
        let total: f64 = counts.iter().map(|&c| (c as f64).powf(0.75)).sum();
        for (i, &c) in counts.iter().enumerate() {
            let want = (c as f64).powf(0.75) / total;
            let got = seen[i] as f64 / 400_000.0;
            assert!((got - want).abs() < 0.005, "word {i}: {got} against {want}");
        }
    }

    #[test]
    fn down_sampling_keeps_rare_words_and_thins_frequent_ones() {
        let v = Vocabulary::from_counts(vec![("the".into(), 100_000), ("cat".into(), 10)]);
        let keep = v.keep_thresholds(1e-3);
        assert!(keep[0] < u32::MAX / 5, "the frequent word is mostly dropped");
        assert_eq!(keep[1], u32::MAX, "the rare word is always kept");
        assert!(v.keep_thresholds(0.0).iter().all(|&k| k == u32::MAX));
    }
}
