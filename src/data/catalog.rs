//! The named datasets, every fact about each in one place: the files it is read from, its columns, its
//! classes, its encoding, its own test split, where it is downloaded from and how it is checked. The spec
//! takes its defaults from here, the readers their file names, `bench datasets` its survey and `fetch`
//! its sources. (How each format is parsed lives with its reader: `sms.rs`, `table.rs`, `enron.rs`,
//! `newsgroups.rs`, `trec.rs`.)

use std::path::Path;

use crate::spec::{DatasetName, Encoding};

/// A file a dataset is downloaded as, with the SHA-256 it must have.
pub struct Remote {
    /// The file name under `<data dir>/<name>/`.
    pub file: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
}

/// A file kept from a downloaded zip; the SHA-256 is the file's (UCI repackages the SMS zip from time to
/// time; the data does not change).
pub struct ZipMember {
    pub url: &'static str,
    /// The zip's name on a mirror (`--base-url`).
    pub zip: &'static str,
    pub member: &'static str,
    pub sha256: &'static str,
}

/// How a missing dataset is obtained.
pub enum Source {
    /// Downloaded as these files, each checked.
    Files(&'static [Remote]),
    /// One file kept from a downloaded zip.
    ZipMember(ZipMember),
    /// Not downloadable by textbench (a login is needed): what to tell the user, `{dir}` being the data directory.
    Manual(&'static str),
}

pub struct Facts {
    pub name: DatasetName,
    pub description: &'static str,
    /// The file read when the spec names no `path`, under `<data dir>/<name>/` (Enron: its parts).
    pub main_file: &'static str,
    /// What the survey says it looks for.
    pub expected: &'static [&'static str],
    pub text_column: Option<&'static str>,
    pub label_column: Option<&'static str>,
    /// Binary datasets: the label values of the positive and negative classes. Empty: the classes are the
    /// label values found.
    pub positive: &'static [&'static str],
    pub negative: &'static [&'static str],
    pub encoding: Encoding,
    /// The evaluation file (or folder) of a dataset with a split of its own, used unless the spec asks
    /// for another split.
    pub own_test: Option<&'static str>,
    pub source: Source,
}

/// The Enron-Spam authors' preprocessed tarballs.
const ENRON: [Remote; 6] = [
    Remote {
        file: "enron1.tar.gz",
        url: "http://www.aueb.gr/users/ion/data/enron-spam/preprocessed/enron1.tar.gz",
        sha256: "a3ced1f5f661fd43119b1122e6cea04d5cb0cced650be7153846e6360a216c3b",
    },
    Remote {
        file: "enron2.tar.gz",
        url: "http://www.aueb.gr/users/ion/data/enron-spam/preprocessed/enron2.tar.gz",
        sha256: "42955907e0b5fd8812388be9fc653ef64f0f2c21592d37c2cdda5531ebee34db",
    },
    Remote {
        file: "enron3.tar.gz",
        url: "http://www.aueb.gr/users/ion/data/enron-spam/preprocessed/enron3.tar.gz",
        sha256: "5e2286033cd558080922db0ec9f92b1178f0e7f20aa77226ad7f852464820b99",
    },
    Remote {
        file: "enron4.tar.gz",
        url: "http://www.aueb.gr/users/ion/data/enron-spam/preprocessed/enron4.tar.gz",
        sha256: "f898c8643a0886e36fa22fe249ebdacb2cbafca188227f238be6ba781e96ba14",
    },
    Remote {
        file: "enron5.tar.gz",
        url: "http://www.aueb.gr/users/ion/data/enron-spam/preprocessed/enron5.tar.gz",
        sha256: "4fbc0a772f8d5a76236e48aa15fe7186367641c7c974fb591d20338856caea50",
    },
    Remote {
        file: "enron6.tar.gz",
        url: "http://www.aueb.gr/users/ion/data/enron-spam/preprocessed/enron6.tar.gz",
        sha256: "2f34e4b133a27de7188155d485b37c30581b3770658b02095cff03d08cf3c85d",
    },
];

const JIGSAW_INSTRUCTIONS: &str = "Jigsaw needs a Kaggle account: accept the rules of the \"Jigsaw Toxic Comment Classification Challenge\" \
     competition on kaggle.com, create an API token (Account → API → Create New Token, saved as \
     ~/.kaggle/kaggle.json), then run `kaggle competitions download -c jigsaw-toxic-comment-classification-challenge` \
     and unzip train.csv (and, joined with test_labels.csv without the -1 rows, test_labeled.csv) into {dir}/jigsaw/.";

