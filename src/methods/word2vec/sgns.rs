//! Word2Vec with negative sampling (skip-gram or CBOW), trained in parallel with a result that does not
//! depend on the number of threads.
//!
//! gensim (like the original C tool) runs Hogwild: threads update shared vectors without locks, so the
//! result depends on how the threads interleave. Here each epoch's texts are cut into jobs of 1/64 of the
//! corpus (500 to 50,000 words), and the jobs into periods of `SHARDS` jobs. Within a period every job
//! reads the vectors as they were at the period's start and writes into its own overlay (a private copy
//! of each row it touches, made on first touch); at the period's end the overlays are merged into the
//! shared vectors in a fixed order (ranges of rows in parallel: a row's result depends only on the
//! overlays). Which job runs on which thread changes nothing, so `--threads 1` and
//! `--threads 2` give the same bits. A job sees the other job's updates of its period one period late:
//! staleness as Hogwild has between its threads, but fixed in size (one job, at most 1/64 of an epoch)
//! and the same on every run. Smaller jobs would see each other sooner but copy more rows per word: on
//! Enron, jobs of 1/256 of an epoch spent 18% of the time copying rows (benches/README.md). Each job's
//! random draws (down-sampling, window shrinking, negatives) come from its own generator, seeded from the
//! run's seed, the epoch and the job's number; its learning rate is the linear decay at the job's place
//! in the whole training run.
//!
//! Skip-gram shares its negatives within a window by default (`predict_window`): a word's context words
//! all predict it against one draw of negatives, in one small matrix product. On a vocabulary too large
//! for the cache most of the time goes to fetching output rows, and this fetches each once per window.

use multiversion::multiversion;
use rayon::prelude::*;

use super::vocab::Unigram;

/// Jobs per epoch: a job is 1/JOBS_PER_EPOCH of the corpus, so that the staleness is a fixed small share
/// of an epoch (smaller jobs cost more: each copies the rows it touches), within these bounds in words.
const JOBS_PER_EPOCH: usize = 64;
const JOB_WORDS: std::ops::RangeInclusive<usize> = 500..=50_000;
/// Texts are cut into pieces of at most this many words (gensim's cut), so that no job is much longer
/// than another and a period's jobs end together; windows do not cross a cut.
const PIECE_WORDS: usize = 10_000;
/// Jobs per period: the most threads that can work at once, and the staleness in jobs.
pub const SHARDS: usize = 2;
/// Scores beyond ±MAX_EXP are saturated: their sigmoid is taken as 0 or 1 and the update skipped, as
/// word2vec and gensim do.
const MAX_EXP: f32 = 6.0;
const EXP_TABLE_SIZE: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    SkipGram,
    Cbow,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub architecture: Architecture,
    pub window: usize,
    pub negative: usize,
    /// Skip-gram: one draw of negatives per window, shared by its context words (BlazingText's and
    /// pWord2Vec's scheme), instead of one per (context, word) pair as word2vec and gensim draw them.
    pub shared_negatives: bool,
    pub epochs: usize,
    pub alpha: f32,
    pub min_alpha: f32,
    pub seed: u64,
}

/// What training did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Words of the corpus (in the vocabulary) times epochs: the work's size, as gensim's "raw words".
    pub raw_words: u64,
    /// The words trained on after down-sampling.
    pub effective_words: u64,
    pub seconds: f64,
}

