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

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayViewMut2, Axis, Zip};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::core::linalg::gemm;
use recur::core::{Slot, SlotMut};
use recur::prelude::*;
use recur::{gradient_check, Error, Result};
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

/// Parameters (or gradients) of a [`LeakyElman`] cell. Slot order: `w_xh`, `w_hh`, `b_h`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeakyParams<F> {
    /// Input weights `[input, hidden]`.
    pub w_xh: Array2<F>,
    /// Recurrent weights `[hidden, hidden]`.
    pub w_hh: Array2<F>,
    /// Bias `[hidden]`.
    pub b_h: Array1<F>,
}

impl<F: Float> ParamSet<F> for LeakyParams<F> {
    fn slot_count(&self) -> usize {
        3
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        let (name, value) = match index {
            0 => ("w_xh", self.w_xh.view().into_dyn()),
            1 => ("w_hh", self.w_hh.view().into_dyn()),
            2 => ("b_h", self.b_h.view().into_dyn()),
            _ => panic!("LeakyParams has 3 slots, not {}", index + 1),
        };
        Slot {
            name,
            value,
            rows: None,
        }
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        let (name, value) = match index {
            0 => ("w_xh", self.w_xh.view_mut().into_dyn()),
            1 => ("w_hh", self.w_hh.view_mut().into_dyn()),
            2 => ("b_h", self.b_h.view_mut().into_dyn()),
            _ => panic!("LeakyParams has 3 slots, not {}", index + 1),
        };
        SlotMut { name, value }
    }
}

/// `h_t = (1 − α)·h_{t−1} + α·f(x_t·W_xh + h_{t−1}·W_hh + b)`.
#[derive(Debug, Clone)]
pub struct LeakyElman<F, A> {
    params: LeakyParams<F>,
    activation: A,
    /// Leak rate α in (0, 1].
    alpha: F,
}

/// Per step: the pre-activation `z` and the activation's output `y = f(z)`.
#[derive(Debug)]
pub struct LeakyCache<F> {
    z: Array2<F>,
    y: Array2<F>,
}

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

    fn check(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayView2<'_, F>,
    ) -> Result<()> {
        x.check("LeakyElman", x.batch(), self.input_size())?;
        let expected = [x.batch(), self.hidden_size()];
        for dim in [prev.dim(), next.dim()] {
            if dim != (expected[0], expected[1]) {
                return Err(Error::shape("LeakyElman", &expected, &[dim.0, dim.1]));
            }
        }
        Ok(())
    }
}

impl<F: Float, A: Activation<F>> Cell<F> for LeakyElman<F, A> {
    type Params = LeakyParams<F>;
    type Cache = LeakyCache<F>;

    fn input_size(&self) -> usize {
        self.params.w_xh.nrows()
    }
    fn hidden_size(&self) -> usize {
        self.params.w_hh.nrows()
    }
    fn params(&self) -> &LeakyParams<F> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut LeakyParams<F> {
        &mut self.params
    }
    fn zero_grads(&self) -> LeakyParams<F> {
        LeakyParams {
            w_xh: Array2::zeros(self.params.w_xh.raw_dim()),
            w_hh: Array2::zeros(self.params.w_hh.raw_dim()),
            b_h: Array1::zeros(self.params.b_h.raw_dim()),
        }
    }
    fn new_cache(&self, batch: usize) -> LeakyCache<F> {
        let shape = (batch, self.hidden_size());
        LeakyCache {
            z: Array2::zeros(shape),
            y: Array2::zeros(shape),
        }
    }

    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        cache: &mut LeakyCache<F>,
    ) -> Result<()> {
        self.check(x, prev, next.view())?;
        let p = &self.params;
        let z = &mut cache.z;
        gemm(F::one(), prev, p.w_hh.view(), F::zero(), z.view_mut())?;
        match x {
            Input::Dense(x) => gemm(F::one(), x, p.w_xh.view(), F::one(), z.view_mut())?,
            Input::Tokens(ids) => {
                for (&id, mut row) in ids.iter().zip(z.rows_mut()) {
                    row += &p.w_xh.row(id);
                }
            }
        }
        *z += &p.b_h;
        let (act, alpha) = (&self.activation, self.alpha);
        Zip::from(&mut cache.y)
            .and(&*z)
            .for_each(|y, &z| *y = act.apply(z));
        Zip::from(&mut next)
            .and(&prev)
            .and(&cache.y)
            .for_each(|h, &h_prev, &y| *h = (F::one() - alpha) * h_prev + alpha * y);
        Ok(())
    }

    fn backward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayView2<'_, F>,
        cache: &LeakyCache<F>,
        mut d_next: ArrayViewMut2<'_, F>,
        mut d_prev: ArrayViewMut2<'_, F>,
        grads: &mut LeakyParams<F>,
    ) -> Result<()> {
        self.check(x, prev, next)?;
        let (act, alpha) = (&self.activation, self.alpha);
        // The leak passes (1 − α)·d_next straight through; write it before d_next becomes dz.
        Zip::from(&mut d_prev)
            .and(&d_next)
            .for_each(|dp, &dn| *dp = (F::one() - alpha) * dn);
        Zip::from(&mut d_next)
            .and(&cache.z)
            .and(&cache.y)
            .for_each(|d, &z, &y| *d *= alpha * act.derivative(z, y));
        let dz = d_next.view();
        gemm(
            F::one(),
            dz,
            self.params.w_hh.t(),
            F::one(),
            d_prev.view_mut(),
        )?;
        gemm(F::one(), prev.t(), dz, F::one(), grads.w_hh.view_mut())?;
        match x {
            Input::Dense(x) => gemm(F::one(), x.t(), dz, F::one(), grads.w_xh.view_mut())?,
            Input::Tokens(ids) => {
                for (&id, row) in ids.iter().zip(dz.rows()) {
                    let mut g = grads.w_xh.row_mut(id);
                    g += &row;
                }
            }
        }
        for row in dz.rows() {
            grads.b_h += &row;
        }
        Ok(())
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

    let (x_test, y_test) = majority_batch(40, 32, 3, &mut rng);
    let test = SeqBatch {
        inputs: SeqInput::Dense(x_test.view()),
        targets: SeqTargets::Dense(y_test.view()),
    };
    let optimizer = Box::new(recur::Adam::new(0.02, 0.9, 0.999, 1e-8)?);
    let mut trainer = Trainer::new(&model, Truncation::chunked(10)?, Reduction::Mean, optimizer);
    let loss_before = trainer.evaluate(&model, &loss, test)?.mean();
    for _ in 0..updates {
        let (x, y) = majority_batch(30, 16, 3, &mut rng);
        let batch = SeqBatch {
            inputs: SeqInput::Dense(x.view()),
            targets: SeqTargets::Dense(y.view()),
        };
        trainer.train_batch(&mut model, &loss, batch, None)?;
    }
    let loss_after = trainer.evaluate(&model, &loss, test)?.mean();
    let accuracy = accuracy(&model, &x_test, &y_test)?;
    Ok(Outcome {
        gradient_error,
        loss_before,
        loss_after,
        accuracy,
    })
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
