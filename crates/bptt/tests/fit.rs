//! The shared training loop: stopping and resuming, early stopping, the loss log, and
//! streamed data.

mod common;

use common::token_model;
use recur_bptt::{
    Batches, Control, EarlyStop, Evaluation, Fit, LossLog, Observer, RunState, RunView, StopAfter,
    TokenBatches, Trainer, Truncation,
};
use recur_core::params;
use recur_loss::{Reduction, SoftmaxCrossEntropy};
use recur_optim::{Adam, Schedule};

fn sentences(count: usize, vocab: usize, seed: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    (0..count)
        .map(|i| {
            let len = 3 + (i * 7 + seed) % 5;
            let x: Vec<usize> = (0..len).map(|t| (i * 3 + t * 5 + seed) % vocab).collect();
            let y: Vec<usize> = (0..len)
                .map(|t| (i * 3 + t * 5 + seed + 1) % vocab)
                .collect();
            (x, y)
        })
        .collect()
}

fn adam() -> Box<Adam<f64>> {
    Box::new(Adam::new(0.02, 0.9, 0.999, 1e-8).unwrap())
}

/// Trains `epochs` epochs, stopping after `stop` updates if given; returns the weights'
/// bits and the state.
fn run(
    model: &mut recur_bptt::Model<f64, recur_cell::Elman<f64, recur_cell::Tanh>>,
    trainer: &mut Trainer<f64, recur_cell::Elman<f64, recur_cell::Tanh>>,
    state: &mut RunState,
    stop: Option<u64>,
) {
    let mut train = TokenBatches::sentences(sentences(13, 7, 1))
        .unwrap()
        .batch_size(3)
        .unwrap()
        .shuffled(5);
    let mut valid = TokenBatches::sentences(sentences(4, 7, 2)).unwrap();
    let mut stop = StopAfter(stop.unwrap_or(u64::MAX));
    let fit = Fit::epochs(4).validate_on(&mut valid).observe(&mut stop);
    trainer
        .fit(model, &SoftmaxCrossEntropy, &mut train, fit, state)
        .unwrap();
}

