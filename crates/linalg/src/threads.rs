//! The thread-count setting and the persistent worker pool that large products split over.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::LinalgError;

/// 0 = not yet read from the environment.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The number of threads large products are split over (default 1).
///
/// On first use it is read from the `RECUR_THREADS` environment variable (ignored unless it is
/// a positive integer); [`set_threads`] overrides it.
///
/// ```
/// let n = recur_linalg::threads();
/// assert!(n >= 1);
/// ```
#[must_use]
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let from_env = std::env::var("RECUR_THREADS")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n >= 1)
                .unwrap_or(1);
            // Keep a value set concurrently by `set_threads`.
            match THREADS.compare_exchange(0, from_env, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => from_env,
                Err(set) => set,
            }
        }
        n => n,
    }
}

/// Sets the number of threads large products are split over, for the whole process.
///
/// With `n > 1`, products big enough to pay for the hand-off (see [`gemm`](crate::gemm)) are
/// split over the calling thread and `n - 1` pooled workers, started on first need. Between
/// products a worker spins for up to 200 µs (waking a parked thread costs tens of
/// microseconds, a third of a 30-Mflop product), then parks; so back-to-back products keep
/// the workers busy, and idle ones cost nothing. Results do not depend on `n`: each element of
/// `c` is computed by one thread in the same order.
///
/// Use it only with cores to spare: on two idle cores a 32-Mflop product ran 1.9× faster,
/// but when the other cores are busy a worker is descheduled mid-share and the caller waits
/// for it (measured up to 1.5× slower than one thread).
///
/// # Errors
/// [`LinalgError::ZeroThreads`] if `n == 0`.
///
/// ```
/// recur_linalg::set_threads(2)?;
/// assert_eq!(recur_linalg::threads(), 2);
/// recur_linalg::set_threads(1)?;
/// assert!(recur_linalg::set_threads(0).is_err());
/// # Ok::<(), recur_linalg::LinalgError>(())
/// ```
pub fn set_threads(n: usize) -> Result<(), LinalgError> {
    if n == 0 {
        return Err(LinalgError::ZeroThreads);
    }
    THREADS.store(n, Ordering::Relaxed);
    Ok(())
}

/// Calls `f` on every item, sharing the items out over up to [`threads()`] threads (the
/// calling thread and pooled workers) from one queue, and returns when all are done.
///
/// For work beside the products that splits into independent parts, such as the rows of a
/// softmax. Items are handed out in order, one at a time; which thread runs which depends on
/// timing, so results must not (each item writing only its own output is the usual way).
/// With one thread, a single item, or while another call holds the workers, everything runs
/// on the calling thread. A panic in `f` on a worker is re-raised here.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let mut rows = vec![[1_u32; 4]; 8];
/// let total = AtomicUsize::new(0);
/// recur_linalg::for_each_parallel(rows.iter_mut(), |row| {
///     row.iter_mut().for_each(|v| *v *= 2);
///     total.fetch_add(row.len(), Ordering::Relaxed);
/// });
/// assert!(rows.iter().flatten().all(|&v| v == 2));
/// assert_eq!(total.into_inner(), 32);
/// ```
pub fn for_each_parallel<I: Send>(items: impl Iterator<Item = I> + Send, f: impl Fn(I) + Sync) {
    let runners = threads();
    let mut items = items.peekable();
    let first = items.next();
    // One item (a step too small to split) runs here: waking the workers for it would cost
    // more than the item.
    if runners <= 1 || items.peek().is_none() {
        first.into_iter().chain(items).for_each(f);
        return;
    }
    let queue = Mutex::new(first.into_iter().chain(items));
    let job = |_runner: usize| loop {
        let next = lock(&queue).next();
        let Some(item) = next else { break };
        f(item);
    };
    run(runners, &job);
}

