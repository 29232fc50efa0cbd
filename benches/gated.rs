//! Training updates of the gated character model (`examples/throughput.rs --cell lstm|gru`):
//! two stacked LSTM or GRU layers of 256 units, vocabulary 65, batch 32, full BPTT, linear
//! readout with bias, cross-entropy averaged over the tokens, Adam, one thread. Swept over
//! the sequence length; throughput is in tokens, so criterion's "elem/s" reads as tokens per
//! second. The products these steps issue have their own shapes in
//! `cargo bench -p recur-linalg --bench gemm -- 'lstm_|gru_'`.
//!
//! ```text
//! cargo bench --bench gated               # both cells, sequences of 20 and 100 (about a minute)
//! cargo bench --bench gated -- 'lstm/100' # one setting
//! ```

use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::prelude::*;
use recur::Adam;

const VOCAB: usize = 65;
const HIDDEN: usize = 256;
const BATCH: usize = 32;

/// Builds one layer of the cell for the given input size.
type Build<C> = fn(usize, &mut StdRng) -> recur::Result<C>;

/// Benchmarks `Trainer::train_batch` of a two-layer stack of the cells `build` makes, named
/// `name`, for each sequence length.
fn bench_cell<C: Cell<f32>>(c: &mut Criterion, name: &str, build: Build<C>) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for seq_len in [20, 100] {
        let mut rng = StdRng::seed_from_u64(11);
        let layers = vec![
            build(VOCAB, &mut rng).expect("valid sizes"),
            build(HIDDEN, &mut rng).expect("valid sizes"),
        ];
        let readout = LinearConfig::new(HIDDEN, VOCAB)
            .with_bias(true)
            .init(&mut rng)
            .expect("valid sizes");
        let stack = Stack::new(layers).expect("matching sizes");
        let mut model = Model::new(stack, readout).expect("matching sizes");
        let adam = Adam::new(0.002, 0.9, 0.999, 1e-8).expect("valid settings");
        let mut trainer = Trainer::new(&model, Truncation::full(), Reduction::Mean, Box::new(adam));
        let tokens = |rng: &mut StdRng| {
            Array2::from_shape_fn((seq_len, BATCH), |_| rng.random_range(0..VOCAB))
        };
        let (x, y) = (tokens(&mut rng), tokens(&mut rng));
        group.throughput(Throughput::Elements((seq_len * BATCH) as u64));
        group.bench_function(BenchmarkId::from_parameter(seq_len), |b| {
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
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_cell::<Lstm<f32>>(c, "lstm", |input, rng| {
        LstmConfig::new(input, HIDDEN).init(Sigmoid, Tanh, rng)
    });
    bench_cell::<Gru<f32>>(c, "gru", |input, rng| {
        GruConfig::new(input, HIDDEN).init(Sigmoid, Tanh, rng)
    });
}

// `criterion_group!` defines an undocumented `pub fn`; keep the lint quiet only there.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(gated_benches, super::benches);
}
criterion_main!(group::gated_benches);