/// A private copy of the rows a job touches.
struct Overlay {
    dim: usize,
    /// Each row's place in `rows`, or NONE.
    slot: Vec<u32>,
    rows: Vec<f32>,
    touched: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Overlay {
    fn new(words: usize, dim: usize) -> Overlay {
        Overlay { dim, slot: vec![NONE; words], rows: Vec::new(), touched: Vec::new() }
    }

    /// The offset of row `r` in `rows`, copied from `base` on first touch.
    #[inline(always)]
    fn offset(&mut self, base: &[f32], r: u32) -> usize {
        let s = self.slot[r as usize];
        if s != NONE {
            return s as usize * self.dim;
        }
        let s = self.touched.len();
        self.slot[r as usize] = s as u32;
        self.touched.push(r);
        let at = r as usize * self.dim;
        self.rows.extend_from_slice(&base[at..at + self.dim]);
        s * self.dim
    }

    /// Empties the overlay (after `apply`).
    fn clear(&mut self) {
        for &r in &self.touched {
            self.slot[r as usize] = NONE;
        }
        self.rows.clear();
        self.touched.clear();
    }
}

/// Gives `base` the overlays' changes: a row one overlay touched becomes that overlay's row; a row
/// several touched becomes the start plus each one's change (overlay − start), added in overlay order.
/// Either way a row's result depends on nothing but the overlays, so the rows are merged in parallel,
/// in ranges. Then empties the overlays.
fn apply(overlays: &mut [&mut Overlay], base: &mut [f32]) {
    let rows = overlays.first().map_or(0, |o| base.len() / o.dim);
    merge(overlays, base, rows.div_ceil(4 * rayon::current_num_threads()).max(1024));
}

/// `apply` in ranges of `per_part` rows.
fn merge(overlays: &mut [&mut Overlay], base: &mut [f32], per_part: usize) {
    let Some(dim) = overlays.first().map(|o| o.dim) else { return };
    let rows = base.len() / dim;
    {
        let overlays: &[&mut Overlay] = overlays;
        base.par_chunks_mut(per_part * dim).enumerate().for_each(|(part, base)| {
            let range = (part * per_part) as u32..((part + 1) * per_part).min(rows) as u32;
            let mut start = Vec::new();
            for (i, ov) in overlays.iter().enumerate() {
                for (k, &r) in ov.touched.iter().enumerate().filter(|(_, r)| range.contains(r)) {
                    let (at, mine) = ((r - range.start) as usize * dim, &ov.rows[k * dim..(k + 1) * dim]);
                    let holders = || overlays.iter().filter(|o| o.slot[r as usize] != NONE);
                    if holders().count() == 1 {
                        base[at..at + dim].copy_from_slice(mine);
                        continue;
                    }
                    if overlays.iter().position(|o| o.slot[r as usize] != NONE) != Some(i) {
                        continue;
                    }
                    // The first overlay to hold the row adds every overlay's change to the start.
                    start.clear();
                    start.extend_from_slice(&base[at..at + dim]);
                    for o in holders() {
                        let s = o.slot[r as usize] as usize;
                        let theirs = &o.rows[s * dim..(s + 1) * dim];
                        base[at..at + dim].iter_mut().zip(theirs.iter().zip(&start)).for_each(|(b, (t, s0))| *b += t - s0);
                    }
                }
            }
        });
    }
    overlays.par_iter_mut().for_each(|ov| ov.clear());
}

/// wyrand: a fast 64-bit generator, one per job.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, epoch: usize, job: usize) -> Rng {
        let mut r = Rng(seed ^ 0x2545_f491_4f6c_dd1d);
        r.next();
        r.0 ^= (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (job as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        r.next();
        r
    }

    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }
}

/// What every job reads.
struct Shared<'a> {
    settings: &'a Settings,
    keep: &'a [u32],
    unigram: &'a Unigram,
    exp_table: Vec<f32>,
    dim: usize,
}

