//! What the bag-of-words methods (LSA's TF-IDF, word2vec) share: the word rule, a word being a run of two
//! or more word characters (alphanumeric or `_`), as scikit-learn's default `token_pattern`
//! `(?u)\b\w\w+\b`, on the text lower-cased unless told not to; and scikit-learn's smooth IDF.

use std::borrow::Cow;

/// The text as words are read from it: lower-cased when `lowercase`.
pub fn prepared(text: &str, lowercase: bool) -> Cow<'_, str> {
    if lowercase {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// scikit-learn's smooth IDF of a term in `df` of `n` documents: ln((1 + n) / (1 + df)) + 1.
pub fn smooth_idf(n: usize, df: u64) -> f64 {
    ((1.0 + n as f64) / (1.0 + df as f64)).ln() + 1.0
}

/// The words of `text`, in order.
pub fn words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut chars = 0usize;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        if c.is_alphanumeric() || c == '_' {
            if start.is_none() {
                start = Some(i);
                chars = 0;
            }
            chars += 1;
        } else if let Some(s) = start.take() {
            if chars >= 2 {
                words.push(&text[s..i]);
            }
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn words_are_runs_of_two_or_more_word_characters() {
        assert_eq!(words("Free entry: txt WIN to 80062 a_b é-té x"), vec!["Free", "entry", "txt", "WIN", "to", "80062", "a_b", "té"]);
        assert!(words("a . ! ?").is_empty());
    }
}
