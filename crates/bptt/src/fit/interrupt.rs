//! Stopping a run from outside: a flag another thread (or a signal handler the program
//! installs) sets, checked at every update boundary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use recur_core::{Float, Result};

use super::observer::{Control, Observer, RunView};
use crate::UpdateReport;

/// Stops the run at the first update boundary after its flag is set, so the run state
/// (and a checkpoint taken from it) says exactly where training stood.
///
/// The library installs no signal handler: a program that wants Ctrl-C to stop cleanly
/// registers the flag itself, for instance with the `signal-hook` crate's
/// `flag::register` for SIGINT and SIGTERM.
///
/// ```
/// use std::sync::{atomic::AtomicBool, Arc};
/// use recur_bptt::Interrupt;
///
/// let flag = Arc::new(AtomicBool::new(false));
/// let interrupt = Interrupt::new(Arc::clone(&flag));
/// assert_eq!(interrupt.stopped_at(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    stopped_at: Option<u64>,
}

impl Interrupt {
    /// Watches `flag`: once it is `true`, the run stops after the update in progress.
    pub fn new(flag: Arc<AtomicBool>) -> Self {
        Interrupt {
            flag,
            stopped_at: None,
        }
    }

    /// The update after which this observer stopped the run, if it did.
    pub fn stopped_at(&self) -> Option<u64> {
        self.stopped_at
    }
}

impl<F: Float> Observer<F> for Interrupt {
    fn on_update(&mut self, _: &RunView<'_, F>, report: &UpdateReport) -> Result<Control> {
        if !self.flag.load(Ordering::SeqCst) {
            return Ok(Control::Continue);
        }
        self.stopped_at.get_or_insert(report.update);
        Ok(Control::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fit_run, stream_data, Raise};
    use super::*;
    use crate::RunState;

    /// Stopping a streamed run at update 7 (inside a batch), saving its state through serde
    /// and resuming continues from the same offset and carried state: the same number of
    /// updates and evaluations, the same parameters bit for bit. (This needs serde_json's
    /// exact float parsing, `float_roundtrip`: its default parser can miss by an ulp, and
    /// one ulp in the carried state moves every later update.)
    #[test]
    fn a_stream_stopped_between_updates_resumes_where_it_stood() {
        let mut whole = fit_run();
        let mut state = RunState::default();
        whole.fit(&mut stream_data(), &mut state, &mut []).unwrap();
        assert!(state.updates > 7, "{} updates", state.updates);

        let flag = Arc::new(AtomicBool::new(false));
        let (mut raise, mut interrupt) = (Raise::at(7, &flag), Interrupt::new(flag));
        let mut first = fit_run();
        let mut saved = RunState::default();
        first
            .fit(
                &mut stream_data(),
                &mut saved,
                &mut [&mut raise, &mut interrupt],
            )
            .unwrap();
        assert_eq!((saved.updates, interrupt.stopped_at()), (7, Some(7)));
        let point = saved
            .stream
            .clone()
            .expect("a streamed run records its point");
        assert_eq!((saved.position, point.offset, point.rows), (0, 35, 1));

        let text = serde_json::to_string(&saved).unwrap();
        let mut resumed: RunState = serde_json::from_str(&text).unwrap();
        let mut second = first.reopen();
        second
            .fit(&mut stream_data(), &mut resumed, &mut [])
            .unwrap();
        assert_eq!(resumed.updates, state.updates);
        assert_eq!(resumed.evaluations.len(), state.evaluations.len());
        let worst = second
            .params()
            .iter()
            .zip(whole.params())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst == 0.0,
            "largest difference {worst:e}: not bit-identical"
        );
        // Restarting the batch from its start (the old behaviour) is far off.
        let mut restarted = saved.clone();
        restarted.stream = None;
        let mut third = first.reopen();
        third
            .fit(&mut stream_data(), &mut restarted, &mut [])
            .unwrap();
        let off = third
            .params()
            .iter()
            .zip(whole.params())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            off > 1e-6,
            "restarting the batch should change the run ({off:e})"
        );
    }

    #[test]
    fn an_unset_flag_never_stops() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut interrupt = Interrupt::new(flag);
        let mut run = fit_run();
        let mut state = RunState::default();
        run.fit(&mut stream_data(), &mut state, &mut [&mut interrupt])
            .unwrap();
        assert_eq!(interrupt.stopped_at(), None);
        assert_eq!(state.epoch, 2);
    }
}
