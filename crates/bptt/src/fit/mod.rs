//! The training loop shared by every program: epochs of batches, periodic evaluation on
//! held-out data, the learning-rate schedule, and observers that watch (and may stop) the
//! run. Modelled on an executor: [`Trainer::fit`] drives; what a program adds (a progress
//! bar, a log, checkpoints, early stopping) is an [`Observer`] whose methods default to
//! doing nothing.
//!
//! - this file: [`Trainer::fit`] and its settings ([`Fit`]);
//! - `data`: [`Batches`], the training or validation data of an epoch;
//! - `state`: [`RunState`] and [`Evaluation`], what a run has done (saved for resuming);
//! - `observer`: the [`Observer`] trait and the observers that need no dependency;
//! - `divergence`: [`Divergence`], which reports (and may stop) a diverging run;
//! - `interrupt`: [`Interrupt`], which stops at the next update once a flag is set;
//! - `every`: [`Every`], a periodic action (a checkpoint save);
//! - `deadline`: [`Deadline`], which ends the run once a time budget is spent.

mod data;
mod deadline;
mod divergence;
mod every;
mod interrupt;
mod observer;
mod state;
#[cfg(test)]
mod testing;

pub use data::{Batches, TokenBatches};
pub use deadline::Deadline;
pub use divergence::{Diverged, Divergence, DivergenceCause};
pub use every::Every;
pub use interrupt::Interrupt;
pub use observer::{Control, EarlyStop, LossLog, Observer, RunView, StopAfter};
pub use state::{Evaluation, RunState, StreamPoint};

use std::time::Instant;

use recur_cell::{Cell, Readout};
use recur_core::{Error, Float, Result};
use recur_loss::Loss;
use recur_optim::Optimizer;

use crate::{Bptt, Model, SeqBatch, Trainer, Truncation, UpdateReport};

/// When to evaluate during [`Trainer::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvaluateEvery {
    /// After every epoch.
    #[default]
    Epoch,
    /// Every this many updates (and at the end of the run).
    Updates(u64),
}

/// The settings of one [`Trainer::fit`] run.
pub struct Fit<'a, F> {
    /// Epochs to train; a resumed run stops when its [`RunState::epoch`] reaches this.
    pub epochs: usize,
    /// When to evaluate.
    pub evaluate_every: EvaluateEvery,
    /// Held-out data, never trained on; without it evaluations report the training loss
    /// only and the schedule follows that.
    pub valid: Option<&'a mut dyn Batches<F>>,
    /// Watchers of the run, called in order.
    pub observers: Vec<&'a mut dyn Observer<F>>,
}

impl<F> std::fmt::Debug for Fit<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fit")
            .field("epochs", &self.epochs)
            .field("evaluate_every", &self.evaluate_every)
            .field("valid", &self.valid.is_some())
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl<'a, F: Float> Fit<'a, F> {
    /// `epochs` epochs, evaluating after each, no validation data, no observers.
    pub fn epochs(epochs: usize) -> Self {
        Fit {
            epochs,
            evaluate_every: EvaluateEvery::Epoch,
            valid: None,
            observers: Vec::new(),
        }
    }

    /// Evaluates on `valid` (held-out data).
    pub fn validate_on(mut self, valid: &'a mut dyn Batches<F>) -> Self {
        self.valid = Some(valid);
        self
    }

    /// Sets when to evaluate.
    pub fn evaluate_every(mut self, every: EvaluateEvery) -> Self {
        self.evaluate_every = every;
        self
    }

    /// Adds an observer (called after those added before it).
    pub fn observe(mut self, observer: &'a mut dyn Observer<F>) -> Self {
        self.observers.push(observer);
        self
    }
}

