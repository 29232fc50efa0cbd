//! `for_each_parallel`: every item is handled exactly once whatever the thread count, and a
//! panic on any thread reaches the caller.

use std::sync::atomic::{AtomicUsize, Ordering};

use recur_linalg::{for_each_parallel, set_threads};

#[test]
fn every_item_once_and_panics_propagate() {
    for threads in [1, 2, 3] {
        set_threads(threads).unwrap();
        let mut out = vec![0_u64; 1000];
        let calls = AtomicUsize::new(0);
        for_each_parallel(out.iter_mut().enumerate(), |(i, slot)| {
            // Enough work per item that a worker has time to join in.
            *slot = (0..200_u64).fold(i as u64, |acc, x| acc.wrapping_mul(31).wrapping_add(x));
            calls.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(calls.load(Ordering::Relaxed), 1000, "{threads} threads");
        for (i, &v) in out.iter().enumerate() {
            let want = (0..200_u64).fold(i as u64, |acc, x| acc.wrapping_mul(31).wrapping_add(x));
            assert_eq!(v, want, "item {i}, {threads} threads");
        }
        let caught = std::panic::catch_unwind(|| {
            for_each_parallel(0..100, |i| assert!(i != 57, "item 57 fails"));
        });
        assert!(caught.is_err(), "{threads} threads: the panic was lost");
        // The pool still works after a panic.
        let sum = AtomicUsize::new(0);
        for_each_parallel(0..100_usize, |i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 4950);
    }
    set_threads(1).unwrap();
}
