//! The named datasets: where each is looked for, and how to get it.

use std::path::Path;

use crate::spec::DatasetName;

/// The files a named dataset is read from, relative to `<data dir>/<name>/`.
pub fn expected_files(name: DatasetName) -> Vec<String> {
    match name {
        DatasetName::Sms => vec!["SMSSpamCollection".into()],
        DatasetName::SmsKaggle => vec!["spam.csv".into()],
        DatasetName::Enron => (1..=6).map(|n| format!("enron{n}.tar.gz")).collect(),
        DatasetName::Jigsaw => vec!["train.csv".into(), "test_labeled.csv (optional test split)".into()],
        DatasetName::Newsgroups20 => vec![super::newsgroups::TARBALL.into()],
        DatasetName::Trec => vec![super::trec::TRAIN_FILE.into(), super::trec::TEST_FILE.into()],
    }
}

pub fn description(name: DatasetName) -> &'static str {
    match name {
        DatasetName::Sms => "UCI SMS Spam Collection (5,574 messages)",
        DatasetName::SmsKaggle => "the same corpus as Kaggle's spam.csv (latin-1)",
        DatasetName::Enron => "Enron-Spam, preprocessed enron1-6 (33,716 emails)",
        DatasetName::Jigsaw => "Jigsaw toxic comments (label: toxic)",
        DatasetName::Newsgroups20 => "20 Newsgroups, bydate split (20 classes, 11,314 train / 7,532 test)",
        DatasetName::Trec => "TREC question classification (6 coarse classes, 5,452 train / 500 test)",
    }
}

/// One sentence that tells the user how to get a missing dataset.
pub fn how_to_get(name: DatasetName, data_dir: &Path) -> String {
    let dir = data_dir.display();
    let looked = format!("Looked in the data directory {dir} (set --data-dir or BENCH_DATA_DIR to use another).");
    match name {
        DatasetName::Sms | DatasetName::Enron | DatasetName::Newsgroups20 | DatasetName::Trec => {
            format!("{looked} Download it with: bench datasets fetch {} --data-dir {dir}", name.as_str())
        }
        DatasetName::SmsKaggle => format!(
            "{looked} Download spam.csv from Kaggle's \"SMS Spam Collection Dataset\" (uciml) into {dir}/sms-kaggle/, \
             or use the `sms` dataset, which `bench datasets fetch sms` downloads."
        ),
        DatasetName::Jigsaw => jigsaw_instructions(data_dir),
    }
}

/// Jigsaw is behind a Kaggle login, so textbench cannot download it for you.
pub fn jigsaw_instructions(data_dir: &Path) -> String {
    let dir = data_dir.display();
    format!(
        "Jigsaw needs a Kaggle account: accept the rules of the \"Jigsaw Toxic Comment Classification Challenge\" \
         competition on kaggle.com, create an API token (Account → API → Create New Token, saved as \
         ~/.kaggle/kaggle.json), then run `kaggle competitions download -c jigsaw-toxic-comment-classification-challenge` \
         and unzip train.csv (and, joined with test_labels.csv without the -1 rows, test_labeled.csv) into {dir}/jigsaw/."
    )
}