#[test]
fn a_stopped_and_resumed_run_equals_an_uninterrupted_one_to_the_bit() {
    let fresh = || {
        let model = token_model::<f64>(7, 6, true, 3);
        let trainer = Trainer::new(
            &model,
            Truncation::per_output(2).unwrap(),
            Reduction::Mean,
            adam(),
        );
        (
            model,
            trainer,
            RunState::with_schedule(Schedule::halve_on_plateau()),
        )
    };
    let (mut whole, mut trainer, mut state) = fresh();
    run(&mut whole, &mut trainer, &mut state, None);
    assert_eq!(state.updates, 4 * 5);
    assert_eq!(
        state.evaluations.len(),
        5,
        "one before training, one per epoch"
    );

    let (mut first, mut trainer, mut halfway) = fresh();
    run(&mut first, &mut trainer, &mut halfway, Some(7));
    assert_eq!(
        (halfway.updates, halfway.epoch, halfway.position),
        (7, 1, 2)
    );
    // Resume: a new trainer with the saved optimizer state, the saved run state.
    let optimizer = trainer.optimizer().state().into_optimizer().unwrap();
    let mut resumed = Trainer::new(
        &first,
        Truncation::per_output(2).unwrap(),
        Reduction::Mean,
        optimizer,
    );
    run(&mut first, &mut resumed, &mut halfway, None);
    let bits = |m: &dyn recur_core::ParamSet<f64>| -> Vec<u64> {
        params::flatten(m).iter().map(|v| v.to_bits()).collect()
    };
    assert_eq!(bits(&first), bits(&whole));
    assert_eq!(halfway.updates, state.updates);
    let valid = |s: &RunState| {
        s.evaluations
            .iter()
            .map(|e| e.valid_loss.unwrap().to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(valid(&halfway), valid(&state));
}

/// Records what it was told.
#[derive(Default)]
struct Recorder {
    updates: u64,
    evaluations: usize,
    epochs: usize,
    finished: bool,
}

impl Observer<f64> for Recorder {
    fn on_update(
        &mut self,
        view: &RunView<'_, f64>,
        _: &recur_bptt::UpdateReport,
    ) -> recur_core::Result<Control> {
        self.updates += 1;
        assert!(view.logits.is_some_and(|l| l.ncols() == 7));
        Ok(Control::Continue)
    }
    fn on_evaluation(
        &mut self,
        _: &RunView<'_, f64>,
        _: &Evaluation,
    ) -> recur_core::Result<Control> {
        self.evaluations += 1;
        Ok(Control::Continue)
    }
    fn on_epoch_end(&mut self, _: &RunView<'_, f64>) -> recur_core::Result<Control> {
        self.epochs += 1;
        Ok(Control::Continue)
    }
    fn on_finish(&mut self, _: &RunView<'_, f64>) -> recur_core::Result<()> {
        self.finished = true;
        Ok(())
    }
}

#[test]
fn early_stopping_and_the_log_see_every_evaluation() {
    let mut model = token_model::<f64>(7, 6, true, 4);
    // A rate so high the validation loss soon stops improving.
    let sgd = Box::new(recur_optim::Sgd::new(30.0).unwrap());
    let mut trainer = Trainer::new(&model, Truncation::full(), Reduction::Mean, sgd);
    let mut train = TokenBatches::sentences(sentences(6, 7, 1)).unwrap();
    let mut valid = TokenBatches::sentences(sentences(3, 7, 9)).unwrap();
    let (mut early, mut log, mut recorder) = (
        EarlyStop::new(2).unwrap(),
        LossLog::new(Vec::new()),
        Recorder::default(),
    );
    let mut state = RunState::default();
    let fit = Fit::epochs(50)
        .validate_on(&mut valid)
        .observe(&mut early)
        .observe(&mut log)
        .observe(&mut recorder);
    trainer
        .fit(
            &mut model,
            &SoftmaxCrossEntropy,
            &mut train,
            fit,
            &mut state,
        )
        .unwrap();
    assert!(state.epoch < 50, "early stopping never fired");
    let best = state.best().unwrap().valid_loss.unwrap();
    let tail: Vec<f64> = state
        .evaluations
        .iter()
        .rev()
        .take(2)
        .map(|e| e.valid_loss.unwrap())
        .collect();
    assert!(tail.iter().all(|&l| l >= best), "{tail:?} vs best {best}");
    let text = String::from_utf8(log.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], LossLog::<Vec<u8>>::HEADER);
    assert_eq!(lines.len(), 1 + state.evaluations.len());
    assert_eq!(recorder.evaluations, state.evaluations.len());
    assert_eq!(recorder.updates, state.updates);
    assert_eq!(recorder.epochs, state.epoch);
    assert!(recorder.finished);
    // Perplexity is exp of the loss, in the log as in the evaluation.
    let last = state.evaluations.last().unwrap();
    let cells: Vec<&str> = lines.last().unwrap().split(',').collect();
    let ppl: f64 = cells[6].parse().unwrap();
    assert!((ppl - last.valid_loss.unwrap().exp()).abs() < 1e-3 * ppl);
}

#[test]
fn a_streamed_epoch_equals_train_stream_over_the_same_text() {
    let text: Vec<usize> = (0..301).map(|i| (i * i + 3 * i) % 7).collect();
    let run_fit = |pieces: usize| {
        let mut model = token_model::<f64>(7, 6, false, 8);
        let mut trainer = Trainer::new(
            &model,
            Truncation::chunked(10).unwrap(),
            Reduction::Mean,
            adam(),
        );
        let mut data = TokenBatches::stream(text.clone(), pieces).unwrap();
        assert!(Batches::<f64>::streamed(&data));
        trainer
            .fit(
                &mut model,
                &SoftmaxCrossEntropy,
                &mut data,
                Fit::epochs(1),
                &mut RunState::default(),
            )
            .unwrap();
        params::flatten(&model)
    };
    let mut model = token_model::<f64>(7, 6, false, 8);
    let mut trainer = Trainer::new(
        &model,
        Truncation::chunked(10).unwrap(),
        Reduction::Mean,
        adam(),
    );
    let x = ndarray::ArrayView2::from_shape((300, 1), &text[..300]).unwrap();
    let y = ndarray::ArrayView2::from_shape((300, 1), &text[1..]).unwrap();
    let batch = recur_bptt::SeqBatch {
        inputs: recur_bptt::SeqInput::Tokens(x),
        targets: recur_bptt::SeqTargets::Classes(y),
    };
    trainer
        .train_stream(&mut model, &SoftmaxCrossEntropy, batch, None, &mut |_| {})
        .unwrap();
    let streamed = params::flatten(&model);
    // One piece is the same stream; pieces cut at multiples of the stride carry the state
    // on and give the same updates.
    assert_eq!(run_fit(1), streamed);
    assert_eq!(run_fit(3), streamed);
}

/// Evaluation treats a non-finite loss as training does: an error, not `Ok(NaN)`.
#[test]
fn evaluating_a_diverged_model_is_an_error() {
    let mut model = token_model::<f64>(7, 6, true, 5);
    model.readout_mut().weights_mut().w_hy[[0, 0]] = f64::NAN;
    let sgd = Box::new(recur_optim::Sgd::new(0.1).unwrap());
    let mut trainer = Trainer::new(&model, Truncation::full(), Reduction::Mean, sgd);
    let pairs = sentences(2, 7, 3);
    let batch = recur_bptt::SeqBatch::sentence(&pairs[0].0, &pairs[0].1).unwrap();
    let err = trainer
        .evaluate(&model, &SoftmaxCrossEntropy, batch)
        .unwrap_err();
    assert!(
        matches!(err, recur_core::Error::NonFinite { what: "loss", .. }),
        "{err}"
    );
}
