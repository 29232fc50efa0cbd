//! `--schedule`: the library's learning-rate schedules by name, with a cosine that spans
//! the run's own number of updates.

use std::str::FromStr;

use recur::optim::Schedule;

use super::BoxError;

/// A schedule as given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleArg {
    /// Cosine annealing over all the updates of the run, down to this share of the rate.
    Cosine(f64),
    /// Any other schedule, complete as given.
    Fixed(Schedule),
}

impl FromStr for ScheduleArg {
    type Err = BoxError;

    fn from_str(spec: &str) -> Result<Self, BoxError> {
        let lower = spec.trim().to_ascii_lowercase();
        let fields: Vec<&str> = lower.split(':').collect();
        Ok(match fields.as_slice() {
            ["halve"] => ScheduleArg::Fixed(Schedule::halve_on_plateau()),
            ["cosine"] => ScheduleArg::Cosine(0.0),
            // `cosine:0.1` is a floor; `cosine:STEPS[:MIN]` is the library's fixed length.
            ["cosine", min] if min.parse::<f64>().is_ok_and(|m| (0.0..1.0).contains(&m)) => {
                ScheduleArg::Cosine(min.parse()?)
            }
            _ => ScheduleArg::Fixed(spec.parse()?),
        })
    }
}

impl ScheduleArg {
    /// The schedule for a run of `updates` updates in all.
    ///
    /// # Errors
    /// A cosine floor outside [0, 1].
    pub fn build(&self, updates: u64) -> Result<Schedule, BoxError> {
        Ok(match self {
            ScheduleArg::Cosine(min) => Schedule::cosine(updates.max(1), *min)?,
            ScheduleArg::Fixed(schedule) => schedule.clone(),
        })
    }
}
