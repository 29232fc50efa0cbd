//! Steady-state training allocates nothing per step, for the Elman, LSTM and GRU cells, alone
//! with SGD and as two-layer stacks with Adam: a counting global allocator watches a run of
//! updates after a warm-up.

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
    let sgd = Box::new(Sgd::new(0.005).unwrap());
    allocations_with(cell, sgd, truncation, batch)
}

fn allocations_with<C: Cell<f32>>(
    cell: C,
    optimizer: Box<dyn Optimizer<f32>>,
    truncation: Truncation,
    batch: usize,
) -> f64 {
    let (vocab, hidden, seq_len) = (VOCAB, HIDDEN, 20);
    let mut rng = StdRng::seed_from_u64(3);
    let readout = LinearConfig::new(hidden, vocab).init(&mut rng).unwrap();
    let mut model = Model::new(cell, readout).unwrap();
    let mut trainer = Trainer::new(&model, truncation, Reduction::Sum, optimizer);
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

/// The only test of this binary. The counter is global: it also counts the test harness's
/// own thread, which allocates when any other test finishes (to report it), so a second
/// test here would make the count depend on timing (it did, on a loaded machine).
#[test]
fn steady_state_updates_do_not_allocate() {
    single_cells_with_sgd();
    stacked_gated_cells_with_adam();
}

fn single_cells_with_sgd() {
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
                per_update == 0.0 || !products_are_allocation_free(),
                "{name}, {truncation}, batch {batch}: {per_update} allocations per update"
            );
        }
    }
}

/// Whether products are allocation-free here: everywhere but ARM64, whose products run on
/// matrixmultiply's NEON kernels, which allocate a packing buffer per call
/// (`crates/linalg/src/simd/neon.rs`).
fn products_are_allocation_free() -> bool {
    recur::core::linalg::Isa::detect() != recur::core::linalg::Isa::Neon
}

/// Two layers of the cells `layer` builds (input size of each layer given).
fn two_layers<C: Cell<f32>>(mut layer: impl FnMut(usize) -> recur::Result<C>) -> Stack<C> {
    Stack::new(vec![layer(VOCAB).unwrap(), layer(HIDDEN).unwrap()]).unwrap()
}

/// Also on two threads, where the readout's products are shared out over the worker pool.
fn stacked_gated_cells_with_adam() {
    let adam = || Box::new(recur::Adam::new(0.002, 0.9, 0.999, 1e-8).unwrap());
    for (threads, batch) in [(1, 8), (2, 16)] {
        recur::core::linalg::set_threads(threads).unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        let lstm = two_layers(|input| {
            LstmConfig::new(input, HIDDEN).init::<f32, _, _>(Sigmoid, Tanh, &mut rng)
        });
        let gru = two_layers(|input| {
            GruConfig::new(input, HIDDEN).init::<f32, _, _>(Sigmoid, Tanh, &mut rng)
        });
        for (name, per_update) in [
            (
                "lstm stack",
                allocations_with(lstm, adam(), Truncation::full(), batch),
            ),
            (
                "gru stack",
                allocations_with(gru, adam(), Truncation::full(), batch),
            ),
        ] {
            assert!(
                per_update == 0.0 || !products_are_allocation_free(),
                "{name}, Adam, full, batch {batch}, {threads} threads: {per_update} allocations per update"
            );
        }
    }
    recur::core::linalg::set_threads(1).unwrap();
}