/// Trains `input` (the word vectors, [words × dim], initialised by the caller) on the corpus, each text
/// a list of word indices. `on_words` is told of progress, in corpus words.
pub fn train(corpus: &[Vec<u32>], input: &mut [f32], dim: usize, keep: &[u32], unigram: &Unigram, s: &Settings, on_words: &(dyn Fn(u64) + Sync)) -> Outcome {
    let words = keep.len();
    let mut output = vec![0f32; words * dim];
    let exp_table = exp_table();
    let shared = Shared { settings: s, keep, unigram, exp_table, dim };
    let per_epoch: u64 = corpus.iter().map(|t| t.len() as u64).sum();
    let job_words = (per_epoch as usize / JOBS_PER_EPOCH).clamp(*JOB_WORDS.start(), *JOB_WORDS.end());
    let corpus = pieces(corpus, job_words.min(PIECE_WORDS));
    let jobs = cut_jobs(&corpus, job_words);
    let total = per_epoch * s.epochs as u64;
    let mut overlays: Vec<(Overlay, Overlay)> = (0..SHARDS.min(jobs.len()).max(1)).map(|_| (Overlay::new(words, dim), Overlay::new(words, dim))).collect();
    let started = std::time::Instant::now();
    let mut effective = 0u64;
    for epoch in 0..s.epochs {
        let mut done = per_epoch * epoch as u64;
        for (period, group) in jobs.chunks(overlays.len()).enumerate() {
            let starts: Vec<u64> = group
                .iter()
                .scan(done, |at, job| {
                    let here = *at;
                    *at += job.words;
                    Some(here)
                })
                .collect();
            let (input_now, output_now) = (&*input, &output);
            let kept: Vec<u64> = overlays
                .par_iter_mut()
                .zip(group.par_iter().zip(starts.par_iter()))
                .enumerate()
                .map(|(k, ((ov_in, ov_out), (job, &start)))| {
                    let progress = start as f32 / total.max(1) as f32;
                    let alpha = (s.alpha - (s.alpha - s.min_alpha) * progress).max(s.min_alpha);
                    let mut rng = Rng::new(s.seed, epoch, period * SHARDS + k);
                    run_job(&corpus[job.texts.clone()], input_now, output_now, ov_in, ov_out, &shared, alpha, &mut rng)
                })
                .collect();
            let (mut ins, mut outs): (Vec<&mut Overlay>, Vec<&mut Overlay>) = overlays.iter_mut().take(group.len()).map(|(a, b)| (a, b)).unzip();
            apply(&mut ins, input);
            apply(&mut outs, &mut output);
            effective += kept.iter().sum::<u64>();
            let words: u64 = group.iter().map(|j| j.words).sum();
            done += words;
            on_words(words);
        }
    }
    Outcome { raw_words: total, effective_words: effective, seconds: started.elapsed().as_secs_f64() }
}

/// σ at EXP_TABLE_SIZE points evenly over [−MAX_EXP, MAX_EXP), as word2vec tabulates it.
fn exp_table() -> Vec<f32> {
    (0..EXP_TABLE_SIZE)
        .map(|i| {
            let x = ((i as f32 / EXP_TABLE_SIZE as f32) * 2.0 - 1.0) * MAX_EXP;
            let e = x.exp();
            e / (e + 1.0)
        })
        .collect()
}

/// A run of consecutive texts of about the job size.
struct Job {
    texts: std::ops::Range<usize>,
    words: u64,
}

fn pieces(corpus: &[Vec<u32>], size: usize) -> Vec<&[u32]> {
    corpus.iter().flat_map(|t| t.chunks(size)).collect()
}

fn cut_jobs(corpus: &[&[u32]], job_words: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    let (mut start, mut words) = (0, 0u64);
    for (i, t) in corpus.iter().enumerate() {
        words += t.len() as u64;
        if words as usize >= job_words {
            jobs.push(Job { texts: start..i + 1, words });
            (start, words) = (i + 1, 0);
        }
    }
    if start < corpus.len() {
        jobs.push(Job { texts: start..corpus.len(), words });
    }
    jobs
}

