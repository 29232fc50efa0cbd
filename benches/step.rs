//! The language model's training step (`examples/throughput.rs`'s workload) and its
//! softmax-cross-entropy kernel, as criterion benchmarks. The matrix products of the step
//! have their own benchmark (`cargo bench -p recur-linalg --bench gemm`, shapes `logits_*`,
//! `dw_*`, `dh_*`, `rec_*`); the recurrence forward and backward are timed by
//! `cargo bench --bench truncation -- 'k/recurrent'`.
//!
//! Workload: tanh Elman model, vocabulary 8000, hidden 100, no biases, sentences of 20
//! tokens, softmax + cross-entropy summed, plain SGD (lr 0.005), one thread. Throughput is in
//! tokens, so criterion's "elem/s" reads as tokens per second.
//!
//! ```text
//! cargo bench --bench step                 # everything, about a minute
//! cargo bench --bench step -- softmax_xent # the loss kernel only
//! ```

use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{Array1, Array2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::loss::Targets;
use recur::prelude::*;

const VOCAB: usize = 8000;
const HIDDEN: usize = 100;
const SEQ_LEN: usize = 20;

/// One `Trainer::train_batch` of `batch` sentences with `truncation`.
fn bench_step(c: &mut Criterion, batch: usize, truncation: Truncation) {
    let mut rng = StdRng::seed_from_u64(7);
    let cell = ElmanConfig::new(VOCAB, HIDDEN)
        .init::<f32, _>(Tanh, &mut rng)
        .expect("valid sizes");
    let readout = LinearConfig::new(HIDDEN, VOCAB)
        .init(&mut rng)
        .expect("valid sizes");
    let mut model = Model::new(cell, readout).expect("matching sizes");
    let optimizer = Box::new(Sgd::new(0.005).expect("positive rate"));
    let mut trainer = Trainer::new(&model, truncation, Reduction::Sum, optimizer);
    let tokens =
        |rng: &mut StdRng| Array2::from_shape_fn((SEQ_LEN, batch), |_| rng.random_range(0..VOCAB));
    let (x, y) = (tokens(&mut rng), tokens(&mut rng));
    let mut group = c.benchmark_group("step");
    group.throughput(Throughput::Elements((SEQ_LEN * batch) as u64));
    group.measurement_time(Duration::from_secs(5));
    let id = BenchmarkId::new(format!("batch{batch}"), truncation.to_string());
    group.bench_function(id, |b| {
        b.iter(|| {
            let batch = SeqBatch {
                inputs: SeqInput::Tokens(x.view()),
                targets: SeqTargets::Classes(y.view()),
            };
            trainer
                .train_batch(&mut model, &SoftmaxCrossEntropy, batch, None)
                .expect("valid batch")
        });
    });
    group.finish();
}

/// `SoftmaxCrossEntropy::evaluate` with the gradient, over `rows` rows of 8000 logits.
fn bench_softmax_xent(c: &mut Criterion, rows: usize) {
    let mut rng = StdRng::seed_from_u64(3);
    let logits = Array2::from_shape_fn((rows, VOCAB), |_| rng.random_range(-4.0_f32..4.0));
    let classes: Vec<usize> = (0..rows).map(|_| rng.random_range(0..VOCAB)).collect();
    let mut row_loss = Array1::zeros(rows);
    let mut d_logits = Array2::zeros((rows, VOCAB));
    let mut group = c.benchmark_group("softmax_xent");
    group.throughput(Throughput::Elements((rows * VOCAB) as u64));
    group.bench_function(
        BenchmarkId::from_parameter(format!("{rows}x{VOCAB}")),
        |b| {
            b.iter(|| {
                SoftmaxCrossEntropy
                    .evaluate(
                        logits.view(),
                        Targets::Classes(&classes),
                        row_loss.view_mut(),
                        Some(d_logits.view_mut()),
                        1.0,
                    )
                    .expect("valid targets")
            });
        },
    );
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_softmax_xent(c, 20);
    bench_softmax_xent(c, 640);
    bench_step(c, 1, Truncation::per_output(4).expect("k ≥ 1"));
    bench_step(c, 32, Truncation::full());
}

// `criterion_group!` defines an undocumented `pub fn`; keep the lint quiet only there.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(step_benches, super::benches);
}
criterion_main!(group::step_benches);
