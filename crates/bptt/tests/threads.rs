//! Training with the products and the loss split over threads gives bit-identical
//! gradients, losses and logits to one thread, for the Elman cell and for stacked gated
//! cells.

use std::sync::Mutex;

use rand::{rngs::StdRng, SeedableRng};
use recur_bptt::{Bptt, Model, Truncation};
use recur_cell::{Cell, GruConfig, GruVariant, LinearConfig, LstmConfig, Sigmoid, Stack, Tanh};
use recur_core::{linalg, params};
use recur_loss::{Reduction, SoftmaxCrossEntropy, IGNORE};

mod common;

/// The thread count is global: one test at a time sets it.
static THREADS: Mutex<()> = Mutex::new(());

#[test]
fn split_loss_and_products_match_one_thread_bitwise() {
    let _serial = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    // 20 steps × 4 sequences × 1000 classes: above the size from which the loss is split;
    // 64 hidden units put the readout's products (80 × 64 × 1000) above the size from which
    // products are split (with 16, none was).
    let (vocab, hidden, len, batch) = (1000, 64, 20, 4);
    let model = common::token_model::<f32>(vocab, hidden, true, 9);
    let (x, mut y) = common::token_text(len, batch, vocab, 10);
    y[[len - 1, 2]] = IGNORE; // padding rows take their own path
    let seq = common::token_batch(&x, &y);
    let run = |threads: usize| {
        linalg::set_threads(threads).unwrap();
        let mut engine = Bptt::new(Truncation::per_output(3).unwrap(), Reduction::Mean);
        let mut grads = model.zero_grads();
        let report = engine
            .accumulate(&model, &SoftmaxCrossEntropy, seq, None, &mut grads)
            .unwrap();
        let logits = engine.logits().to_owned();
        let evaluated = engine
            .evaluate(&model, &SoftmaxCrossEntropy, seq, None)
            .unwrap();
        (report, evaluated, logits, params::flatten(&grads))
    };
    let one = run(1);
    for threads in [2, 3] {
        let many = run(threads);
        assert_eq!(one.0.total.to_bits(), many.0.total.to_bits());
        assert_eq!(one.0.counted, many.0.counted);
        assert_eq!(one.1.total.to_bits(), many.1.total.to_bits());
        assert!(same_bits(
            one.2.as_slice().unwrap(),
            many.2.as_slice().unwrap()
        ));
        assert!(
            same_bits(&one.3, &many.3),
            "{threads} threads: gradients differ"
        );
    }
    linalg::set_threads(1).unwrap();
}

/// Gradients and loss of a two-layer stack of `cell(input, hidden)` layers on seeded tokens
/// under per-output truncation, on `threads` threads. The backward step's products (up to
/// 192 stacked rows against 128 × 512 weights) are large enough to be split, and so are the
/// forward and backward element-wise passes (48 rows of 3 or 4 gate blocks).
fn gated_run<C: Cell<f32>>(
    cell: impl Fn(usize, usize, &mut StdRng) -> C,
    threads: usize,
) -> (u64, Vec<f32>) {
    let (vocab, hidden, len, batch) = (30, 128, 12, 48);
    let mut rng = StdRng::seed_from_u64(5);
    let stack = Stack::new(vec![
        cell(vocab, hidden, &mut rng),
        cell(hidden, hidden, &mut rng),
    ]);
    let readout = LinearConfig::new(hidden, vocab).init(&mut rng).unwrap();
    let model = Model::new(stack.unwrap(), readout).unwrap();
    let (x, y) = common::token_text(len, batch, vocab, 6);
    linalg::set_threads(threads).unwrap();
    let mut engine = Bptt::new(Truncation::per_output(3).unwrap(), Reduction::Mean);
    let mut grads = model.zero_grads();
    let seq = common::token_batch(&x, &y);
    let report = engine
        .accumulate(&model, &SoftmaxCrossEntropy, seq, None, &mut grads)
        .unwrap();
    (report.total.to_bits(), params::flatten(&grads))
}

#[test]
fn gated_cells_match_one_thread_bitwise() {
    let _serial = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let lstm = |i, h, rng: &mut StdRng| LstmConfig::new(i, h).init(Sigmoid, Tanh, rng).unwrap();
    let gru = |variant| {
        move |i, h, rng: &mut StdRng| {
            let config = GruConfig::new(i, h).with_variant(variant);
            config.init(Sigmoid, Tanh, rng).unwrap()
        }
    };
    assert_threads_agree("LSTM", |threads| gated_run(lstm, threads));
    for variant in [GruVariant::ResetAfter, GruVariant::ResetBefore] {
        let name = format!("{variant:?}");
        assert_threads_agree(&name, |threads| gated_run(gru(variant), threads));
    }
    linalg::set_threads(1).unwrap();
}

/// `run` on 2 and 3 threads gives the loss and gradients it gives on one, bit for bit.
fn assert_threads_agree(name: &str, run: impl Fn(usize) -> (u64, Vec<f32>)) {
    let one = run(1);
    for threads in [2, 3] {
        let many = run(threads);
        assert_eq!(one.0, many.0, "{name} loss, {threads} threads");
        assert!(
            same_bits(&one.1, &many.1),
            "{name} gradients, {threads} threads"
        );
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
