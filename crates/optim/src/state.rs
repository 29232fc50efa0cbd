//! Serialisable optimizer state, and the per-slot buffers optimizers keep.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use recur_core::{params, Error, Float, ParamSet, Result};
use serde::{Deserialize, Serialize};

/// Everything an optimizer needs to resume bit-identically: its kind, hyper-parameters,
/// step count and per-slot buffers (velocities, squared-gradient averages, moments).
///
/// Produced by [`Optimizer::state`](crate::Optimizer::state) and consumed by
/// [`Optimizer::load_state`](crate::Optimizer::load_state) or
/// [`OptimizerState::into_optimizer`]. It derives serde, so a checkpoint can store it as is.
///
/// Bit-identical resumption needs a format that round-trips floats exactly: binary formats
/// do; with `serde_json`, enable its `float_roundtrip` feature.
///
/// ```
/// use ndarray::array;
/// use recur_optim::{Adam, Optimizer};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut params = (array![[1.0_f64, 2.0]], array![0.5_f64]);
/// let grads = (array![[0.1_f64, -0.2]], array![0.3_f64]);
/// let mut adam = Adam::new(0.01, 0.9, 0.999, 1e-8)?;
/// adam.step(&mut params, &grads)?;
///
/// let state = adam.state();
/// assert_eq!(state.kind, "adam");
/// assert_eq!(state.steps, 1);
/// assert_eq!(state.slots.len(), 2); // one entry per parameter slot, each with m and v
///
/// // A fresh optimizer of the same kind picks up exactly where the first one stopped.
/// let mut resumed = state.clone().into_optimizer()?;
/// assert_eq!(resumed.steps_taken(), 1);
/// assert_eq!(resumed.state(), state);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "F: Float")]
pub struct OptimizerState<F> {
    /// The optimizer kind, as returned by [`Optimizer::name`](crate::Optimizer::name)
    /// (`"sgd"`, `"momentum"`, `"nesterov"`, `"adagrad"`, `"rmsprop"`, `"adam"`).
    pub kind: String,
    /// The scalar type the state was taken with ([`Float::NAME`]: `"f32"` or `"f64"`).
    pub float: String,
    /// Hyper-parameters by name (`"lr"`, `"momentum"`, `"eps"`, `"decay"`, `"beta1"`,
    /// `"beta2"`), exactly as the optimizer holds them.
    pub hyper: BTreeMap<String, F>,
    /// Number of updates taken.
    pub steps: u64,
    /// Per-slot buffers in the parameter set's slot order; empty before the first step and
    /// for stateless optimizers (SGD).
    pub slots: Vec<SlotState<F>>,
}

/// The buffers an optimizer keeps for one parameter slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "F: Float")]
pub struct SlotState<F> {
    /// The slot's name in the parameter set.
    pub name: String,
    /// The buffers, each with the slot's shape (momentum: velocity; Adagrad: sum of squared
    /// gradients; RMSprop: mean squared gradient; Adam: first then second moment).
    pub buffers: Vec<ArrayD<F>>,
}

impl<F: Float> OptimizerState<F> {
    /// Builds the optimizer this state describes, with its buffers and step count.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown kind, another float type, missing, unknown or
    /// out-of-range hyper-parameters; [`Error::LayoutMismatch`] when the buffers do not fit
    /// the kind (wrong count, shapes that differ within a slot).
    pub fn into_optimizer(self) -> Result<Box<dyn crate::Optimizer<F>>> {
        use crate::{Adagrad, Adam, Momentum, RmsProp, Sgd};
        let one = F::one();
        // Any valid placeholder works: `load_state` replaces every hyper-parameter.
        let mut opt: Box<dyn crate::Optimizer<F>> = match self.kind.as_str() {
            "sgd" => Box::new(Sgd::new(one)?),
            "momentum" => Box::new(Momentum::new(one, F::zero())?),
            "nesterov" => Box::new(Momentum::nesterov(one, F::zero())?),
            "adagrad" => Box::new(Adagrad::new(one, one)?),
            "rmsprop" => Box::new(RmsProp::new(one, F::zero(), one)?),
            "adam" => Box::new(Adam::new(one, F::zero(), F::zero(), one)?),
            other => {
                return Err(Error::config(
                    "optimizer state",
                    format!(
                        "unknown optimizer kind {other:?}; expected one of sgd, momentum, \
                         nesterov, adagrad, rmsprop, adam"
                    ),
                ))
            }
        };
        opt.load_state(self)?;
        Ok(opt)
    }

