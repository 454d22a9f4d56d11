//! Class sets: which classes a dataset has, and which class each raw label value names.
//!
//! A label is a class index (`u32`). Two classes are the binary case: class 0 is the negative class and
//! class 1 the positive one (spam, toxic), which precision, recall, F1 and AUROC refer to. A spec names
//! its classes in one of three ways, resolved once in [`crate::spec`]:
//! - `positive:`/`negative:` label values (binary, as every named binary dataset does by default);
//! - `classes:`, label value → class name, classes in the order their names first appear;
//! - nothing (generic files and the multi-class named datasets): every distinct label value of the
//!   training data is a class, sorted (numerically when every value is an integer).

use serde::{Deserialize, Serialize};

/// More distinct label values than this is taken for a wrong `label_column`, not a class set.
pub const MAX_CLASSES: usize = 1000;

/// The classes of a dataset, in order: label `i` is class `names[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassSet {
    pub names: Vec<String>,
}

impl ClassSet {
    pub fn new(names: Vec<String>) -> ClassSet {
        ClassSet { names }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Two classes: the metrics of the positive class (class 1) apply.
    pub fn is_binary(&self) -> bool {
        self.names.len() == 2
    }

    pub fn name(&self, class: u32) -> &str {
        self.names.get(class as usize).map_or("?", String::as_str)
    }

    /// The classes the records of a version without class sets held: negative, then positive.
    pub fn legacy_binary() -> ClassSet {
        ClassSet::new(vec!["negative".into(), "positive".into()])
    }
}

/// One entry of a spec's `classes:` mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassValue {
    pub value: String,
    pub class: String,
}

/// How raw label values become classes, when the spec does not use `positive`/`negative`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassRule {
    /// Every distinct value in the training data is a class, sorted.
    Inferred,
    /// Value → class name; several values may name one class.
    Mapped(Vec<ClassValue>),
}

impl ClassRule {
    /// The class names of a mapping, in the order they first appear.
    pub fn mapped_names(values: &[ClassValue]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for v in values {
            if !names.contains(&v.class) {
                names.push(v.class.clone());
            }
        }
        names
    }
}

