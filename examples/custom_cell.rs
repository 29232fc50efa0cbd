//! A cell and an activation written outside the library, trained through recur's engine.
//!
//! The cell is a *leaky* Elman cell, `h_t = (1 − α)·h_{t−1} + α·f(x_t·W_xh + h_{t−1}·W_hh + b)`,
//! which lets its state change slowly. The activation is swish, `f(x) = x·σ(x)`, whose
//! derivative needs the input `x` and not just the output. Implementing [`Cell`] and
//! [`Activation`] is all it takes: the engine, every truncation scheme, the gradient check and
//! the optimizers then work unchanged.
//!
//! The task: from a stream of random bits, predict whether more ones than zeros were seen in
//! the last few steps, which needs memory.
//!
//! ```text
//! cargo run --release --example custom_cell
//! ```

use ndarray::{azip, Array1, Array2, Array3, ArrayView2, ArrayViewMut2, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::cell::step::{
    check_deltas, check_forward, input_delta, input_product, input_weight_grad,
};
use recur::core::linalg::gemm;
use recur::core::params;
use recur::prelude::*;
use recur::{gradient_check, param_set, Error, Result};
use serde::{Deserialize, Serialize};

/// Swish `x·σ(x)`; its derivative `σ(x)·(1 + x·(1 − σ(x)))` needs `x`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Swish;

impl<F: Float> Activation<F> for Swish {
    fn name(&self) -> &'static str {
        "swish"
    }
    fn apply(&self, x: F) -> F {
        x * Sigmoid.apply(x)
    }
    fn derivative(&self, x: F, _y: F) -> F {
        let s = Sigmoid.apply(x);
        s * (F::one() + x * (F::one() - s))
    }
    fn needs_input(&self) -> bool {
        true
    }
}

// --- The cell: parameters, state, forward and backward. ---
param_set! {
    /// Weights (or gradients): `w_xh [input, hidden]`, `w_hh [hidden, hidden]`, `b_h [hidden]`.
    pub struct LeakyParams<F> {
        w_xh: Array2<F>,
        w_hh: Array2<F>,
        b_h: Array1<F>,
    }
}

/// `h_t = (1 − α)·h_{t−1} + α·f(z_t)` with `z_t = x_t·W_xh + h_{t−1}·W_hh + b`, α in (0, 1].
#[derive(Debug, Clone)]
pub struct LeakyElman<F, A> {
    params: LeakyParams<F>,
    activation: A,
    alpha: F,
}

impl<F: Float, A: Activation<F>> Cell<F> for LeakyElman<F, A> {
    type Params = LeakyParams<F>;
    type Cache = (Array2<F>, Array2<F>); // per step: z and y = f(z)

    fn input_size(&self) -> usize {
        self.params.w_xh.nrows()
    }
    fn hidden_size(&self) -> usize {
        self.params.w_hh.nrows()
    }
    fn params(&self) -> &dyn ParamSet<F> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        &mut self.params
    }
    fn zero_grads(&self) -> LeakyParams<F> {
        params::zeroed(&self.params)
    }
    fn new_cache(&self, batch: usize) -> Self::Cache {
        let zeros = || Array2::zeros((batch, self.hidden_size()));
        (zeros(), zeros())
    }

    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        (z, y): &mut Self::Cache,
    ) -> Result<()> {
        check_forward("LeakyElman", self, x, prev, next.view())?;
        let (p, f, alpha) = (&self.params, &self.activation, self.alpha);
        gemm(F::one(), prev, p.w_hh.view(), F::zero(), z.view_mut())?;
        input_product(x, p.w_xh.view(), F::one(), z.view_mut())?;
        *z += &p.b_h;
        azip!((y in &mut *y, &z in &*z) *y = f.apply(z));
        azip!((h in next, &h_prev in &prev, &y in &*y) *h = (F::one() - alpha) * h_prev + alpha * y);
        Ok(())
    }

    fn backward(
        &self,
        step: StepRecord<'_, F, Self::Cache>,
        mut deltas: StepDeltas<'_, F>,
        grads: &mut LeakyParams<F>,
    ) -> Result<()> {
        check_deltas("LeakyElman", self, step, &deltas)?;
        let (p, f, alpha, (z, y)) = (&self.params, &self.activation, self.alpha, step.cache);
        let d = &mut deltas;
        // The leak passes (1 − α)·d_next straight through; take it before d_next becomes dz.
        azip!((dp in &mut d.d_prev, &dn in &d.d_next) *dp = (F::one() - alpha) * dn);
        azip!((d in &mut d.d_next, &z in z, &y in y) *d *= alpha * f.derivative(z, y));
        let dz = d.d_next.view();
        gemm(F::one(), dz, p.w_hh.t(), F::one(), d.d_prev.view_mut())?;
        input_delta(dz, p.w_xh.view(), d.d_x.as_mut())?;
        gemm(F::one(), step.prev.t(), dz, F::one(), grads.w_hh.view_mut())?;
        input_weight_grad(step.x, dz, grads.w_xh.view_mut(), &mut None)?;
        dz.rows().into_iter().for_each(|row| grads.b_h += &row);
        Ok(())
    }
}

// --- End of the cell. ---

