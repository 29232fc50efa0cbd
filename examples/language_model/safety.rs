//! What keeps a run's work safe: which flags were given, Ctrl-C and SIGTERM turned into a
//! clean stop at the next update, periodic saves, and the divergence watch.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use recur::prelude::*;
use recur::{Control, Divergence, Interrupt, RunView};

use super::config::Config;
use super::guard::Given;

/// A test's view of every update (to raise the interrupt flag at a known point).
pub type Tap = Box<dyn FnMut(&UpdateReport, &AtomicBool) + Send>;

/// How a run is watched and stopped from outside.
#[derive(Default)]
pub struct Safety {
    /// Flags given explicitly on the command line.
    pub given: Given,
    /// Set by SIGINT or SIGTERM (or a test): stop and save at the next update.
    pub interrupt: Arc<AtomicBool>,
    /// Called after every update with the interrupt flag.
    pub tap: Option<Tap>,
}

impl Safety {
    /// The flags of `matches` given on the command line, and the interrupt flag registered
    /// for SIGINT and SIGTERM.
    pub fn from_command_line(matches: &ArgMatches) -> std::io::Result<Self> {
        let safety = Safety::given(matches);
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&safety.interrupt))?;
        }
        Ok(safety)
    }

    /// The flags of `matches` given on the command line; no signal handler.
    pub fn given(matches: &ArgMatches) -> Self {
        let given = matches
            .ids()
            .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
            .map(|id| id.as_str().to_owned())
            .collect();
        Safety {
            given,
            ..Safety::default()
        }
    }
}

/// The settings and the explicitly given flags of a command line (`words[0]` is the
/// program's name); no signal handler.
///
/// # Errors
/// Bad arguments, as clap reports them.
pub fn parse_from(words: &[&str]) -> Result<(Config, Safety), clap::Error> {
    let matches = Config::command().try_get_matches_from(words)?;
    Ok((Config::from_arg_matches(&matches)?, Safety::given(&matches)))
}

/// The observers that stop a run: the test tap, the interrupt flag and the divergence
/// watch (printing its report once).
pub struct Stops {
    tap: Option<Tap>,
    flag: Arc<AtomicBool>,
    /// Stops at the next update once the flag is set.
    pub interrupt: Interrupt,
    /// Reports divergence, and stops on it with `--stop-on-divergence`.
    pub divergence: Divergence,
}

impl Stops {
    /// The stops for this run.
    pub fn new(safety: &mut Safety, stop_on_divergence: bool) -> Self {
        let divergence = Divergence::new()
            .stop_on_divergence(stop_on_divergence)
            .on_report(|d| eprintln!("warning: {d}"));
        Stops {
            tap: safety.tap.take(),
            flag: Arc::clone(&safety.interrupt),
            interrupt: Interrupt::new(Arc::clone(&safety.interrupt)),
            divergence,
        }
    }

    /// Why the run stopped early, if one of these stopped it.
    pub fn reason(&self, stop_on_divergence: bool) -> Option<String> {
        if let Some(update) = self.interrupt.stopped_at() {
            return Some(format!("interrupted after update {update}"));
        }
        self.divergence
            .found()
            .filter(|_| stop_on_divergence)
            .map(|d| format!("stopped: training diverged at update {}", d.update))
    }
}

impl<F: Float> Observer<F> for Stops {
    fn on_update(
        &mut self,
        view: &RunView<'_, F>,
        report: &UpdateReport,
    ) -> recur::Result<Control> {
        if let Some(tap) = &mut self.tap {
            tap(report, &self.flag);
        }
        let interrupt = self.interrupt.on_update(view, report)?;
        Ok(interrupt.and(self.divergence.on_update(view, report)?))
    }
}