/// Everything the loop carries besides the trainer and the model.
struct Run<'r, 'a, F: Float, C: Cell<F>, R: Readout<F>> {
    fit: Fit<'a, F>,
    state: &'r mut RunState,
    loss: &'r dyn Loss<F>,
    /// A separate engine for evaluations, so a streamed batch's workspace survives them.
    evaluator: Bptt<F, C, R>,
    /// The state carried from one streamed training batch to the next within an epoch.
    carried: Option<ndarray::Array2<F>>,
    /// Steps of the current streamed batch trained on before this run (a resumed stream).
    offset: usize,
    /// Tokens and time at the last evaluation, for the throughput it reports.
    since: (u64, Instant),
    /// [`RunState::seconds`] when this run began, and when it began.
    clock: (f64, Instant),
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Trainer<F, C, R> {
    /// Trains `model` on `train` for `fit.epochs` epochs from where `state` stands (a
    /// fresh [`RunState::default`] or one saved with a checkpoint): evaluates as
    /// `fit.evaluate_every` says (and once before the first update of a fresh run), steps
    /// the learning-rate schedule of [`RunState::schedule`], and calls the observers.
    /// Returns when the epochs are done or an observer answers [`Control::Finish`] (after
    /// a closing evaluation) or [`Control::Stop`]; `state` then says where the run stands,
    /// and [`RunState::seconds`] how long it has trained.
    ///
    /// Batch data ([`Batches::streamed`] false) gives one update per batch, in the order
    /// the data gives for each epoch, and a stopped run resumes at the next batch. Streamed
    /// data gives one update per backward pass of the truncation scheme over each batch,
    /// with the state carried through the batch and from batch to batch; [`RunState::stream`]
    /// records the offset and the carried state after every update, so a stopped streamed
    /// run resumes at the update where it stopped.
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use recur_bptt::{Fit, Model, RunState, TokenBatches, StopAfter, Trainer, Truncation};
    /// use recur_cell::{ElmanConfig, LinearConfig, Tanh};
    /// use recur_loss::{Reduction, SoftmaxCrossEntropy};
    /// use recur_optim::Sgd;
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let cell = ElmanConfig::new(5, 8).init::<f64, _>(Tanh, &mut rng)?;
    /// let mut model = Model::new(cell, LinearConfig::new(8, 5).init(&mut rng)?)?;
    /// let sgd = Box::new(Sgd::new(0.5)?);
    /// let mut trainer = Trainer::new(&model, Truncation::full(), Reduction::Mean, sgd);
    /// // Two sentences to learn, and one held out.
    /// let mut train = TokenBatches::sentences(vec![
    ///     (vec![0, 1, 2, 3], vec![1, 2, 3, 4]),
    ///     (vec![0, 2, 4], vec![2, 4, 1]),
    /// ])?;
    /// let mut valid = TokenBatches::sentences(vec![(vec![0, 1, 2], vec![1, 2, 3])])?;
    /// let mut stop = StopAfter(150);
    /// let mut state = RunState::default();
    /// let fit = Fit::epochs(100).validate_on(&mut valid).observe(&mut stop);
    /// trainer.fit(&mut model, &SoftmaxCrossEntropy, &mut train, fit, &mut state)?;
    /// assert_eq!(state.updates, 150);
    /// let (first, last) = (&state.evaluations[0], state.evaluations.last().unwrap());
    /// assert!(last.valid_loss.unwrap() < first.valid_loss.unwrap());
    /// # Ok::<(), recur_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// Whatever training, evaluation or an observer reports ([`Error::NonFinite`] for a
    /// diverged loss); [`Error::Empty`] for training data without batches.
    pub fn fit(
        &mut self,
        model: &mut Model<F, C, R>,
        loss: &dyn Loss<F>,
        train: &mut dyn Batches<F>,
        fit: Fit<'_, F>,
        state: &mut RunState,
    ) -> Result<()> {
        if train.is_empty() {
            return Err(Error::Empty {
                op: "Trainer::fit",
                what: "training data",
            });
        }
        self.set_counters(state.updates, state.tokens);
        let (carried, offset) = match &state.stream {
            Some(point) => (Some(point.carried()?), point.offset),
            None => (None, 0),
        };
        let mut run = Run {
            fit,
            loss,
            evaluator: Bptt::new(Truncation::full(), self.engine().reduction()),
            carried,
            offset,
            since: (state.tokens, Instant::now()),
            clock: (state.seconds, Instant::now()),
            state,
        };
        let mut control = Control::Continue;
        if run.state.evaluations.is_empty() {
            // Every curve starts at the loss before training.
            control = run.evaluate(model, self.optimizer_mut())?;
        }
        while control == Control::Continue && run.state.epoch < run.fit.epochs {
            control = self.fit_epoch(model, train, &mut run)?;
            if control != Control::Continue {
                break;
            }
            run.state.epoch += 1;
            run.state.position = 0;
            run.state.stream = None;
            if run.fit.evaluate_every == EvaluateEvery::Epoch {
                control = run.evaluate(model, self.optimizer_mut())?;
            }
            let view = view(run.state, model, self.optimizer(), None);
            control = control.and(notify(&mut run.fit.observers, |o| o.on_epoch_end(&view))?);
        }
        // A finished run ends on an evaluation of its last weights; a stopped one does not
        // (an interrupt should not wait for one, a diverged model cannot be evaluated).
        let due = match control {
            Control::Continue => matches!(run.fit.evaluate_every, EvaluateEvery::Updates(_)),
            Control::Finish => true,
            Control::Stop => false,
        };
        if due && run.state.since_evaluation.1 > 0 {
            run.evaluate(model, self.optimizer_mut())?;
        }
        run.tick();
        let view = view(run.state, model, self.optimizer(), None);
        for observer in &mut run.fit.observers {
            observer.on_finish(&view)?;
        }
        Ok(())
    }

    /// The rest of the current epoch.
    fn fit_epoch(
        &mut self,
        model: &mut Model<F, C, R>,
        train: &mut dyn Batches<F>,
        run: &mut Run<'_, '_, F, C, R>,
    ) -> Result<Control> {
        let (epoch, streamed) = (run.state.epoch, train.streamed());
        if run.state.position == 0 && run.offset == 0 {
            run.carried = None;
        }
        while run.state.position < train.len() {
            let batch = train.get(epoch, run.state.position)?;
            let (control, finished) = if streamed {
                self.fit_stream(model, batch, run)?
            } else {
                let report = self.train_batch(model, run.loss, batch, None)?;
                let (engine, optimizer) = self.engine_and_optimizer();
                let control = run.after_update(model, optimizer, Some(engine.logits()), &report)?;
                (control, true)
            };
            if finished {
                run.state.position += 1;
                if let Some(point) = &mut run.state.stream {
                    point.offset = 0;
                }
            }
            if control != Control::Continue {
                return Ok(control);
            }
        }
        Ok(Control::Continue)
    }

    /// One streamed batch, from the steps a resumed run already trained on, with the state
    /// carried on; records where the stream stands after every update (in
    /// [`RunState::stream`]). Returns the observers' answer and whether the batch is done.
    fn fit_stream(
        &mut self,
        model: &mut Model<F, C, R>,
        batch: SeqBatch<'_, F>,
        run: &mut Run<'_, '_, F, C, R>,
    ) -> Result<(Control, bool)> {
        let stride = self.engine().truncation().stride().unwrap_or(usize::MAX);
        let offset = std::mem::take(&mut run.offset);
        let total = batch.seq_len();
        let batch = data::steps_from(batch, offset)?;
        let carried = run.carried.take();
        let initial = carried.as_ref().map(|s| s.view());
        let loss = run.loss;
        let mut done = offset;
        let mut after = |model: &Model<F, C, R>,
                         opt: &mut dyn Optimizer<F>,
                         r: &UpdateReport,
                         state: ndarray::ArrayView2<'_, F>| {
            done = done.saturating_add(stride).min(total);
            run.state
                .stream
                .get_or_insert_with(StreamPoint::default)
                .record(done, state);
            run.after_update(model, opt, None, r)
        };
        let (state, control) = self.stream_with(model, loss, batch, initial, &mut after)?;
        run.carried = Some(state);
        Ok((control, done == total))
    }
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Run<'_, '_, F, C, R> {
    /// Brings [`RunState::seconds`] up to now.
    fn tick(&mut self) {
        self.state.seconds = self.clock.0 + self.clock.1.elapsed().as_secs_f64();
    }

    /// After an update: counters, running loss, schedule step, evaluation when due,
    /// observers.
    fn after_update(
        &mut self,
        model: &Model<F, C, R>,
        optimizer: &mut dyn Optimizer<F>,
        logits: Option<ndarray::ArrayView2<'_, F>>,
        report: &UpdateReport,
    ) -> Result<Control> {
        self.state.updates = report.update;
        self.state.tokens = report.tokens;
        self.tick();
        self.state.since_evaluation.0 += report.loss.total;
        self.state.since_evaluation.1 += report.loss.counted;
        self.state.schedule.on_step(optimizer)?;
        let mut control = Control::Continue;
        if let EvaluateEvery::Updates(every) = self.fit.evaluate_every {
            if every > 0 && report.update.is_multiple_of(every) {
                control = self.evaluate(model, optimizer)?;
            }
        }
        let logits = logits.map(|l| l.reborrow());
        let view = view(self.state, model, optimizer, logits);
        Ok(control.and(notify(&mut self.fit.observers, |o| {
            o.on_update(&view, report)
        })?))
    }

    /// Evaluates, records the evaluation, steps the schedule on it, tells the observers.
    fn evaluate(
        &mut self,
        model: &Model<F, C, R>,
        optimizer: &mut dyn Optimizer<F>,
    ) -> Result<Control> {
        // The time stamp is taken before this evaluation's own work: the seconds it took
        // the run to reach these weights.
        self.tick();
        let elapsed_s = self.state.seconds;
        let valid_loss = match self.fit.valid.as_deref_mut() {
            Some(valid) => Some(
                mean_loss(&mut self.evaluator, model, self.loss, valid).map_err(|e| match e {
                    Error::NonFinite { what, .. } => Error::NonFinite {
                        what,
                        update: self.state.updates,
                    },
                    other => other,
                })?,
            ),
            None => None,
        };
        let (sum, counted) = self.state.since_evaluation;
        let train_loss = (counted > 0).then(|| sum / counted as f64);
        let seconds = self.since.1.elapsed().as_secs_f64();
        let evaluation = Evaluation {
            update: self.state.updates,
            epoch: self.state.epoch,
            tokens: self.state.tokens,
            train_loss,
            valid_loss,
            learning_rate: optimizer.learning_rate().to_f64_lossless(),
            tokens_per_s: (self.state.tokens - self.since.0) as f64 / seconds.max(1e-9),
            elapsed_s,
        };
        if let Some(watched) = valid_loss.or(train_loss) {
            self.state.schedule.on_evaluation(watched, optimizer)?;
        }
        self.state.evaluations.push(evaluation);
        self.state.since_evaluation = (0.0, 0);
        self.since = (self.state.tokens, std::time::Instant::now());
        let view = view(self.state, model, optimizer, None);
        notify(&mut self.fit.observers, |o| {
            o.on_evaluation(&view, &evaluation)
        })
    }
}

/// What observers see now (`logits` only right after a batch update).
fn view<'v, F: Float, C: Cell<F>, R: Readout<F>>(
    state: &'v RunState,
    model: &'v Model<F, C, R>,
    optimizer: &'v dyn Optimizer<F>,
    logits: Option<ndarray::ArrayView2<'v, F>>,
) -> RunView<'v, F> {
    RunView {
        params: model,
        logits,
        optimizer,
        state,
    }
}