impl<F: Float, A: Activation<F>> LeakyElman<F, A> {
    /// A cell with weights uniform in ±1/√fan-in, zero bias and leak rate `alpha`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero sizes or `alpha` outside (0, 1].
    pub fn new(
        input: usize,
        hidden: usize,
        alpha: f64,
        activation: A,
        rng: &mut StdRng,
    ) -> Result<Self> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(Error::config("alpha", format!("{alpha} is not in (0, 1]")));
        }
        if input == 0 || hidden == 0 {
            return Err(Error::config("LeakyElman", "sizes must be at least 1"));
        }
        let params = LeakyParams {
            w_xh: Init::UniformFanIn.matrix(input, hidden, rng)?,
            w_hh: Init::UniformFanIn.matrix(hidden, hidden, rng)?,
            b_h: Array1::zeros(hidden),
        };
        Ok(LeakyElman {
            params,
            activation,
            alpha: F::from_f64_lossy(alpha),
        })
    }
}

/// A batch of the majority task: `[steps, batch, 1]` bits in, "more ones than zeros among
/// the last `window` bits" out.
pub fn majority_batch(
    steps: usize,
    batch: usize,
    window: usize,
    rng: &mut StdRng,
) -> (Array3<f64>, Array3<f64>) {
    let x = Array3::from_shape_fn((steps, batch, 1), |_| f64::from(rng.random_range(0..2u8)));
    let y = Array3::from_shape_fn((steps, batch, 1), |(t, b, _)| {
        let from = (t + 1).saturating_sub(window);
        let ones: f64 = (from..=t).map(|s| x[[s, b, 0]]).sum();
        f64::from(u8::from(2.0 * ones > (t + 1 - from) as f64))
    });
    (x, y)
}

/// What [`run`] measured.
#[derive(Debug)]
pub struct Outcome {
    /// Worst relative error of the gradient check before training.
    pub gradient_error: f64,
    /// Mean loss per step on a held-out batch before and after training.
    pub loss_before: f64,
    /// See `loss_before`.
    pub loss_after: f64,
    /// Fraction of held-out steps classified correctly after training.
    pub accuracy: f64,
}

/// Checks the custom cell's gradient, then trains it on the majority task.
///
/// # Errors
/// Whatever the library reports.
pub fn run(seed: u64, updates: usize) -> Result<Outcome> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cell = LeakyElman::new(1, 12, 0.5, Swish, &mut rng)?;
    let readout = LinearConfig::new(12, 1).with_bias(true).init(&mut rng)?;
    let mut model = Model::new(cell, readout)?;
    let loss = SigmoidBinaryCrossEntropy;

    // The first test of any new cell: analytic gradients against central differences.
    let (x, y) = majority_batch(6, 2, 3, &mut rng);
    let probe = SeqBatch {
        inputs: SeqInput::Dense(x.view()),
        targets: SeqTargets::Dense(y.view()),
    };
    let gradient_error =
        gradient_check(&mut model, &loss, probe, Reduction::Mean, 1e-5, 1)?.max_relative_error();

    // Train with the shared loop: `updates` fresh batches, a held-out batch evaluated
    // before and after.
    let (x_test, y_test) = majority_batch(40, 32, 3, &mut rng);
    let mut train = Majority {
        fresh: Some(seed),
        batches: updates,
        data: (Array3::zeros((0, 0, 0)), Array3::zeros((0, 0, 0))),
    };
    let mut test = Majority {
        fresh: None,
        batches: 1,
        data: (x_test.clone(), y_test.clone()),
    };
    let optimizer = Box::new(recur::Adam::new(0.02, 0.9, 0.999, 1e-8)?);
    let mut trainer = Trainer::new(&model, Truncation::chunked(10)?, Reduction::Mean, optimizer);
    let mut state = RunState::default();
    let fit = Fit::epochs(1).validate_on(&mut test);
    trainer.fit(&mut model, &loss, &mut train, fit, &mut state)?;
    let valid = |i: usize| state.evaluations[i].valid_loss.unwrap_or(f64::NAN);
    Ok(Outcome {
        gradient_error,
        loss_before: valid(0),
        loss_after: valid(state.evaluations.len() - 1),
        accuracy: accuracy(&model, &x_test, &y_test)?,
    })
}

/// Batches of the majority task: with a `fresh` seed, batch `i` is 30 steps × 16 sequences
/// drawn with a seed made from it and `i`; without, the one batch held in `data`.
struct Majority {
    fresh: Option<u64>,
    batches: usize,
    data: (Array3<f64>, Array3<f64>),
}

impl Batches<f64> for Majority {
    fn len(&self) -> usize {
        self.batches
    }

    fn get(&mut self, _epoch: usize, index: usize) -> Result<SeqBatch<'_, f64>> {
        if let Some(seed) = self.fresh {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ index as u64);
            self.data = majority_batch(30, 16, 3, &mut rng);
        }
        Ok(SeqBatch {
            inputs: SeqInput::Dense(self.data.0.view()),
            targets: SeqTargets::Dense(self.data.1.view()),
        })
    }
}

fn accuracy<C: Cell<f64>>(model: &Model<f64, C>, x: &Array3<f64>, y: &Array3<f64>) -> Result<f64> {
    let (steps, batch, _) = x.dim();
    let mut predictor = Predictor::new(model, batch);
    let mut correct = 0;
    for t in 0..steps {
        let logits = predictor.step(model, Input::Dense(x.index_axis(Axis(0), t)))?;
        for b in 0..batch {
            correct += usize::from((logits[[b, 0]] > 0.0) == (y[[t, b, 0]] > 0.5));
        }
    }
    Ok(correct as f64 / (steps * batch) as f64)
}

#[allow(dead_code)]
fn main() -> Result<()> {
    let outcome = run(1, 300)?;
    println!(
        "gradient check, worst relative error: {:.2e}",
        outcome.gradient_error
    );
    println!(
        "held-out loss per step: {:.4} before, {:.4} after training; accuracy {:.1} %",
        outcome.loss_before,
        outcome.loss_after,
        100.0 * outcome.accuracy
    );
    Ok(())
}
