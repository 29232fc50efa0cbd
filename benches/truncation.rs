//! What truncated BPTT costs, per training sequence, as the truncation length k and the
//! sequence length T change. See `docs/truncation.md` for the measured numbers.
//!
//! Every benchmark times one `Bptt::accumulate` call (forward, loss, readout backward and
//! the truncated recurrent sweep) on a reused engine and gradient, with no optimizer step.
//! Throughput is in tokens (time steps of one sequence).
//!
//! Groups:
//! - `k/<size>/<float>`: every scheme at k ∈ {1, 2, 4, 8, 16, 32, full}, plus `forward`
//!   (`Bptt::evaluate`, no backward) as the floor the backward pass adds to;
//! - `seq_len/<size>/f32`: T ∈ {10, 50, 100, 500, 1000} at a fixed k;
//! - `stacked_vs_naive/recurrent/<float>`: per-output truncation with Elman's one-product
//!   `backward_stacked` against the trait's default block-by-block loop.
//!
//! Sizes: `tutorial` is the classic language model (vocabulary 8000, hidden 100, T = 45);
//! its 8000-way readout costs far more than the recurrence, so k barely shows there.
//! `recurrent` (vocabulary 64, hidden 256, T = 200) makes the recurrent sweep dominate, which
//! is how the recurrent part is timed on its own: the engine has no public entry point for
//! the sweep alone.
//!
//! ```text
//! cargo bench --bench truncation                  # everything, ~6 minutes on 2 cores
//! cargo bench --bench truncation -- 'k/recurrent' # one group
//! ```

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::cell::{ElmanCache, ElmanParams};
use recur::prelude::*;
use recur::{Gradients, Result};

/// A model size to benchmark at.
#[derive(Debug, Clone, Copy)]
struct Size {
    name: &'static str,
    vocab: usize,
    hidden: usize,
    seq_len: usize,
}

/// The language-model tutorial's sizes.
const TUTORIAL: Size = Size {
    name: "tutorial",
    vocab: 8000,
    hidden: 100,
    seq_len: 45,
};

/// Small readout, wide recurrence, long sequence: the cost is the recurrent sweep's.
const RECURRENT: Size = Size {
    name: "recurrent",
    vocab: 64,
    hidden: 256,
    seq_len: 200,
};

/// Truncation lengths swept; `None` is "k = T" (the whole sequence).
const KS: [Option<usize>; 7] = [Some(1), Some(2), Some(4), Some(8), Some(16), Some(32), None];

const SEQ_LENS: [usize; 5] = [10, 50, 100, 500, 1000];

#[derive(Debug, Clone, Copy)]
enum Scheme {
    PerOutput,
    Chunked,
    Last,
    Full,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::PerOutput => "per_output",
            Scheme::Chunked => "chunked",
            Scheme::Last => "last",
            Scheme::Full => "full",
        }
    }

    /// The scheme at truncation length `k` (`None`: k = T) for sequences of `seq_len`.
    fn truncation(self, k: Option<usize>, seq_len: usize) -> Truncation {
        let k = k.unwrap_or(seq_len);
        match self {
            Scheme::PerOutput => Truncation::per_output(k),
            Scheme::Chunked => Truncation::chunked(k),
            Scheme::Last => Truncation::last(k),
            Scheme::Full => Ok(Truncation::full()),
        }
        .expect("k >= 1")
    }
}

/// A scheme at a truncation length (`None`: k = T).
type SchemeAt = (Scheme, Option<usize>);

fn k_label(k: Option<usize>) -> String {
    k.map_or_else(|| "full".to_string(), |k| k.to_string())
}

/// Elman with the trait's default `backward_stacked` (one `backward` per block) instead of
/// Elman's single matrix product: the naive way to run per-output truncation.
#[derive(Debug, Clone)]
struct Looped<F: Float>(Elman<F, Tanh>);

