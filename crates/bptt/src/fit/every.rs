//! A periodic action during a run: every `n` updates, call a closure that sees the run
//! (a program saves its checkpoint this way).

use recur_core::{Error, Float, Result};

use super::observer::{Control, Observer, RunView};
use crate::UpdateReport;

/// Calls an action after every `n`-th update (counted over the whole run, resumed parts
/// included, so a resumed run keeps the same rhythm). An error from the action stops the
/// run with that error.
///
/// ```
/// use recur_bptt::{Every, RunView};
///
/// let mut saved = Vec::new();
/// let every = Every::updates(100, |view: &RunView<'_, f32>| {
///     saved.push(view.state.updates); // a program would write its checkpoint here
///     Ok(())
/// })?;
/// # drop(every);
/// # Ok::<(), recur_core::Error>(())
/// ```
pub struct Every<A> {
    every: u64,
    action: A,
}

impl<A> Every<A> {
    /// Runs `action` after every `every ≥ 1` updates.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero.
    pub fn updates<F: Float>(every: u64, action: A) -> Result<Self>
    where
        A: FnMut(&RunView<'_, F>) -> Result<()>,
    {
        if every == 0 {
            return Err(Error::config("every", "must be at least 1 update"));
        }
        Ok(Every { every, action })
    }
}

impl<A> std::fmt::Debug for Every<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Every")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl<F: Float, A: FnMut(&RunView<'_, F>) -> Result<()>> Observer<F> for Every<A> {
    fn on_update(&mut self, view: &RunView<'_, F>, report: &UpdateReport) -> Result<Control> {
        if report.update.is_multiple_of(self.every) {
            (self.action)(view)?;
        }
        Ok(Control::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fit_run, stream_data};
    use super::*;
    use crate::RunState;

    #[test]
    fn acts_on_every_nth_update_with_the_state_of_that_update() {
        let mut seen = Vec::new();
        let mut every = Every::updates(4, |view: &RunView<'_, f64>| {
            seen.push(view.state.updates);
            Ok(())
        })
        .unwrap();
        let mut state = RunState::default();
        fit_run()
            .fit(&mut stream_data(), &mut state, &mut [&mut every])
            .unwrap();
        let expected: Vec<u64> = (1..=state.updates).filter(|u| u % 4 == 0).collect();
        assert!(!expected.is_empty());
        assert_eq!(seen, expected);
    }

    #[test]
    fn zero_is_refused_and_a_failing_action_stops_the_run() {
        let none = |_: &RunView<'_, f64>| Ok(());
        assert!(Every::updates(0, none).is_err());
        let mut failing = Every::updates(3, |_: &RunView<'_, f64>| {
            Err(Error::config("save", "disk full"))
        })
        .unwrap();
        let mut state = RunState::default();
        let result = fit_run().fit(&mut stream_data(), &mut state, &mut [&mut failing]);
        assert!(result.is_err());
        assert_eq!(state.updates, 3);
    }
}
