//! Steady-state products do not allocate: a counting global allocator sees zero allocations
//! after the first call of each shape.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use recur_linalg::{gemm, set_threads, Isa, Scalar};

#[path = "../benches/support/peers.rs"]
mod peers;

/// Counts allocations (and reallocations) made while `COUNTING` is set, on any thread.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only adds a counter.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f`.
fn count(f: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// One product of the training step: `c ← a·b + beta·c` with the operands as laid out there.
struct Product<T> {
    name: &'static str,
    a: Array2<T>,
    b: Array2<T>,
    c: Array2<T>,
    transpose_a: bool,
    transpose_b: bool,
    beta: T,
}

impl<T: Scalar> Product<T> {
    /// `a` is stored `m × k` (or `k × m` if `transpose_a`), `b` `k × n` (or `n × k`).
    fn new(
        name: &'static str,
        (m, n, k): (usize, usize, usize),
        transpose_a: bool,
        transpose_b: bool,
        beta: T,
    ) -> Self {
        let fill =
            |(i, j): (usize, usize)| T::from(((i * 31 + j * 17) % 23) as f64 / 23.0 - 0.5).unwrap();
        let a = if transpose_a {
            Array2::from_shape_fn((k, m), fill)
        } else {
            Array2::from_shape_fn((m, k), fill)
        };
        let b = if transpose_b {
            Array2::from_shape_fn((n, k), fill)
        } else {
            Array2::from_shape_fn((k, n), fill)
        };
        Self {
            name,
            a,
            b,
            c: Array2::zeros((m, n)),
            transpose_a,
            transpose_b,
            beta,
        }
    }

    fn run_with(&mut self, library: Library) {
        let a: ArrayView2<'_, T> = if self.transpose_a {
            self.a.t()
        } else {
            self.a.view()
        };
        let b: ArrayView2<'_, T> = if self.transpose_b {
            self.b.t()
        } else {
            self.b.view()
        };
        let mut c: ArrayViewMut2<'_, T> = self.c.view_mut();
        match library {
            Library::Recur => gemm(T::one(), a, b, self.beta, c).unwrap(),
            Library::GemmCrate => peers::gemm_crate(a, b, self.beta, c),
            Library::MatrixMultiply => general_mat_mul(T::one(), &a, &b, self.beta, &mut c),
        }
    }
}

/// Who computes a product.
#[derive(Debug, Clone, Copy)]
enum Library {
    Recur,
    /// The `gemm` crate, one thread.
    GemmCrate,
    /// ndarray's `general_mat_mul`.
    MatrixMultiply,
}

/// The products of one training step at batch 1 (T = 20 tokens) and batch 32.
fn step_products<T: Scalar>() -> Vec<Product<T>> {
    let (zero, one) = (T::zero(), T::one());
    let mut products = Vec::new();
    for (batch, tokens) in [(1, 20), (32, 640)] {
        products.extend([
            Product::new("logits = h·w", (tokens, 8000, 100), false, false, zero),
            Product::new("d_w += hᵀ·d_logits", (100, 8000, tokens), true, false, one),
            Product::new("d_h = d_logits·wᵀ", (tokens, 100, 8000), false, true, zero),
            Product::new("next = x·w_hh", (batch, 100, 100), false, false, one),
            Product::new("d_w_hh += prevᵀ·dz", (100, 100, batch), true, false, one),
            Product::new("d_prev = dz·w_hhᵀ", (batch, 100, 100), false, true, zero),
        ]);
    }
    products.extend([
        Product::new(
            "generation: 1×100 · 100×8000",
            (1, 8000, 100),
            false,
            false,
            zero,
        ),
        Product::new("5×100 · 100×100", (5, 100, 100), false, false, zero),
    ]);
    products
}

fn steady_state_allocations<T: Scalar>(library: Library) -> Vec<(&'static str, usize)> {
    let mut products = step_products::<T>();
    // Warm-up: buffers grow to their high-water mark; workers start if threads > 1.
    for _ in 0..3 {
        products.iter_mut().for_each(|p| p.run_with(library));
    }
    products
        .iter_mut()
        .map(|p| {
            let name = p.name;
            (name, count(|| (0..5).for_each(|_| p.run_with(library))))
        })
        .collect()
}

/// One test (so no other test allocates concurrently while counting), single-threaded first,
/// then with the worker pool.
#[test]
fn products_do_not_allocate_after_warm_up() {
    // The counter itself works.
    assert_eq!(count(|| drop(std::hint::black_box(vec![1_u8; 16]))), 1);
    // Rayon's scoped tasks are boxed: with that feature only one thread is allocation-free.
    let thread_counts: &[usize] = if cfg!(feature = "rayon") {
        &[1]
    } else {
        &[1, 2]
    };
    for &threads in thread_counts {
        set_threads(threads).unwrap();
        let f32_counts = steady_state_allocations::<f32>(Library::Recur);
        let f64_counts = steady_state_allocations::<f64>(Library::Recur);
        // On ARM64 the products run on matrixmultiply's NEON kernels, which allocate one
        // packing buffer per call and per part a thread computes (at most 2 per thread).
        let allowed = if Isa::detect() == Isa::Neon {
            5 * 2 * threads
        } else {
            0
        };
        for (ty, counts) in [("f32", f32_counts), ("f64", f64_counts)] {
            for (name, n) in counts {
                assert!(
                    n <= allowed,
                    "{ty} {name} with {threads} thread(s): {n} allocations in 5 calls"
                );
            }
        }
    }
    set_threads(1).unwrap();
    // Why recur-linalg keeps its own kernels where these crates are faster: both allocate
    // packing buffers on every call of the step's large products, which would break the
    // engine's allocation-free update. (Should this fail, a crate no longer allocates and
    // could be called behind `gemm`.)
    for library in [Library::GemmCrate, Library::MatrixMultiply] {
        let counts = steady_state_allocations::<f32>(library);
        println!("{library:?}: {counts:?}");
        let logits = counts.iter().find(|(name, _)| *name == "logits = h·w");
        assert!(
            logits.is_some_and(|&(_, n)| n >= 5),
            "{library:?} no longer allocates on logits: {counts:?}"
        );
    }
}
