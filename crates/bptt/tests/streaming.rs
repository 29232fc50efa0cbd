//! Streaming training (update after every backward pass, state carried on) against the
//! same updates made chunk by chunk through the batch API, and its memory bound.

use ndarray::{s, Array2};
use recur_bptt::{Model, SeqBatch, SeqInput, SeqTargets, Trainer, Truncation};
use recur_cell::{Elman, Tanh};
use recur_core::params;
use recur_loss::{Reduction, SoftmaxCrossEntropy};
use recur_optim::Sgd;

mod common;

fn model(vocab: usize, hidden: usize, seed: u64) -> Model<f64, Elman<f64, Tanh>> {
    common::token_model(vocab, hidden, true, seed)
}

fn text(len: usize, batch: usize, vocab: usize, seed: u64) -> (Array2<usize>, Array2<usize>) {
    common::token_text(len, batch, vocab, seed)
}

fn batch<'a>(x: &'a Array2<usize>, y: &'a Array2<usize>) -> SeqBatch<'a, f64> {
    common::token_batch(x, y)
}

#[test]
fn chunked_streaming_equals_chunk_by_chunk_updates_with_carried_state() {
    let (x, y) = text(23, 2, 6, 1);
    let k = 5;
    let truncation = Truncation::chunked(k).unwrap();
    for reduction in [Reduction::Sum, Reduction::Mean] {
        let mut streamed = model(6, 4, 2);
        let mut trainer = Trainer::new(
            &streamed,
            truncation,
            reduction,
            Box::new(Sgd::new(0.1).unwrap()),
        );
        let mut losses = Vec::new();
        let final_state = trainer
            .train_stream(
                &mut streamed,
                &SoftmaxCrossEntropy,
                batch(&x, &y),
                None,
                &mut |r| losses.push(r.loss.total),
            )
            .unwrap();
        assert_eq!(
            losses.len(),
            5,
            "23 steps in chunks of 5: 4 full chunks and a last of 3"
        );

        let mut manual = model(6, 4, 2);
        let mut reference = Trainer::new(
            &manual,
            Truncation::full(),
            reduction,
            Box::new(Sgd::new(0.1).unwrap()),
        );
        let mut state = Array2::<f64>::zeros((2, 4));
        for (i, start) in (0..23).step_by(k).enumerate() {
            let end = (start + k).min(23);
            let (xc, yc) = (x.slice(s![start..end, ..]), y.slice(s![start..end, ..]));
            let chunk = SeqBatch {
                inputs: SeqInput::Tokens(xc),
                targets: SeqTargets::Classes(yc),
            };
            let r = reference
                .train_batch(&mut manual, &SoftmaxCrossEntropy, chunk, Some(state.view()))
                .unwrap();
            assert!((r.loss.total - losses[i]).abs() < 1e-12);
            // The state after the chunk, computed with the parameters before the update.
            state = reference.engine_mut().final_state().to_owned();
        }
        assert!(params::max_abs_diff(&streamed, &manual).unwrap() < 1e-12);
        assert!((&final_state - &state).iter().all(|d| d.abs() < 1e-12));
    }
}

#[test]
fn streaming_needs_a_stride() {
    let (x, y) = text(5, 1, 6, 3);
    let mut m = model(6, 4, 4);
    for t in [Truncation::full(), Truncation::last(2).unwrap()] {
        let mut trainer = Trainer::new(&m, t, Reduction::Sum, Box::new(Sgd::new(0.1).unwrap()));
        let r = trainer.train_stream(
            &mut m,
            &SoftmaxCrossEntropy,
            batch(&x, &y),
            None,
            &mut |_| {},
        );
        assert!(r.is_err());
    }
}

/// VmHWM (peak resident set) of this process in MiB, where /proc is available.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[test]
fn streaming_memory_does_not_grow_with_the_text() {
    let vocab = 16;
    let workspace_after = |len: usize| {
        let (x, y) = text(len, 1, vocab, 5);
        let mut m = model(vocab, 8, 6);
        let mut trainer = Trainer::new(
            &m,
            Truncation::chunked(25).unwrap(),
            Reduction::Mean,
            Box::new(Sgd::new(0.05).unwrap()),
        );
        let mut updates = 0;
        trainer
            .train_stream(
                &mut m,
                &SoftmaxCrossEntropy,
                batch(&x, &y),
                None,
                &mut |_| updates += 1,
            )
            .unwrap();
        assert_eq!(updates, len.div_ceil(25));
        trainer.engine_mut().workspace_bytes()
    };
    let short = workspace_after(1_000);
    let long = workspace_after(1_000_000);
    eprintln!(
        "workspace after 1k steps: {short} B, after 1M steps: {long} B; peak RSS {:?} MiB",
        peak_rss_mib()
    );
    assert_eq!(short, long);
    assert!(
        long < 64 * 1024,
        "a 25-step window of an 8-unit model needs kilobytes, not {long} B"
    );
}

#[test]
fn a_non_finite_loss_stops_training_and_leaves_the_parameters_alone() {
    let (x, y) = text(6, 1, 6, 9);
    let mut m = model(6, 4, 10);
    // A NaN weight poisons the loss of every step.
    m.readout_mut().weights_mut().w_hy[[0, 0]] = f64::NAN;
    let before = params::flatten(&m);
    let mut trainer = Trainer::new(
        &m,
        Truncation::full(),
        Reduction::Sum,
        Box::new(Sgd::new(0.1).unwrap()),
    );
    let err = trainer
        .train_batch(&mut m, &SoftmaxCrossEntropy, batch(&x, &y), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            recur_core::Error::NonFinite {
                what: "loss",
                update: 1
            }
        ),
        "{err}"
    );
    let after = params::flatten(&m);
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(trainer.updates(), 0);
}