    /// Checks that the buffers fit `params` (same slot count, names and shapes), so a
    /// checkpoint loader can reject a mismatched state before training starts. A state
    /// without buffers (before the first step, or SGD) fits any parameter set.
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] naming the first slot that differs.
    pub fn check_layout(&self, params: &dyn ParamSet<F>) -> Result<()> {
        if self.slots.is_empty() {
            return Ok(());
        }
        if self.slots.len() != params.slot_count() {
            return Err(slot_count_mismatch(self.slots.len(), params.slot_count()));
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let p = params.slot(i);
            for buffer in &slot.buffers {
                if !params::saved_name_matches(&slot.name, params, i)
                    || buffer.shape() != p.value.shape()
                {
                    return Err(slot_mismatch(
                        i,
                        &slot.name,
                        buffer.shape(),
                        &params::path(params, i),
                        p.value.shape(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks kind and float type, then returns the hyper-parameter map for
    /// [`Hyper::take`].
    pub(crate) fn open(&mut self, kind: &str) -> Result<Hyper<F>> {
        if self.kind != kind {
            return Err(Error::config(
                "optimizer state",
                format!(
                    "the state is for a {:?} optimizer, this one is {kind:?}; \
                     build the optimizer from the state instead (OptimizerState::into_optimizer)",
                    self.kind
                ),
            ));
        }
        if self.float != F::NAME {
            return Err(Error::config(
                "optimizer state",
                format!(
                    "the state holds {} values, this optimizer computes in {}",
                    self.float,
                    F::NAME
                ),
            ));
        }
        Ok(Hyper {
            kind: self.kind.clone(),
            map: std::mem::take(&mut self.hyper),
        })
    }
}

/// The hyper-parameter map of a state being loaded: taken one by one, then checked for
/// leftovers so a misspelt key is an error rather than silently ignored.
#[derive(Debug)]
pub(crate) struct Hyper<F> {
    kind: String,
    map: BTreeMap<String, F>,
}

impl<F: Float> Hyper<F> {
    pub(crate) fn take(&mut self, key: &'static str) -> Result<F> {
        self.map.remove(key).ok_or_else(|| {
            Error::config(
                "optimizer state",
                format!("the {} state has no hyper-parameter {key:?}", self.kind),
            )
        })
    }

    pub(crate) fn finish(self) -> Result<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => Err(Error::config(
                "optimizer state",
                format!("unknown hyper-parameter {key:?} for {}", self.kind),
            )),
        }
    }
}

/// Builds a state from its parts (used by every optimizer's `state`).
pub(crate) fn snapshot<F: Float>(
    kind: &str,
    hyper: &[(&str, F)],
    steps: u64,
    slots: Vec<SlotState<F>>,
) -> OptimizerState<F> {
    OptimizerState {
        kind: kind.to_string(),
        float: F::NAME.to_string(),
        hyper: hyper.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
        steps,
        slots,
    }
}

/// `N` buffers per parameter slot, allocated at the first step with the gradients' shapes
/// and reused afterwards. `None` until then.
#[derive(Debug, Clone, Default)]
pub(crate) struct PerSlot<F, const N: usize> {
    slots: Option<Vec<(String, [ArrayD<F>; N])>>,
}

impl<F: Float, const N: usize> PerSlot<F, N> {
    /// Checks that existing buffers fit `grads` (no allocation on success).
    pub(crate) fn check(&self, grads: &dyn ParamSet<F>) -> Result<()> {
        let Some(slots) = &self.slots else {
            return Ok(());
        };
        if slots.len() != grads.slot_count() {
            return Err(slot_count_mismatch(slots.len(), grads.slot_count()));
        }
        for (i, (name, buffers)) in slots.iter().enumerate() {
            let g = grads.slot(i);
            // Every buffer of a slot has the same shape (checked when loaded).
            let shape = buffers.first().map_or(g.value.shape(), |b| b.shape());
            // Every update runs this: compare the slot's own name, which ends the stored
            // path, without building the path.
            if !name.ends_with(g.name) || shape != g.value.shape() {
                let path = params::path(grads, i);
                return Err(slot_mismatch(i, name, shape, &path, g.value.shape()));
            }
        }
        Ok(())
    }

    /// Allocates zeroed buffers on first use; afterwards returns the existing ones.
    /// Call [`PerSlot::check`] first.
    pub(crate) fn get_or_alloc(
        &mut self,
        grads: &dyn ParamSet<F>,
    ) -> &mut [(String, [ArrayD<F>; N])] {
        self.slots.get_or_insert_with(|| {
            (0..grads.slot_count())
                .map(|i| {
                    let shape = grads.slot(i).value.raw_dim();
                    (
                        params::path(grads, i),
                        std::array::from_fn(|_| ArrayD::zeros(shape.clone())),
                    )
                })
                .collect()
        })
    }

    pub(crate) fn clear(&mut self) {
        self.slots = None;
    }

    pub(crate) fn to_state(&self) -> Vec<SlotState<F>> {
        self.slots
            .iter()
            .flatten()
            .map(|(name, buffers)| SlotState {
                name: name.clone(),
                buffers: buffers.to_vec(),
            })
            .collect()
    }

    /// Rebuilds the buffers from a loaded state, checking their count and shapes.
    pub(crate) fn from_state(kind: &str, slots: Vec<SlotState<F>>) -> Result<Self> {
        if slots.is_empty() {
            return Ok(Self { slots: None });
        }
        let mut out = Vec::with_capacity(slots.len());
        for (i, slot) in slots.into_iter().enumerate() {
            let found = slot.buffers.len();
            let buffers: [ArrayD<F>; N] =
                slot.buffers.try_into().map_err(|_| Error::LayoutMismatch {
                    slot: i,
                    name: slot.name.clone(),
                    reason: format!("{kind} keeps {N} buffer(s) per slot, the state has {found}"),
                })?;
            if let Some(first) = buffers.first() {
                if let Some(other) = buffers.iter().find(|b| b.shape() != first.shape()) {
                    return Err(Error::LayoutMismatch {
                        slot: i,
                        name: slot.name,
                        reason: format!(
                            "buffers of one slot differ in shape: {:?} versus {:?}",
                            first.shape(),
                            other.shape()
                        ),
                    });
                }
            }
            out.push((slot.name, buffers));
        }
        Ok(Self { slots: Some(out) })
    }
}

fn slot_count_mismatch(state: usize, params: usize) -> Error {
    Error::LayoutMismatch {
        slot: state.min(params),
        name: String::new(),
        reason: format!(
            "the optimizer state was built for {state} slots, the parameter set has {params}; \
             reset the optimizer to use it with another model"
        ),
    }
}

fn slot_mismatch(
    slot: usize,
    state_name: &str,
    state_shape: &[usize],
    name: &str,
    shape: &[usize],
) -> Error {
    Error::LayoutMismatch {
        slot,
        name: name.to_string(),
        reason: format!(
            "the optimizer state was built for {state_name} {state_shape:?}, found {name} \
             {shape:?}; reset the optimizer to use it with another model"
        ),
    }
}