impl<F: Float> Cell<F> for Looped<F> {
    type Params = ElmanParams<F>;
    type Cache = ElmanCache<F>;

    fn input_size(&self) -> usize {
        self.0.input_size()
    }
    fn hidden_size(&self) -> usize {
        self.0.hidden_size()
    }
    fn params(&self) -> &dyn ParamSet<F> {
        self.0.params()
    }
    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        self.0.params_mut()
    }
    fn zero_grads(&self) -> ElmanParams<F> {
        self.0.zero_grads()
    }
    fn new_cache(&self, batch: usize) -> ElmanCache<F> {
        self.0.new_cache(batch)
    }
    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: &mut ElmanCache<F>,
    ) -> Result<()> {
        self.0.forward(x, prev, next, cache)
    }
    fn backward(
        &self,
        step: StepRecord<'_, F, ElmanCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut ElmanParams<F>,
    ) -> Result<()> {
        self.0.backward(step, deltas, grads)
    }
}

/// A seeded tanh model of the given size and one random token sequence of `seq_len`
/// steps (inputs and next-token targets, `[T, 1]`).
fn setup<F: Float>(size: Size, seq_len: usize) -> (Model<F, Elman<F, Tanh>>, Array2<usize>) {
    let mut rng = StdRng::seed_from_u64(2024);
    let cell = ElmanConfig::new(size.vocab, size.hidden)
        .init::<F, _>(Tanh, &mut rng)
        .expect("valid sizes");
    let readout = LinearConfig::new(size.hidden, size.vocab)
        .init(&mut rng)
        .expect("valid sizes");
    let model = Model::new(cell, readout).expect("matching sizes");
    // One extra token so targets are the inputs shifted by one.
    let tokens = Array2::from_shape_fn((seq_len + 1, 1), |_| rng.random_range(0..size.vocab));
    (model, tokens)
}

/// Times `accumulate` (forward + truncated backward) for one sequence.
fn bench_accumulate<F: Float, C: Cell<F>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    model: &Model<F, C>,
    tokens: &Array2<usize>,
    truncation: Truncation,
) {
    let seq_len = tokens.nrows() - 1;
    let batch = SeqBatch {
        inputs: SeqInput::Tokens(tokens.slice(ndarray::s![..seq_len, ..])),
        targets: SeqTargets::Classes(tokens.slice(ndarray::s![1.., ..])),
    };
    let mut engine = Bptt::new(truncation, Reduction::Sum);
    let mut grads: Gradients<F, C> = model.zero_grads();
    group.throughput(Throughput::Elements(seq_len as u64));
    group.bench_function(id, |b| {
        // Gradients are not zeroed between iterations: `accumulate` adds, the sums stay
        // finite, and zeroing belongs to the training loop, not to the engine being timed.
        b.iter(|| {
            engine
                .accumulate(model, &SoftmaxCrossEntropy, batch, None, &mut grads)
                .expect("valid batch")
        })
    });
}

/// Times `evaluate` (forward and loss only): the part of every row that k cannot change.
fn bench_forward<F: Float, C: Cell<F>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    model: &Model<F, C>,
    tokens: &Array2<usize>,
) {
    let seq_len = tokens.nrows() - 1;
    let batch = SeqBatch {
        inputs: SeqInput::Tokens(tokens.slice(ndarray::s![..seq_len, ..])),
        targets: SeqTargets::Classes(tokens.slice(ndarray::s![1.., ..])),
    };
    let mut engine = Bptt::new(Truncation::full(), Reduction::Sum);
    group.throughput(Throughput::Elements(seq_len as u64));
    group.bench_function(BenchmarkId::new("forward", "none"), |b| {
        b.iter(|| {
            engine
                .evaluate(model, &SoftmaxCrossEntropy, batch, None)
                .expect("valid batch")
        })
    });
}

/// Short, flat sampling: some cases take a large fraction of a second per iteration, and
/// linear sampling would then run for minutes. Two cores, ~130 cases, < 10 minutes.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(400))
        .measurement_time(Duration::from_secs(2));
}

