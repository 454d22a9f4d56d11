//! TF-IDF fitted on training documents only, as scikit-learn's TfidfVectorizer computes it:
//! tokens are runs of two or more word characters (lower-cased; `tokens::words`), idf = ln((1 + n) / (1 + df)) + 1,
//! optional sublinear tf (1 + ln tf), rows L2-normalised. linfa's vectorizer recomputes IDF from whatever
//! it transforms and does not normalise rows, so evaluation vectors would leak their own statistics.

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::sparse::Csr;

#[derive(Debug, Clone)]
pub struct TfidfOptions {
    pub ngram_range: (usize, usize),
    pub min_df: usize,
    pub max_df: f64,
    pub max_features: Option<usize>,
    pub sublinear_tf: bool,
    pub lowercase: bool,
}

pub struct Tfidf {
    opts: TfidfOptions,
    vocabulary: FxHashMap<String, u32>,
    idf: Vec<f64>,
}

/// Calls `f` on every n-gram of the document, in order.
fn for_each_term(text: &str, opts: &TfidfOptions, mut f: impl FnMut(&str)) {
    let text = crate::methods::tokens::prepared(text, opts.lowercase);
    let tokens = crate::methods::tokens::words(&text);
    let (lo, hi) = opts.ngram_range;
    let mut buf = String::new();
    for n in lo..=hi {
        if n == 1 {
            tokens.iter().for_each(|t| f(t));
            continue;
        }
        for w in tokens.windows(n) {
            buf.clear();
            for (k, t) in w.iter().enumerate() {
                if k > 0 {
                    buf.push(' ');
                }
                buf.push_str(t);
            }
            f(&buf);
        }
    }
}

impl Tfidf {
    /// Learns the vocabulary and IDF from the training documents and returns their matrix.
    pub fn fit_transform(texts: &[String], opts: TfidfOptions, on_doc: &(dyn Fn() + Sync)) -> (Tfidf, Csr) {
        // Document and corpus frequencies per term, counted in parallel (integer sums: order-independent).
        let counts: FxHashMap<String, (u32, u64)> = texts
            .par_iter()
            .fold(FxHashMap::default, |mut acc: FxHashMap<String, (u32, u64)>, text| {
                let mut seen: FxHashSet<String> = FxHashSet::default();
                for_each_term(text, &opts, |t| {
                    if let Some(e) = acc.get_mut(t) {
                        e.1 += 1;
                        if !seen.contains(t) {
                            e.0 += 1;
                            seen.insert(t.to_string());
                        }
                    } else {
                        acc.insert(t.to_string(), (1, 1));
                        seen.insert(t.to_string());
                    }
                });
                acc
            })
            .reduce(FxHashMap::default, |a, b| if a.len() >= b.len() { merge(a, b) } else { merge(b, a) });
        let n = texts.len();
        let max_df = (opts.max_df * n as f64).floor() as u32;
        let mut terms: Vec<(String, u32, u64)> =
            counts.into_iter().filter(|(_, (df, _))| *df as usize >= opts.min_df && *df <= max_df.max(1)).map(|(t, (df, tf))| (t, df, tf)).collect();
        if let Some(max) = opts.max_features {
            // Most frequent in the corpus first; ties alphabetically, as scikit-learn keeps them.
            terms.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
            terms.truncate(max);
        }
        terms.sort_by(|a, b| a.0.cmp(&b.0));
        let idf: Vec<f64> = terms.iter().map(|(_, df, _)| crate::methods::tokens::smooth_idf(n, u64::from(*df))).collect();
        let vocabulary = terms.into_iter().enumerate().map(|(i, (t, _, _))| (t, i as u32)).collect();
        let model = Tfidf { opts, vocabulary, idf };
        let matrix = model.transform(texts, on_doc);
        (model, matrix)
    }

    pub fn vocabulary_size(&self) -> usize {
        self.idf.len()
    }