/// One job's texts, sequentially; returns how many words were kept by down-sampling.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx2+fma"))]
fn run_job<'a>(texts: &[&[u32]], input: &[f32], output: &[f32], ov_in: &mut Overlay, ov_out: &mut Overlay, c: &Shared<'a>, alpha: f32, rng: &mut Rng) -> u64 {
    let s = c.settings;
    let dim = c.dim;
    let mut kept_words: Vec<u32> = Vec::new();
    let mut work = vec![0f32; dim];
    let mut hidden = vec![0f32; dim];
    let mut window: Vec<u32> = Vec::new();
    let mut scratch = Scratch::default();
    let mut kept = 0u64;
    for text in texts {
        kept_words.clear();
        kept_words.extend(text.iter().copied().filter(|&w| c.keep[w as usize] >= rng.next() as u32));
        kept += kept_words.len() as u64;
        let n = kept_words.len();
        for i in 0..n {
            let b = (rng.next() % s.window as u64) as usize;
            let reach = s.window - b;
            let (lo, hi) = (i.saturating_sub(reach), (i + reach + 1).min(n));
            let word = kept_words[i];
            match s.architecture {
                Architecture::SkipGram if s.shared_negatives => {
                    window.clear();
                    window.extend((lo..hi).filter(|&j| j != i).map(|j| kept_words[j]));
                    predict_window(&window, word, input, output, ov_in, ov_out, c, alpha, rng, &mut scratch);
                }
                Architecture::SkipGram => {
                    for (j, &context) in kept_words.iter().enumerate().take(hi).skip(lo) {
                        if j == i {
                            continue;
                        }
                        let ctx = ov_in.offset(input, context);
                        work.fill(0.0);
                        predict(&ov_in.rows[ctx..ctx + dim], word, &mut work, output, ov_out, c, alpha, rng);
                        add(&mut ov_in.rows[ctx..ctx + dim], &work);
                    }
                }
                Architecture::Cbow => {
                    let count = (hi - lo - 1) as f32;
                    if count < 0.5 {
                        continue;
                    }
                    hidden.fill(0.0);
                    for j in (lo..hi).filter(|&j| j != i) {
                        let ctx = ov_in.offset(input, kept_words[j]);
                        add(&mut hidden, &ov_in.rows[ctx..ctx + dim]);
                    }
                    hidden.iter_mut().for_each(|h| *h /= count);
                    work.fill(0.0);
                    predict(&hidden, word, &mut work, output, ov_out, c, alpha, rng);
                    for j in (lo..hi).filter(|&j| j != i) {
                        let ctx = ov_in.offset(input, kept_words[j]);
                        add(&mut ov_in.rows[ctx..ctx + dim], &work);
                    }
                }
            }
        }
    }
    kept
}

/// A window's buffers, kept between windows.
#[derive(Default)]
struct Scratch {
    targets: Vec<(u32, f32)>,
    in_at: Vec<usize>,
    out_at: Vec<usize>,
    /// The gradient scale of each (context, target): (label − σ(score)) · alpha, 0 when saturated.
    g: Vec<f32>,
    /// Each context's input error.
    work: Vec<f32>,
}

/// Skip-gram's update of one window with shared negatives: every context word of `word` predicts
/// `word` and the same negatives. The scores and errors are all taken from the rows as they were
/// before the window (a small matrix product instead of a chain of dependent dot products), then the
/// context rows and the target rows are updated. Each target row is read once per window instead of
/// once per context word: six random rows a word instead of thirty-six at the defaults.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn predict_window(
    contexts: &[u32],
    word: u32,
    input: &[f32],
    output: &[f32],
    ov_in: &mut Overlay,
    ov_out: &mut Overlay,
    c: &Shared<'_>,
    alpha: f32,
    rng: &mut Rng,
    x: &mut Scratch,
) {
    let dim = c.dim;
    x.targets.clear();
    x.targets.push((word, 1.0));
    for _ in 0..c.settings.negative {
        let t = c.unigram.draw(rng.next());
        if t != word {
            x.targets.push((t, 0.0));
        }
    }
    // Plain loops, not iterator adapters: a closure the compiler does not inline would lose the
    // function's vector instructions.
    x.in_at.clear();
    for &w in contexts {
        x.in_at.push(ov_in.offset(input, w));
    }
    x.out_at.clear();
    for &(t, _) in &x.targets {
        x.out_at.push(ov_out.offset(output, t));
    }
    let (ins, outs) = (&mut ov_in.rows, &mut ov_out.rows);
    x.g.clear();
    for &a in &x.in_at {
        let l1 = &ins[a..a + dim];
        for (&b, &(_, label)) in x.out_at.iter().zip(&x.targets) {
            x.g.push(gradient_scale(&c.exp_table, dot(l1, &outs[b..b + dim]), label, alpha).unwrap_or(0.0));
        }
    }
    let n = x.targets.len();
    x.work.clear();
    x.work.resize(contexts.len() * dim, 0.0);
    for (work, g) in x.work.chunks_exact_mut(dim).zip(x.g.chunks_exact(n)) {
        for (&b, &g) in x.out_at.iter().zip(g).filter(|(_, &g)| g != 0.0) {
            axpy(work, g, &outs[b..b + dim]);
        }
    }
    for (t, &b) in x.out_at.iter().enumerate() {
        let l2 = &mut outs[b..b + dim];
        for (&a, g) in x.in_at.iter().zip(x.g.iter().skip(t).step_by(n)) {
            if *g != 0.0 {
                axpy(l2, *g, &ins[a..a + dim]);
            }
        }
    }
    for (&a, work) in x.in_at.iter().zip(x.work.chunks_exact(dim)) {
        add(&mut ins[a..a + dim], work);
    }
}

