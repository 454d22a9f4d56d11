//! The CLI edge: parse arguments, set up logging and threads, run one command, map errors to exit codes
//! (0 success, 1 failed runs or floors, 2 usage and input errors).

use clap::Parser;
use textbench::cli::Cli;
use textbench::error::{is_usage_error, EXIT_FAILED, EXIT_USAGE};
use textbench::progress::Progress;

fn init_logging(verbose: u8, progress: &Progress) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal; a log file or a CI log gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(progress.log_writer()).with_target(false).with_ansi(ansi).init();
}

/// glibc returns large freed blocks to the kernel (mmap/munmap, heap trimming), so a numeric loop that
/// allocates a fresh matrix per step pays page faults for every one: measured, sys time equalled user
/// time. Keeping freed memory in the heap for reuse removes that cost (FINDINGS.md measured the same for
/// candle). The numbers are upper bounds on what is kept, not allocations.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// candle asks for its thread count before every matrix product, and unless RAYON_NUM_THREADS is set
/// that means parsing /proc/cpuinfo (num_cpus) each time: measured, about 10% of a training step.
/// Setting the variable once at start-up, to the count candle would find (or to --threads, so that
/// candle's products and the rayon pool agree), makes each ask a lookup. Called while the process has
/// one thread, before anything reads the environment concurrently.
///
/// Also: candle's element-wise worker threads spin up to 25,000 times waiting for the next op before
/// they sleep, and with as many threads as cores that spinning takes cycles from the matrix products
/// running meanwhile. 1,000 spins measured 8% faster fine-tuning on 2 cores (30.7 → 33.5 samples/s).
///
/// And those element-wise threads are a second pool beside rayon's (products, fused ops): what is left
/// for them in training is mostly candle's gradient accumulation, passes over memory, and every such op
/// hands work to them and back. With the pool reduced to the calling thread (CANDLE_NUM_THREADS=1),
/// paired runs on 2 cores measured fine-tuning 64.8 → 69.1 samples/s and split LoRA 112.6 → 120.1
/// (docs/performance.md, finding 17); inference, with few such ops, was unchanged. Measured on 2 cores
/// only: on a large machine, setting CANDLE_NUM_THREADS may pay. Any variable the user sets is left alone.
fn tune_threads(threads: Option<usize>) {
    match threads {
        Some(n) => std::env::set_var("RAYON_NUM_THREADS", n.to_string()),
        None if std::env::var_os("RAYON_NUM_THREADS").is_none() => std::env::set_var("RAYON_NUM_THREADS", candle_core::utils::get_num_threads().to_string()),
        None => {}
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "1000");
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

fn main() {
    keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    tune_threads(cli.global.threads);
    let progress = Progress::new(cli.global.quiet);
    init_logging(cli.global.verbose, &progress);
    if let Some(n) = cli.global.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            eprintln!("error: cannot set {n} threads: {e}");
            std::process::exit(EXIT_USAGE);
        }
    }
    match textbench::commands::dispatch(cli, &progress) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(if is_usage_error(&err) { EXIT_USAGE } else { EXIT_FAILED });
        }
    }
}