    /// TF-IDF rows for documents, with the training vocabulary and IDF.
    pub fn transform(&self, texts: &[String], on_doc: &(dyn Fn() + Sync)) -> Csr {
        let rows: Vec<Vec<(u32, f64)>> = texts
            .par_iter()
            .map(|text| {
                let mut tf: FxHashMap<u32, u32> = FxHashMap::default();
                for_each_term(text, &self.opts, |t| {
                    if let Some(&j) = self.vocabulary.get(t) {
                        *tf.entry(j).or_insert(0) += 1;
                    }
                });
                let mut row: Vec<(u32, f64)> = tf
                    .into_iter()
                    .map(|(j, c)| {
                        let w = if self.opts.sublinear_tf { 1.0 + (c as f64).ln() } else { c as f64 };
                        (j, w * self.idf[j as usize])
                    })
                    .collect();
                row.sort_unstable_by_key(|&(j, _)| j);
                let norm = row.iter().map(|&(_, v)| v * v).sum::<f64>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|(_, v)| *v /= norm);
                }
                on_doc();
                row
            })
            .collect();
        Csr::from_rows(rows, self.idf.len())
    }
}

fn merge(mut big: FxHashMap<String, (u32, u64)>, small: FxHashMap<String, (u32, u64)>) -> FxHashMap<String, (u32, u64)> {
    for (k, (df, tf)) in small {
        let e = big.entry(k).or_insert((0, 0));
        e.0 += df;
        e.1 += tf;
    }
    big
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> TfidfOptions {
        TfidfOptions { ngram_range: (1, 1), min_df: 1, max_df: 1.0, max_features: None, sublinear_tf: false, lowercase: true }
    }

    fn terms(text: &str, o: &TfidfOptions) -> Vec<String> {
        let mut v = Vec::new();
        for_each_term(text, o, |t| v.push(t.to_string()));
        v
    }

    #[test]
    fn tokenizes_like_scikit_learn() {
        assert_eq!(terms("Free entry: WIN £100 a_b x é café!", &opts()), vec!["free", "entry", "win", "100", "a_b", "café"]);
        let mut o = opts();
        o.ngram_range = (1, 2);
        assert_eq!(terms("aa bb cc", &o), vec!["aa", "bb", "cc", "aa bb", "bb cc"]);
    }

    #[test]
    fn matches_hand_computed_tfidf() {
        // scikit-learn: TfidfVectorizer().fit_transform(["aa bb bb", "aa cc"])
        let docs = vec!["aa bb bb".to_string(), "aa cc".to_string()];
        let (m, x) = Tfidf::fit_transform(&docs, opts(), &|| {});
        assert_eq!(m.vocabulary_size(), 3);
        let idf_rare = (3.0f64 / 2.0).ln() + 1.0;
        // doc 0: aa → 1·1, bb → 2·idf_rare; L2-normalised
        let norm = (1.0 + (2.0 * idf_rare).powi(2)).sqrt();
        assert_eq!(x.indices[..2], [0, 1]);
        assert!((x.data[0] - 1.0 / norm).abs() < 1e-12);
        assert!((x.data[1] - 2.0 * idf_rare / norm).abs() < 1e-12);
        // Unseen words are ignored at transform time; IDF stays the training IDF.
        let y = m.transform(&["cc zz".to_string()], &|| {});
        assert_eq!(y.indices, vec![2]);
        assert!((y.data[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn min_df_and_max_features() {
        let docs: Vec<String> = ["aa bb", "aa cc", "aa bb dd"].iter().map(|s| s.to_string()).collect();
        let mut o = opts();
        o.min_df = 2;
        let (m, _) = Tfidf::fit_transform(&docs, o, &|| {});
        assert_eq!(m.vocabulary_size(), 2); // aa, bb
        let mut o = opts();
        o.max_features = Some(1);
        let (m, _) = Tfidf::fit_transform(&docs, o, &|| {});
        assert!(m.vocabulary.contains_key("aa"));
    }
}