/// y += g · x.
#[inline(always)]
fn axpy(y: &mut [f32], g: f32, x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += g * x);
}

/// y += x.
#[inline(always)]
fn add(y: &mut [f32], x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += x);
}

/// The gradient scale of a (context, target) pair of score `f`: (label − σ(f)) · alpha, or None where
/// the score is saturated and word2vec skips the update.
#[inline(always)]
fn gradient_scale(table: &[f32], f: f32, label: f32, alpha: f32) -> Option<f32> {
    let saturated = f <= -MAX_EXP || f >= MAX_EXP;
    (!saturated).then(|| (label - sigmoid(table, f)) * alpha)
}

/// The update of one (input vector, predicted word) pair and its negatives: the input's error is
/// accumulated in `work`, each output row updated in place (in the job's overlay).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn predict(l1: &[f32], word: u32, work: &mut [f32], output: &[f32], ov_out: &mut Overlay, c: &Shared<'_>, alpha: f32, rng: &mut Rng) {
    let dim = c.dim;
    for d in 0..=c.settings.negative {
        let (target, label) = if d == 0 {
            (word, 1.0f32)
        } else {
            let t = c.unigram.draw(rng.next());
            if t == word {
                continue;
            }
            (t, 0.0)
        };
        let o = ov_out.offset(output, target);
        let l2 = &mut ov_out.rows[o..o + dim];
        let Some(g) = gradient_scale(&c.exp_table, dot(l1, l2), label, alpha) else { continue };
        for ((w, b), a) in work.iter_mut().zip(l2.iter_mut()).zip(l1) {
            *w += g * *b;
            *b += g * a;
        }
    }
}

/// σ(f) for |f| < MAX_EXP from the table. An f just under MAX_EXP can round to the table's end in f32:
/// the last entry stands for it.
#[inline(always)]
fn sigmoid(table: &[f32], f: f32) -> f32 {
    table[(((f + MAX_EXP) * (EXP_TABLE_SIZE as f32 / MAX_EXP / 2.0)) as usize).min(EXP_TABLE_SIZE - 1)]
}

