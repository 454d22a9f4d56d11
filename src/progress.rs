//! Progress bars (indicatif) that stay out of the way: hidden with `--quiet` or when stderr is not a
//! terminal, and log lines printed through them so bars and logs never overwrite each other.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        Progress { multi: MultiProgress::with_draw_target(target), quiet }
    }

    /// A progress handle that draws nothing (library use, tests).
    pub fn hidden() -> Self {
        Self::new(true)
    }

    /// A counted bar with rate and ETA.
    pub fn bar(&self, len: u64, message: impl Into<String>, unit: &str) -> ProgressBar {
        let style = ProgressStyle::with_template(&format!(
            "{{spinner:.green}} {{msg:<24}} [{{bar:30.cyan/blue}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}})"
        ))
        .expect("valid template")
        .progress_chars("=> ");
        self.add(ProgressBar::new(len).with_style(style).with_message(message.into()))
    }

    /// A byte-counting bar for downloads.
    pub fn bytes(&self, len: Option<u64>, message: impl Into<String>) -> ProgressBar {
        let style = ProgressStyle::with_template("{spinner:.green} {msg:<24} [{bar:30.cyan/blue}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> ");
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        self.add(bar.with_style(style).with_message(message.into()))
    }

    /// A spinner for steps whose length is unknown.
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        let style = ProgressStyle::with_template("{spinner:.green} {msg} ({elapsed})").expect("valid template");
        let bar = self.add(ProgressBar::new_spinner().with_style(style).with_message(message.into()));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn add(&self, bar: ProgressBar) -> ProgressBar {
        self.multi.add(bar)
    }

    /// Prints a status line above the bars (plainly when they are hidden; not at all with --quiet).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.multi.is_hidden() {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", line.as_ref());
        } else {
            let _ = self.multi.println(line.as_ref());
        }
    }

    /// A writer for tracing that suspends the bars while a log line is written.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter { multi: self.multi.clone() }
    }
}

/// `tracing_subscriber` writer that prints log lines without tearing the progress bars.
#[derive(Clone)]
pub struct LogWriter {
    multi: MultiProgress,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.multi.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
