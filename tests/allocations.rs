//! Steady-state training allocates nothing per step, for the Elman, LSTM and GRU cells: a
//! counting global allocator watches a run of updates after a warm-up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::prelude::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator and only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const VOCAB: usize = 500;
const HIDDEN: usize = 32;

fn allocations_per_update<C: Cell<f32>>(cell: C, truncation: Truncation, batch: usize) -> f64 {
    let (vocab, hidden, seq_len) = (VOCAB, HIDDEN, 20);
    let mut rng = StdRng::seed_from_u64(3);
    let readout = LinearConfig::new(hidden, vocab).init(&mut rng).unwrap();
    let mut model = Model::new(cell, readout).unwrap();
    let mut trainer = Trainer::new(
        &model,
        truncation,
        Reduction::Sum,
        Box::new(Sgd::new(0.005).unwrap()),
    );
    let data: Vec<(Array2<usize>, Array2<usize>)> = (0..8)
        .map(|_| {
            let x = Array2::from_shape_fn((seq_len, batch), |_| rng.random_range(0..vocab));
            let y = Array2::from_shape_fn((seq_len, batch), |_| rng.random_range(0..vocab));
            (x, y)
        })
        .collect();
    let mut step = |i: usize| {
        let (x, y) = &data[i % data.len()];
        let batch = SeqBatch {
            inputs: SeqInput::Tokens(x.view()),
            targets: SeqTargets::Classes(y.view()),
        };
        trainer
            .train_batch(&mut model, &SoftmaxCrossEntropy, batch, None)
            .unwrap();
    };
    for i in 0..20 {
        step(i);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let updates = 50;
    for i in 0..updates {
        step(i);
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / updates as f64
}

#[test]
fn training_steps_do_not_allocate_in_steady_state() {
    for (truncation, batch) in [
        (Truncation::per_output(4).unwrap(), 1),
        (Truncation::full(), 8),
        (Truncation::chunked(5).unwrap(), 4),
    ] {
        let mut rng = StdRng::seed_from_u64(5);
        let elman = ElmanConfig::new(VOCAB, HIDDEN).init::<f32, _>(Tanh, &mut rng);
        let lstm = LstmConfig::new(VOCAB, HIDDEN).init::<f32, _, _>(Sigmoid, Tanh, &mut rng);
        let gru = GruConfig::new(VOCAB, HIDDEN)
            .with_variant(GruVariant::ResetBefore)
            .init::<f32, _, _>(Sigmoid, Tanh, &mut rng);
        let gru_after = GruConfig::new(VOCAB, HIDDEN).init::<f32, _, _>(Sigmoid, Tanh, &mut rng);
        for (name, per_update) in [
            (
                "elman",
                allocations_per_update(elman.unwrap(), truncation, batch),
            ),
            (
                "lstm",
                allocations_per_update(lstm.unwrap(), truncation, batch),
            ),
            (
                "gru",
                allocations_per_update(gru.unwrap(), truncation, batch),
            ),
            (
                "gru reset-after",
                allocations_per_update(gru_after.unwrap(), truncation, batch),
            ),
        ] {
            assert!(
                per_update == 0.0,
                "{name}, {truncation}, batch {batch}: {per_update} allocations per update"
            );
        }
    }
}