pub const CATALOG: [Facts; 6] = [
    Facts {
        name: DatasetName::Sms,
        description: "UCI SMS Spam Collection (5,574 messages)",
        main_file: "SMSSpamCollection",
        expected: &["SMSSpamCollection"],
        text_column: None,
        label_column: None,
        positive: &["spam"],
        negative: &["ham"],
        encoding: Encoding::Utf8,
        own_test: None,
        source: Source::ZipMember(ZipMember {
            url: "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
            zip: "smsspamcollection.zip",
            member: "SMSSpamCollection",
            sha256: "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        }),
    },
    Facts {
        name: DatasetName::SmsKaggle,
        description: "the same corpus as Kaggle's spam.csv (latin-1)",
        main_file: "spam.csv",
        expected: &["spam.csv"],
        text_column: Some("v2"),
        label_column: Some("v1"),
        positive: &["spam"],
        negative: &["ham"],
        encoding: Encoding::Latin1,
        own_test: None,
        source: Source::Manual(
            "Download spam.csv from Kaggle's \"SMS Spam Collection Dataset\" (uciml) into {dir}/sms-kaggle/, \
             or use the `sms` dataset, which `bench datasets fetch sms` downloads.",
        ),
    },
    Facts {
        name: DatasetName::Enron,
        description: "Enron-Spam, preprocessed enron1-6 (33,716 emails)",
        main_file: "",
        expected: &["enron1.tar.gz", "enron2.tar.gz", "enron3.tar.gz", "enron4.tar.gz", "enron5.tar.gz", "enron6.tar.gz"],
        text_column: None,
        label_column: None,
        positive: &["spam"],
        negative: &["ham"],
        encoding: Encoding::Utf8,
        own_test: None,
        // textbench reads the tarballs directly (faster than 33,716 small files); `tar xzf` unpacks them if wanted.
        source: Source::Files(&ENRON),
    },
    Facts {
        name: DatasetName::Jigsaw,
        description: "Jigsaw toxic comments (label: toxic)",
        main_file: "train.csv",
        expected: &["train.csv", "test_labeled.csv (optional test split)"],
        text_column: Some("comment_text"),
        label_column: Some("toxic"),
        positive: &["1"],
        negative: &["0"],
        encoding: Encoding::Utf8,
        own_test: None,
        source: Source::Manual(JIGSAW_INSTRUCTIONS),
    },
    Facts {
        name: DatasetName::Newsgroups20,
        description: "20 Newsgroups, bydate split (20 classes, 11,314 train / 7,532 test)",
        main_file: super::newsgroups::TARBALL,
        expected: &[super::newsgroups::TARBALL],
        text_column: None,
        label_column: None,
        positive: &[],
        negative: &[],
        encoding: Encoding::Latin1,
        own_test: Some(super::newsgroups::TEST_FOLDER),
        // The file scikit-learn downloads, from its maintainer's page.
        source: Source::Files(&[Remote {
            file: super::newsgroups::TARBALL,
            url: "http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz",
            sha256: "8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4c87b786e15c759fa66d95610",
        }]),
    },
    Facts {
        name: DatasetName::Trec,
        description: "TREC question classification (6 coarse classes, 5,452 train / 500 test)",
        main_file: super::trec::TRAIN_FILE,
        expected: &[super::trec::TRAIN_FILE, super::trec::TEST_FILE],
        text_column: None,
        label_column: None,
        positive: &[],
        negative: &[],
        encoding: Encoding::Latin1,
        own_test: Some(super::trec::TEST_FILE),
        // Li & Roth's page: the files Hugging Face's and torchtext's loaders use.
        source: Source::Files(&[
            Remote {
                file: super::trec::TRAIN_FILE,
                url: "https://cogcomp.seas.upenn.edu/Data/QA/QC/train_5500.label",
                sha256: "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3",
            },
            Remote {
                file: super::trec::TEST_FILE,
                url: "https://cogcomp.seas.upenn.edu/Data/QA/QC/TREC_10.label",
                sha256: "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e",
            },
        ]),
    },
];

/// The facts of a named dataset.
pub fn facts(name: DatasetName) -> &'static Facts {
    CATALOG.iter().find(|f| f.name == name).expect("every name is in the catalog")
}

/// One sentence that tells the user how to get a missing dataset.
pub fn how_to_get(name: DatasetName, data_dir: &Path) -> String {
    let dir = data_dir.display().to_string();
    let looked = format!("Looked in the data directory {dir} (set --data-dir or BENCH_DATA_DIR to use another).");
    match facts(name).source {
        Source::Files(_) | Source::ZipMember(_) => format!("{looked} Download it with: bench datasets fetch {} --data-dir {dir}", name.as_str()),
        Source::Manual(how) => format!("{looked} {}", how.replace("{dir}", &dir)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_facts_and_enron_urls_name_their_files() {
        for name in DatasetName::ALL {
            assert_eq!(facts(name).name, name);
        }
        for r in &ENRON {
            assert!(r.url.ends_with(r.file), "{}", r.url);
        }
    }
}