/// Label values compare trimmed and case-insensitively (`Spam`, `spam `).
fn same_value(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Maps raw label values to classes while a file is read.
#[derive(Debug, Clone)]
pub enum LabelMap {
    /// Class 1 for a positive value, class 0 for a negative one (or any other when `negative` is empty).
    Binary { positive: Vec<String>, negative: Vec<String> },
    /// Fixed values → class index.
    Mapped { values: Vec<(String, u32)>, classes: ClassSet },
    /// Every value is a class; the reader collects them and the class set is settled after reading.
    Inferred,
}

impl LabelMap {
    pub fn binary(positive: &[String], negative: &[String]) -> LabelMap {
        LabelMap::Binary { positive: positive.to_vec(), negative: negative.to_vec() }
    }

    pub fn from_rule(rule: &ClassRule) -> LabelMap {
        match rule {
            ClassRule::Inferred => LabelMap::Inferred,
            ClassRule::Mapped(values) => {
                let classes = ClassSet::new(ClassRule::mapped_names(values));
                let values = values.iter().map(|v| (v.value.clone(), classes.names.iter().position(|n| *n == v.class).expect("named") as u32)).collect();
                LabelMap::Mapped { values, classes }
            }
        }
    }

    /// The mapping that reads a second file (a test file) into the classes settled on the first.
    pub fn of_classes(classes: &ClassSet) -> LabelMap {
        let values = classes.names.iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect();
        LabelMap::Mapped { values, classes: classes.clone() }
    }

    /// The class of a raw value; `None` for a value in no class, and always for [`LabelMap::Inferred`]
    /// (whose classes exist only once the file is read: see [`super::Dataset::labelled`]).
    pub fn map(&self, raw: &str) -> Option<u32> {
        match self {
            LabelMap::Binary { positive, negative } => {
                if positive.iter().any(|p| same_value(p, raw)) {
                    Some(1)
                } else if negative.is_empty() || negative.iter().any(|n| same_value(n, raw)) {
                    Some(0)
                } else {
                    None
                }
            }
            LabelMap::Mapped { values, .. } => {
                let raw = raw.trim();
                // An exact match first, so that classes differing only in case stay apart.
                values.iter().find(|(v, _)| v.trim() == raw).or_else(|| values.iter().find(|(v, _)| same_value(v, raw))).map(|&(_, c)| c)
            }
            LabelMap::Inferred => None,
        }
    }

    /// Whether a value could be a label of this file: used to tell a stray quote's swallowed rows from
    /// prose. Any short value could be one when the classes are inferred.
    pub fn plausible(&self, raw: &str) -> bool {
        match self {
            LabelMap::Inferred => {
                let raw = raw.trim();
                !raw.is_empty() && raw.chars().count() <= 64 && raw.split_whitespace().count() <= 3
            }
            _ => self.map(raw).is_some(),
        }
    }

    /// The class set, when it is known before reading.
    pub fn classes(&self) -> Option<ClassSet> {
        match self {
            LabelMap::Binary { positive, negative } => {
                let neg = negative.first().cloned().unwrap_or_else(|| format!("not {}", positive.first().map_or("positive", |p| p.as_str())));
                Some(ClassSet::new(vec![neg, positive.first().cloned().unwrap_or_else(|| "positive".into())]))
            }
            LabelMap::Mapped { classes, .. } => Some(classes.clone()),
            LabelMap::Inferred => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            LabelMap::Binary { positive, negative } => {
                let neg = if negative.is_empty() { "anything else".to_string() } else { negative.join(" | ") };
                format!("positive: {}; negative: {neg}", positive.join(" | "))
            }
            LabelMap::Mapped { values, .. } => {
                let shown: Vec<&str> = values.iter().take(30).map(|(v, _)| v.as_str()).collect();
                let more = if values.len() > 30 { format!(" … {} more", values.len() - 30) } else { String::new() };
                format!("one of {}{more}", shown.join(" | "))
            }
            LabelMap::Inferred => "any value".into(),
        }
    }
}

/// How many of `labels` fall in each of `classes` classes.
pub fn class_counts(labels: &[u32], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    labels.iter().for_each(|&y| counts[y as usize] += 1);
    counts
}

/// Sorts inferred class names: numerically when every one is an integer (so `2` comes before `10`),
/// as text otherwise. Returns the names in order.
pub fn sorted_names(mut names: Vec<String>) -> Vec<String> {
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().expect("checked"));
    } else {
        names.sort();
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_maps_like_before() {
        let m = LabelMap::binary(&["spam".into()], &["ham".into()]);
        assert_eq!(m.map(" Spam "), Some(1));
        assert_eq!(m.map("ham"), Some(0));
        assert_eq!(m.map("eggs"), None);
        assert_eq!(m.classes().unwrap().names, vec!["ham", "spam"]);
        let any = LabelMap::binary(&["1".into()], &[]);
        assert_eq!(any.map("7"), Some(0));
    }

    #[test]
    fn mapped_values_share_classes_in_first_seen_order() {
        let rule = ClassRule::Mapped(vec![
            ClassValue { value: "pos".into(), class: "positive".into() },
            ClassValue { value: "neg".into(), class: "negative".into() },
            ClassValue { value: "great".into(), class: "positive".into() },
        ]);
        let m = LabelMap::from_rule(&rule);
        assert_eq!(m.classes().unwrap().names, vec!["positive", "negative"]);
        assert_eq!(m.map("GREAT"), Some(0));
        assert_eq!(m.map("neg"), Some(1));
        assert_eq!(m.map("meh"), None);
    }

    #[test]
    fn exact_case_wins_over_folded_case() {
        let m = LabelMap::of_classes(&ClassSet::new(vec!["A".into(), "a".into()]));
        assert_eq!(m.map("a"), Some(1));
        assert_eq!(m.map("A"), Some(0));
    }

    #[test]
    fn integer_names_sort_numerically() {
        assert_eq!(sorted_names(vec!["10".into(), "2".into(), "1".into()]), vec!["1", "2", "10"]);
        assert_eq!(sorted_names(vec!["b".into(), "a".into(), "10".into()]), vec!["10", "a", "b"]);
    }
}
