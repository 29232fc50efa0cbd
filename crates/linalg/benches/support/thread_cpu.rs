//! A criterion clock that counts only the CPU time of the benchmarking thread, so a product
//! timed while other processes share the cores is charged for its own cycles, not for the
//! time it spent waiting to be scheduled. Chosen with `RECUR_BENCH_CLOCK=thread-cpu`; the
//! default stays wall time, which is what users feel on a quiet machine.
//!
//! What it cannot remove: caches and memory bandwidth are still shared, so a loaded machine
//! reads somewhat slower; compare implementations measured in the same run.

use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

/// CPU time of the calling thread, in nanoseconds.
pub struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }

    fn end(&self, started: ThreadTime) -> Duration {
        started.elapsed()
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

/// The unit that keeps `typical` (in base units) between 1 and 1000, and its divisor.
fn scale(typical: f64, units: [(&'static str, f64); 4]) -> (&'static str, f64) {
    units
        .into_iter()
        .rev()
        .find(|&(_, div)| typical >= div)
        .unwrap_or(units[0])
}

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (unit, div) = scale(
            typical,
            [
                ("ns cpu", 1.0),
                ("µs cpu", 1e3),
                ("ms cpu", 1e6),
                ("s cpu", 1e9),
            ],
        );
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_run = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => {
                n as f64
            }
        };
        // Values are nanoseconds per run: turn them into elements per CPU second.
        let rate = |ns: f64| per_run * 1e9 / ns;
        let (unit, div) = scale(
            rate(typical),
            [
                ("elem/cpu-s", 1.0),
                ("Kelem/cpu-s", 1e3),
                ("Melem/cpu-s", 1e6),
                ("Gelem/cpu-s", 1e9),
            ],
        );
        values.iter_mut().for_each(|v| *v = rate(*v) / div);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