/// Calls every observer (all of them, even after one asks to stop) and combines answers.
fn notify<F: Float>(
    observers: &mut [&mut dyn Observer<F>],
    mut call: impl FnMut(&mut dyn Observer<F>) -> Result<Control>,
) -> Result<Control> {
    let mut control = Control::Continue;
    for observer in observers.iter_mut() {
        control = control.and(call(&mut **observer)?);
    }
    Ok(control)
}

/// Mean loss per counted row over every batch of `data` (epoch 0's order), each from the
/// zero state, or, for streamed data, with the state carried from batch to batch; 0 for
/// data without counted rows.
///
/// # Errors
/// Evaluation errors; [`Error::NonFinite`] for a NaN or infinite loss (with update 0:
/// this function does not know the run's count; [`Trainer::fit`] reports its own).
pub fn mean_loss<F: Float, C: Cell<F>, R: Readout<F>>(
    engine: &mut Bptt<F, C, R>,
    model: &Model<F, C, R>,
    loss: &dyn Loss<F>,
    data: &mut dyn Batches<F>,
) -> Result<f64> {
    let (mut total, mut counted) = (0.0, 0);
    let mut carried: Option<ndarray::Array2<F>> = None;
    for index in 0..data.len() {
        let streamed = data.streamed();
        let batch: SeqBatch<'_, F> = data.get(0, index)?;
        let initial = carried.as_ref().map(|s| s.view());
        let report = engine.evaluate(model, loss, batch, initial)?;
        if streamed {
            carried = Some(engine.final_state().to_owned());
        }
        total += report.total;
        counted += report.counted;
    }
    let mean = if counted == 0 {
        0.0
    } else {
        total / counted as f64
    };
    if !mean.is_finite() {
        return Err(Error::NonFinite {
            what: "evaluation loss",
            update: 0,
        });
    }
    Ok(mean)
}
