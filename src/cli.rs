//! Command-line arguments (clap). Every command's --help carries an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    version,
    about = "textbench: benchmark text classifiers from YAML specs, with results you can trust",
    long_about = "textbench: benchmark text classifiers from YAML specs, with results you can trust.\n\n\
        A spec names a dataset, a method and its hyperparameters, seeds and sweeps. `bench run` executes\n\
        every run and stores one JSON record per run; `bench check` holds them to the spec's floors.",
    after_help = "Examples:\n  bench run experiments/sms-lsa.yaml\n  bench list\n  bench check experiments/*.yaml\n\n\
        Exit codes: 0 success, 1 a run failed or a floor did not hold, 2 usage or input error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress bars and no per-run lines; errors and results only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Where named datasets are looked for.
    #[arg(long, env = "BENCH_DATA_DIR", default_value = "datasets", global = true)]
    pub data_dir: PathBuf,
    /// The run store: one JSON record per run.
    #[arg(long, env = "BENCH_RUNS_DIR", default_value = "runs", global = true)]
    pub runs_dir: PathBuf,
    /// Where backbone model folders are looked for by name (a path to a folder also works).
    #[arg(long, env = "BENCH_MODELS_DIR", default_value = "models", global = true)]
    pub models_dir: PathBuf,
    /// The most runs one spec may expand to (seeds × sweep grid); a larger grid is refused before it is
    /// expanded.
    #[arg(long, env = "BENCH_MAX_RUNS", default_value_t = crate::spec::DEFAULT_MAX_RUNS, global = true)]
    pub max_runs: usize,
    /// Worker threads for data-parallel work (default: all cores). Results do not depend on it.
    #[arg(long, env = "BENCH_THREADS", global = true)]
    pub threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Execute the runs of one or more specs and store a record for each.
    #[command(after_help = "Examples:\n  bench run experiments/sms-lsa.yaml\n  bench run --dry-run experiments/*.yaml\n  \
        BENCH_DATA_DIR=../shared/datasets bench run experiments/enron-lsa.yaml --force\n\n\
        Runs already in the store are skipped (a killed sweep resumes where it stopped); --force re-runs them.\n\
        All data is loaded and checked before the first run starts: bad input writes nothing and exits 2.\n\
        A run that fails is recorded as failed, the others go on, and the command exits 1.")]
    Run(RunArgs),
    /// Compare the stored runs of specs with their floors.
    #[command(after_help = "Example:\n  bench check experiments/sms-lsa.yaml experiments/enron-lsa.yaml\n\n\
        Prints one line per run and metric: value, floor, verdict. Exits 0 when every floor holds,\n\
        1 when any value falls short or a run is missing or failed, 2 on usage errors.")]
    Check(CheckArgs),
    /// List the runs in the store, one line each.
    #[command(after_help = "Examples:\n  bench list\n  bench list --spec sms-lsa\n  bench list --runs-dir /tmp/other-runs")]
    List(ListArgs),
    /// Show one run record.
    #[command(after_help = "Examples:\n  bench show 3f9a1c2e\n  bench show 3f9a1c2e --json | jq .metrics\n\nA unique prefix of the id is enough.")]
    Show(ShowArgs),
    /// What datasets are found where, with row and class counts; `fetch` downloads one.
    #[command(
        after_help = "Examples:\n  bench datasets\n  bench datasets --data-dir ../shared/datasets\n  bench datasets fetch sms\n  bench datasets fetch enron --data-dir /data/textbench"
    )]
    Datasets(DatasetsArgs),
    /// Token ids and pooled embeddings of texts from a backbone: features for other tools, and parity checks.
    #[command(after_help = "Examples:\n  bench embed --model ../shared/models/all-MiniLM-L6-v2 --json \"free prize\" \"see you soon\"\n  \
        bench embed --model all-MiniLM-L6-v2 --models-dir ../shared/models --pooling cls --file texts.txt --json\n\n\
        With --json, one JSON object per text: {\"text\", \"input_ids\", \"embedding\"}.")]
    Embed(EmbedArgs),
    /// Classify texts with the model a run saved (frozen, finetune and lora runs), without retraining.
    #[command(after_help = "Examples:\n  bench predict --run 3f9a1c2e \"WINNER! Claim your prize now\" \"see you at lunch\"\n  \
        bench predict --run 3f9a1c2e --file messages.txt --json\n\n\
        Prints the label and the probability of the positive class per text.")]
    Predict(PredictArgs),
    /// Render the stored runs as one self-contained HTML page (or Markdown tables).
    #[command(after_help = "Examples:\n  bench report\n  bench report experiments/sms-*.yaml --out reports/sms.html\n  \
        bench report --runs-dir /tmp/copied-runs --format md > RESULTS.md\n\n\
        Filters are spec files (their runs, matched by configuration), spec names or run id prefixes; none keeps\n\
        every run. The page opens offline; each chart is also written as SVG and PNG into charts/ beside it.\n\
        Reads run records only: no data files, no models.")]
    Report(ReportArgs),
    /// Write (and with --submit, submit) a Slurm job array that runs the specs' sweep in N shards, and a
    /// final job that checks the floors and renders the report.
    #[command(after_help = "Examples:\n  bench slurm experiments/*.yaml --tasks 8 --partition cpu --cpus-per-task 4 --mem 16G --time 4:00:00\n  \
        bench slurm experiments/sms-lora.yaml --tasks 4 --gpus-per-task 1 --sbatch='--qos=short' --submit\n\n\
        Task I of the array runs `bench run --shard I/N` on the shared runs directory; the final job depends on the\n\
        array (afterany) and runs `bench check` and `bench report`. Without --submit the scripts are printed.\n\
        To resume after a pre-emption, submit again: runs with records are skipped, a dead task's claims taken over.")]
    Slurm(SlurmArgs),
    /// Per spec: how many runs are done, failed, claimed by a running process (which host and job), and to do.
    #[command(after_help = "Example:\n  bench status experiments/*.yaml --runs-dir /shared/runs")]
    Status(StatusArgs),
    /// Measure the transformer engine: training or inference throughput, FLOP rate, peak memory.
    #[command(after_help = "Examples:\n  bench perf --spec experiments/sms-lora.yaml --workload train --batching bucketed\n  \
        bench perf --spec experiments/sms-finetune.yaml --workload train --batching random --batches-out /tmp/b.json\n  \
        bench perf --workload infer --spec experiments/sms-frozen.yaml --json\n  bench perf --workload matmul\n\n\
        Data and method come from the spec's first run (training uses its training split, inference its\n\
        evaluation split). --batches-out writes the batches for benches/torch_perf.py, which runs PyTorch on\n\
        exactly the same ones; benches/perf.sh runs both sides and prints the ratios.")]
    Perf(PerfArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PerfWorkload {
    /// The spec's method (finetune or lora): AdamW steps at its learning rate.
    Train,
    /// Mean-pooled embeddings of the evaluation split with the spec's backbone.
    Infer,
    /// Matrix products alone: the rate the workloads are measured against.
    Matmul,
}

#[derive(Args, Debug)]
pub struct PerfArgs {
    /// The spec whose data, backbone and method are measured.
    #[arg(long, default_value = "experiments/sms-finetune.yaml")]
    pub spec: PathBuf,
    #[arg(long, value_enum, default_value = "train")]
    pub workload: PerfWorkload,
    #[arg(long, value_enum, default_value = "bucketed")]
    pub batching: crate::perf::Batching,
    /// Timed training steps (after the untimed warm-up steps).
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup_steps: usize,
    /// Inference batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Inference: embed only the first N texts of the evaluation split.
    #[arg(long)]
    pub texts: Option<usize>,
    /// Compute each batch's padding, as PyTorch's BERT does, instead of packing the real tokens (the
    /// CPU default): the engines compared at equal work.
    #[arg(long)]
    pub padded: bool,
    /// Write the batches (token ids, labels, method settings) as JSON for the PyTorch side.
    #[arg(long)]
    pub batches_out: Option<PathBuf>,
    /// One JSON object instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A self-contained HTML page, with the charts also as SVG and PNG files.
    Html,
    /// The leaderboards as Markdown tables, printed to standard output.
    Md,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Spec files, spec names or run id prefixes to include (default: every run in the store).
    pub filters: Vec<String>,
    /// Where the HTML page goes; charts go into `charts/` beside it.
    #[arg(long, default_value = "reports/index.html")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Write the charts as SVG only (no PNG).
    #[arg(long)]
    pub no_png: bool,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Run id (or a unique prefix).
    #[arg(long)]
    pub run: String,
    /// Read texts from this file, one per line, after those on the command line.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// One JSON object per line: {"text", "label", "probability"}.
    #[arg(long)]
    pub json: bool,
    /// The texts.
    pub texts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// A model folder (config.json, model.safetensors, tokenizer.json), or its name under --models-dir.
    #[arg(long)]
    pub model: String,
    #[arg(long, value_enum, default_value = "mean")]
    pub pooling: PoolingArg,
    /// Longer texts are truncated to this many tokens (at least 2: BERT's [CLS] and [SEP] tokens).
    #[arg(long, default_value_t = 128, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(2..=8192), usize::from))]
    pub max_length: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Read texts from this file, one per line, after those on the command line.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// One JSON object per line instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// The texts.
    pub texts: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PoolingArg {
    Mean,
    /// The first token's state (BERT's [CLS]).
    Cls,
    /// The last real token's state (what a decoder has read the whole text by).
    Last,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Spec files (YAML).
    #[arg(required = true)]
    pub specs: Vec<PathBuf>,
    /// Print the expanded runs and their ids; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run again even when the store already has the run.
    #[arg(long)]
    pub force: bool,
    /// Execute only the I-th of N parts of the runs (1 ≤ I ≤ N), as every process computes them alike:
    /// the tasks of a job array each run one part (`bench slurm` writes such arrays).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
}

#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// Spec files (YAML).
    #[arg(required = true)]
    pub specs: Vec<PathBuf>,
    /// Array tasks: the sweep is cut into this many shards.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub tasks: u32,
    #[arg(long)]
    pub partition: Option<String>,
    /// Wall-clock limit of each task (Slurm's format, e.g. 2:00:00).
    #[arg(long)]
    pub time: Option<String>,
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Memory of each task (e.g. 16G).
    #[arg(long)]
    pub mem: Option<String>,
    /// GPUs of each task, for specs with `device: cuda`.
    #[arg(long)]
    pub gpus_per_task: Option<usize>,
    #[arg(long)]
    pub account: Option<String>,
    /// A further `#SBATCH` line for both jobs (repeatable), e.g. --sbatch='--qos=short'.
    #[arg(long = "sbatch", value_name = "OPTIONS", allow_hyphen_values = true)]
    pub extra: Vec<String>,
    /// Where the final job writes the report.
    #[arg(long, default_value = "reports/index.html")]
    pub report: PathBuf,
    /// Submit with sbatch and print the job ids, instead of printing the scripts.
    #[arg(long)]
    pub submit: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Spec files (YAML).
    #[arg(required = true)]
    pub specs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Spec files whose floors to enforce.
    #[arg(required = true)]
    pub specs: Vec<PathBuf>,
    /// Print the verdicts as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only runs of this spec name.
    #[arg(long)]
    pub spec: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Run id (or a unique prefix).
    pub run: String,
    /// Print the raw JSON record.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DatasetsArgs {
    #[command(subcommand)]
    pub action: Option<DatasetsAction>,
}

#[derive(Subcommand, Debug)]
pub enum DatasetsAction {
    /// Download a dataset from its public source into the data directory, verifying its checksum.
    #[command(after_help = "Examples:\n  bench datasets fetch sms\n  bench datasets fetch enron --data-dir /data\n  \
        bench datasets fetch sms --base-url http://mirror.example/textbench\n\n\
        sms: UCI's smsspamcollection zip; enron: the authors' enron1-6 tarballs.\n\
        jigsaw and sms-kaggle need a Kaggle login: the command says how to get them.")]
    Fetch(FetchArgs),
    /// Write the training and evaluation split a spec's runs use, as JSONL, for other tools to train on.
    #[command(after_help = "Examples:\n  bench datasets split experiments/jigsaw-finetune.yaml --out /tmp/jigsaw-split\n\n\
        Writes <out>/train.jsonl and <out>/eval.jsonl, one {\"text\": ..., \"label\": 0|1} per line (1: the\n\
        positive class), the examples in the order textbench reads them. A notebook trained on these files\n\
        is compared with textbench's runs on identical data, not merely on the same fraction and seed.")]
    Split(SplitArgs),
}

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The spec whose dataset section (data, balance, split, seed) decides the split.
    pub spec: PathBuf,
    /// The folder to write train.jsonl and eval.jsonl into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// sms, enron, jigsaw or sms-kaggle.
    pub name: String,
    /// Download from this mirror instead (files fetched as <base-url>/<file name>).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Download again even when a verified copy is present.
    #[arg(long)]
    pub force: bool,
}