fn k_sweep_at<F: Float>(c: &mut Criterion, size: Size, float: &str) {
    let (model, tokens) = setup::<F>(size, size.seq_len);
    let mut group = c.benchmark_group(format!("k/{}/{float}", size.name));
    configure(&mut group);
    bench_forward(&mut group, &model, &tokens);
    bench_accumulate(
        &mut group,
        BenchmarkId::new("full", "full"),
        &model,
        &tokens,
        Scheme::Full.truncation(None, size.seq_len),
    );
    for scheme in [Scheme::PerOutput, Scheme::Chunked, Scheme::Last] {
        for k in KS {
            bench_accumulate(
                &mut group,
                BenchmarkId::new(scheme.name(), k_label(k)),
                &model,
                &tokens,
                scheme.truncation(k, size.seq_len),
            );
        }
    }
    group.finish();
}

fn k_sweep(c: &mut Criterion) {
    for size in [TUTORIAL, RECURRENT] {
        k_sweep_at::<f32>(c, size, "f32");
        k_sweep_at::<f64>(c, size, "f64");
    }
}

/// Time against T at fixed k: every scheme's cost is linear in T.
fn seq_len_sweep(c: &mut Criterion) {
    let cases: [(Size, &[SchemeAt]); 2] = [
        // The tutorial's own setting, bptt_truncate = 4.
        (TUTORIAL, &[(Scheme::PerOutput, Some(4))]),
        (
            RECURRENT,
            &[
                (Scheme::PerOutput, Some(8)),
                (Scheme::Chunked, Some(8)),
                (Scheme::Full, None),
            ],
        ),
    ];
    for (size, schemes) in cases {
        let mut group = c.benchmark_group(format!("seq_len/{}/f32", size.name));
        configure(&mut group);
        for &seq_len in &SEQ_LENS {
            let (model, tokens) = setup::<f32>(size, seq_len);
            for &(scheme, k) in schemes {
                let name = match k {
                    Some(k) => format!("{}_{k}", scheme.name()),
                    None => scheme.name().to_string(),
                };
                bench_accumulate(
                    &mut group,
                    BenchmarkId::new(name, seq_len),
                    &model,
                    &tokens,
                    scheme.truncation(k, seq_len),
                );
            }
        }
        group.finish();
    }
}

fn stacked_vs_naive_at<F: Float>(c: &mut Criterion, float: &str) {
    let size = RECURRENT;
    let (model, tokens) = setup::<F>(size, size.seq_len);
    let looped =
        Model::new(Looped(model.cell().clone()), model.readout().clone()).expect("same sizes");
    let mut group = c.benchmark_group(format!("stacked_vs_naive/{}/{float}", size.name));
    configure(&mut group);
    for k in KS.iter().flatten().copied() {
        let truncation = Scheme::PerOutput.truncation(Some(k), size.seq_len);
        bench_accumulate(
            &mut group,
            BenchmarkId::new("stacked", k),
            &model,
            &tokens,
            truncation,
        );
        bench_accumulate(
            &mut group,
            BenchmarkId::new("naive", k),
            &looped,
            &tokens,
            truncation,
        );
    }
    group.finish();
}

fn stacked_vs_naive(c: &mut Criterion) {
    stacked_vs_naive_at::<f32>(c, "f32");
    stacked_vs_naive_at::<f64>(c, "f64");
}

// `criterion_group!` defines an undocumented `pub fn`; keep the lint quiet only there.
#[allow(missing_docs)]
mod harness {
    use super::*;

    criterion_group! {
        name = benches;
        // Fewer bootstrap resamples: with 10 samples the default 100 000 only slow analysis.
        config = Criterion::default().nresamples(10_000);
        targets = k_sweep, seq_len_sweep, stacked_vs_naive
    }
}
criterion_main!(harness::benches);