/// A job the workers run: called once per runner with the runner's index.
type Job<'a> = &'a (dyn Fn(usize) + Sync + 'a);

struct State {
    /// The current job while the caller is in [`run`]; `None` otherwise.
    job: Option<Job<'static>>,
    /// Whether workers may still take the current job. The caller closes it once the work
    /// queue is empty, so a worker that wakes late (descheduled on a busy machine) never
    /// makes the caller wait for it.
    open: bool,
    /// Bumped for every job, so parked workers know there is new work.
    epoch: u64,
    /// Runners of the current job, the caller (index 0) included.
    runners: usize,
    /// Workers that took the current job and have not finished it.
    running: usize,
    panicked: bool,
    /// Workers started so far (indices 1..=workers).
    workers: usize,
}

/// How long a worker (or the caller, waiting for workers) spins before parking. Waking a
/// parked thread costs tens of microseconds on a virtual machine, as much as half of a
/// 30-Mflop product; products in a training step come back to back, so a short spin catches
/// the next one. Spinning only happens while the thread count is above 1.
const SPIN: Duration = Duration::from_micros(200);

struct Pool {
    /// Mirrors `State::epoch`, so spinning workers can watch it without the lock.
    epoch: AtomicU64,
    /// Mirrors `State::running`, so the caller can spin on it without the lock.
    running: AtomicUsize,
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    /// Held while a job runs: one product at a time uses the workers.
    busy: Mutex<()>,
}

static POOL: Pool = Pool {
    epoch: AtomicU64::new(0),
    running: AtomicUsize::new(0),
    state: Mutex::new(State {
        job: None,
        open: false,
        epoch: 0,
        runners: 0,
        running: 0,
        panicked: false,
        workers: 0,
    }),
    work: Condvar::new(),
    done: Condvar::new(),
    busy: Mutex::new(()),
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `job(0)` on the calling thread and offers `job(1..runners)` to pooled workers,
/// returning when every worker that took it has finished. `job` must share out the work
/// itself from a queue and return when the queue is empty: workers that have not started by
/// then are skipped, and fewer may exist (pool busy, or a worker failed to start).
///
/// The workers are this module's own unless the `rayon` feature puts them on rayon's global
/// pool (which allocates one task per helper and call).
pub(crate) fn run(runners: usize, job: Job<'_>) {
    #[cfg(feature = "rayon")]
    run_rayon(runners, job);
    #[cfg(not(feature = "rayon"))]
    run_pool(runners, job);
}

/// [`run`] on rayon's global pool: the caller takes a share as with the own pool, and helpers
/// that start after the queue is empty return at once.
#[cfg(feature = "rayon")]
fn run_rayon(runners: usize, job: Job<'_>) {
    rayon::in_place_scope(|scope| {
        for index in 1..runners {
            scope.spawn(move |_| job(index));
        }
        job(0);
    });
}

/// [`run`] on this module's parked workers.
#[allow(unsafe_code)] // one lifetime erasure, argued at the `unsafe` block
#[cfg_attr(feature = "rayon", allow(dead_code))]
fn run_pool(runners: usize, job: Job<'_>) {
    let busy = match POOL.busy.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    let Some(_busy) = busy.filter(|_| runners > 1) else {
        // Another product holds the workers: do all the work here instead of waiting.
        job(0);
        return;
    };
    let helpers = start_workers(runners - 1);
    if helpers == 0 {
        job(0);
        return;
    }
    {
        let mut st = lock(&POOL.state);
        // SAFETY: workers copy the job out of `POOL.state` only under the lock while `open`,
        // counting themselves in `running`, and drop their copy before decrementing it.
        // `Finish` (below) runs before `run` returns or unwinds: it closes the job, waits
        // until `running == 0` and clears it. So every use of the reference happens while
        // `run` is still executing, within the borrow `'_`; the lifetime is only erased so
        // the reference can sit in the static pool.
        st.job = Some(unsafe { std::mem::transmute::<Job<'_>, Job<'static>>(job) });
        st.open = true;
        st.runners = helpers + 1;
        st.panicked = false;
        st.epoch = st.epoch.wrapping_add(1);
        POOL.epoch.store(st.epoch, Ordering::Release);
    }
    POOL.work.notify_all();
    let finish = Finish;
    job(0);
    drop(finish);
    if lock(&POOL.state).panicked {
        panic!("recur-linalg: a worker thread panicked");
    }
}

/// Closes the current job, waits for the workers running it and clears it (also when
/// unwinding).
struct Finish;

impl Drop for Finish {
    fn drop(&mut self) {
        lock(&POOL.state).open = false;
        spin_until(|| POOL.running.load(Ordering::Acquire) == 0);
        let mut st = lock(&POOL.state);
        while st.running > 0 {
            st = POOL.done.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.job = None;
    }
}

/// Starts workers until `wanted` exist (or spawning fails); returns how many can help.
fn start_workers(wanted: usize) -> usize {
    let mut st = lock(&POOL.state);
    while st.workers < wanted {
        let index = st.workers + 1;
        let epoch = st.epoch;
        let spawned = std::thread::Builder::new()
            .name(format!("recur-linalg-{index}"))
            .spawn(move || worker(index, epoch));
        if spawned.is_err() {
            break;
        }
        st.workers = index;
    }
    st.workers.min(wanted)
}

fn worker(index: usize, mut seen: u64) {
    loop {
        spin_until(|| POOL.epoch.load(Ordering::Acquire) != seen);
        let mut st = lock(&POOL.state);
        while st.epoch == seen {
            st = POOL.work.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        seen = st.epoch;
        let Some(job) = st.job.filter(|_| st.open && index < st.runners) else {
            continue;
        };
        st.running += 1;
        POOL.running.store(st.running, Ordering::Release);
        drop(st);
        let ok = catch_unwind(AssertUnwindSafe(|| job(index))).is_ok();
        let mut st = lock(&POOL.state);
        st.panicked |= !ok;
        st.running -= 1;
        POOL.running.store(st.running, Ordering::Release);
        if st.running == 0 {
            POOL.done.notify_all();
        }
    }
}

/// Spins for up to [`SPIN`] (only while more than one thread is configured) until `ready()`.
fn spin_until(ready: impl Fn() -> bool) {
    if threads() <= 1 {
        return;
    }
    let start = Instant::now();
    loop {
        // No `spin_loop()` (PAUSE) hint: hypervisors take a run of PAUSEs as lock-holder
        // preemption and deschedule the virtual CPU, which measured 3× slower than not
        // spinning at all.
        for _ in 0..64 {
            if ready() {
                return;
            }
        }
        if start.elapsed() > SPIN {
            return;
        }
    }
}