/// a · b with sixteen partial sums, so that the loop vectorises (a single running sum would fix the
/// order of the additions and keep it scalar).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum = 0.0;
    for k in [0, 8] {
        let half: f32 = (0..8).map(|l| acc[k + l]).fold(0.0, |s, v| s + v);
        sum += half;
    }
    sum + ra.iter().zip(rb).map(|(x, y)| x * y).fold(0.0, |s, v| s + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input and output rows of `words` × `dim`, values in ±0.5 so that updates are not tiny.
    fn rows(words: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed, 0, 0);
        (0..words * dim).map(|_| (r.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5).collect()
    }

    /// Random input and output rows of `words` equally frequent words, and what a job reads.
    struct Fixture {
        input: Vec<f32>,
        output: Vec<f32>,
        keep: Vec<u32>,
        unigram: Unigram,
        settings: Settings,
        dim: usize,
    }

    impl Fixture {
        fn new(words: usize, dim: usize, seed: u64) -> Fixture {
            let settings = Settings {
                architecture: Architecture::SkipGram,
                window: 3,
                negative: 5,
                shared_negatives: true,
                epochs: 1,
                alpha: 0.05,
                min_alpha: 1e-4,
                seed: 7,
            };
            Fixture {
                input: rows(words, dim, seed),
                output: rows(words, dim, seed + 1),
                keep: vec![u32::MAX; words],
                unigram: Unigram::new(&vec![10; words]),
                settings,
                dim,
            }
        }

        fn shared(&self) -> Shared<'_> {
            Shared { settings: &self.settings, keep: &self.keep, unigram: &self.unigram, exp_table: exp_table(), dim: self.dim }
        }
    }

    /// A window with one context word is the per-pair update itself, to the bit (the negatives are
    /// drawn in the same order; none repeats among 5,000 equally likely words at this seed).
    #[test]
    fn a_one_word_window_updates_as_one_pair_does() {
        let (words, dim) = (5000, 24);
        let f = Fixture::new(words, dim, 1);
        let (c, input, output) = (f.shared(), &f.input, &f.output);
        let (mut a_in, mut a_out) = (Overlay::new(words, dim), Overlay::new(words, dim));
        predict_window(&[17], 42, input, output, &mut a_in, &mut a_out, &c, 0.05, &mut Rng::new(3, 0, 0), &mut Scratch::default());
        let (mut b_in, mut b_out) = (Overlay::new(words, dim), Overlay::new(words, dim));
        let mut work = vec![0f32; dim];
        let at = b_in.offset(input, 17);
        predict(&b_in.rows[at..at + dim], 42, &mut work, output, &mut b_out, &c, 0.05, &mut Rng::new(3, 0, 0));
        b_in.rows[at..at + dim].iter_mut().zip(&work).for_each(|(v, w)| *v += w);
        assert_eq!(a_out.touched.len(), 6, "the word and 5 distinct negatives");
        assert_eq!((&a_in.touched, &a_out.touched), (&b_in.touched, &b_out.touched));
        assert!(a_in.rows == b_in.rows && a_out.rows == b_out.rows);
        assert!(a_in.rows[..dim] != input[17 * dim..18 * dim], "the context row moved");
    }

    /// A window of several context words (one twice) against the formula computed apart in f64 (σ from
    /// the same table): every score from the rows as they were, then ΔI = G·O and ΔO = Gᵀ·I, a repeated word getting both.
    #[test]
    fn a_window_is_one_small_matrix_update_from_the_rows_before_it() {
        let (words, dim) = (300, 20);
        let f = Fixture::new(words, dim, 4);
        let (c, input, output, s, unigram) = (f.shared(), &f.input, &f.output, &f.settings, &f.unigram);
        let (contexts, word, alpha) = ([3u32, 9, 3, 250], 7u32, 0.05f32);
        let rng = Rng::new(11, 2, 5);
        let (mut ov_in, mut ov_out) = (Overlay::new(words, dim), Overlay::new(words, dim));
        predict_window(&contexts, word, input, output, &mut ov_in, &mut ov_out, &c, alpha, &mut rng.clone(), &mut Scratch::default());

        let mut draws = rng.clone();
        let mut targets = vec![(word, 1.0f64)];
        targets.extend((0..s.negative).map(|_| unigram.draw(draws.next())).filter(|&t| t != word).map(|t| (t, 0.0)));
        let row = |m: &[f32], w: u32| -> Vec<f64> { m[w as usize * dim..(w as usize + 1) * dim].iter().map(|&v| f64::from(v)).collect() };
        let (mut want_in, mut want_out) = (input.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), output.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
        for &ctx in &contexts {
            for &(t, label) in &targets {
                let (i, o) = (row(input, ctx), row(output, t));
                let f: f64 = i.iter().zip(&o).map(|(a, b)| a * b).sum();
                let g = (label - f64::from(sigmoid(&c.exp_table, f as f32))) * f64::from(alpha);
                (0..dim).for_each(|d| want_in[ctx as usize * dim + d] += g * o[d]);
                (0..dim).for_each(|d| want_out[t as usize * dim + d] += g * i[d]);
            }
        }
        let mut moved = 0.0f64;
        for (ov, want, base) in [(&ov_in, &want_in, input), (&ov_out, &want_out, output)] {
            for (k, &r) in ov.touched.iter().enumerate() {
                for d in 0..dim {
                    let (got, want) = (f64::from(ov.rows[k * dim + d]), want[r as usize * dim + d]);
                    assert!((got - want).abs() < 1e-5, "row {r} dimension {d}: {got} against {want}");
                    moved = moved.max((got - f64::from(base[r as usize * dim + d])).abs());
                }
            }
        }
        assert!(moved > 5e-3, "the update is large enough to tell the formulas apart ({moved})");
    }

    /// Merging in ranges gives the rows merging whole gives: a row one overlay touched is its copy, a
    /// row both touched is the start plus both changes.
    #[test]
    fn overlays_merge_the_same_in_any_number_of_ranges() {
        let (words, dim) = (3000, 4);
        let base = rows(words, dim, 6);
        let touch = |ov: &mut Overlay, rows: &[u32], by: f32| {
            for &r in rows {
                let at = ov.offset(&base, r);
                ov.rows[at..at + dim].iter_mut().for_each(|v| *v += by);
            }
        };
        let merged = |per_part: usize| {
            let (mut a, mut b) = (Overlay::new(words, dim), Overlay::new(words, dim));
            touch(&mut a, &[5, 1500, 2999, 700], 1.0);
            touch(&mut b, &[1500, 6, 2999, 1024], 0.25);
            let mut out = base.clone();
            merge(&mut [&mut a, &mut b], &mut out, per_part);
            assert!(a.touched.is_empty() && a.slot.iter().all(|&s| s == NONE), "the overlay is emptied");
            out
        };
        let whole = merged(words);
        assert!(merged(1024) == whole && merged(7) == whole);
        let at = |r: usize, d: usize| whole[r * dim + d] - base[r * dim + d];
        assert_eq!((at(5, 0), at(6, 1), at(1024, 3), at(8, 0)), (1.0, 0.25, 0.25, 0.0));
        assert!((at(1500, 2) - 1.25).abs() < 1e-6 && (at(2999, 0) - 1.25).abs() < 1e-6);
    }

    #[test]
    fn the_sigmoid_table_covers_its_whole_range() {
        let table = exp_table();
        // The largest f32 under MAX_EXP: (f + 6) · 1000/12 rounds to 1000.
        let f = f32::from_bits(MAX_EXP.to_bits() - 1);
        assert!(sigmoid(&table, f) > 0.997);
        assert!(sigmoid(&table, -MAX_EXP + 1e-6) < 0.003);
        assert!((sigmoid(&table, 0.0) - 0.5).abs() < 0.01);
    }

    #[test]
    fn dot_adds_every_product() {
        for n in [1, 15, 16, 17, 100, 300] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.01).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-3 * want.abs().max(1.0), "n {n}");
        }
    }

    #[test]
    fn jobs_cover_the_corpus_in_order_and_long_texts_are_cut() {
        let corpus: Vec<Vec<u32>> = vec![vec![1; 300], vec![2; 1200], vec![3; 10], vec![4; 700]];
        let pieces = pieces(&corpus, 500);
        assert_eq!(pieces.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![300, 500, 500, 200, 10, 500, 200]);
        let jobs = cut_jobs(&pieces, 500);
        assert_eq!(jobs.iter().map(|j| j.words).sum::<u64>(), 2210);
        assert_eq!(jobs.first().unwrap().texts.start, 0);
        assert!(jobs.windows(2).all(|w| w[0].texts.end == w[1].texts.start));
        assert!(jobs.iter().take(jobs.len() - 1).all(|j| (500..1000).contains(&(j.words as usize))));
    }
}
