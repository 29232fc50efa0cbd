//! Layers of cells, each reading the output of the one below: [`Stack`] (any number of
//! layers of one cell type) and [`Pair`] (two cells of different types). Both are cells
//! themselves, so the engine, every truncation scheme, checkpoints and exports take them
//! unchanged, and they nest (`Pair<Elman, Stack<MyCell>>`).
//!
//! **State.** The layers' states lie side by side in one state matrix, the bottom layer
//! first; the stack's output `h_t` is the top layer's. **Backward.** Going down the layers
//! at each step, a layer's input gradient `∂L/∂x` is added straight into the `∂L/∂h` of the
//! layer below, in the same step's delta matrix (the contract of
//! [`StepDeltas::d_x`]: it adds), so no scratch buffer is needed.

use std::ops::Range;

use ndarray::{s, ArrayView2, ArrayViewMut2, Axis};
use recur_core::params::{concat_count, concat_slot, concat_slot_mut, concat_write_path};
use recur_core::{Error, Float, Input, ParamSet, Result, Slot, SlotMut};

use crate::step::{check_deltas, check_forward};
use crate::{Cell, StepDeltas, StepRecord};

/// Where one layer sits in the state matrix of a stack, and where its input comes from.
#[derive(Debug, Clone)]
struct LayerPlace {
    /// The layer's state columns.
    state: Range<usize>,
    /// The columns of the output `h` of the layer below, or `None` for the bottom layer,
    /// which reads the stack's input.
    input: Option<Range<usize>>,
}

impl LayerPlace {
    /// The places of layers with the given `(state_size, hidden_offset, hidden_size)`,
    /// bottom first.
    fn all(sizes: impl IntoIterator<Item = (usize, usize, usize)>) -> Vec<LayerPlace> {
        let mut places: Vec<LayerPlace> = Vec::new();
        let mut start = 0;
        let mut below: Option<Range<usize>> = None;
        for (state, offset, hidden) in sizes {
            places.push(LayerPlace {
                state: start..start + state,
                input: below.clone(),
            });
            below = Some(start + offset..start + offset + hidden);
            start += state;
        }
        places
    }

    /// Runs `layer`'s forward step on its columns of `next`.
    fn forward<F: Float, C: Cell<F>>(
        &self,
        layer: &C,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: &mut ArrayViewMut2<'_, F>,
        cache: &mut C::Cache,
    ) -> Result<()> {
        let (lower, mut own) = next.view_mut().split_at(Axis(1), self.state.start);
        let own = own.slice_mut(s![.., ..self.state.len()]);
        let prev = prev.slice(s![.., self.state.clone()]);
        match &self.input {
            None => layer.forward(x, prev, own, cache),
            Some(cols) => {
                let below = lower.slice(s![.., cols.clone()]);
                layer.forward(Input::Dense(below), prev, own, cache)
            }
        }
    }

    /// Runs `layer`'s backward step on its columns of the deltas; its input gradient goes
    /// into the `d_next` columns of the layer below (or into the stack's `d_x`).
    fn backward<F: Float, C: Cell<F>>(
        &self,
        layer: &C,
        step: StepRecord<'_, F, C::Cache>,
        deltas: &mut StepDeltas<'_, F>,
        grads: &mut C::Params,
    ) -> Result<()> {
        let cols = self.state.clone();
        let record = StepRecord {
            x: match &self.input {
                None => step.x,
                Some(below) => Input::Dense(step.next.slice_move(s![.., below.clone()])),
            },
            prev: step.prev.slice_move(s![.., cols.clone()]),
            next: step.next.slice_move(s![.., cols.clone()]),
            cache: step.cache,
        };
        let (mut lower, mut own) = deltas.d_next.view_mut().split_at(Axis(1), cols.start);
        let d_x = match &self.input {
            None => deltas.d_x.as_mut().map(|d| d.view_mut()),
            Some(below) => Some(lower.slice_mut(s![.., below.clone()])),
        };
        let layer_deltas = StepDeltas {
            d_next: own.slice_mut(s![.., ..cols.len()]),
            d_prev: deltas.d_prev.slice_mut(s![.., cols]),
            d_x,
        };
        layer.backward_stacked(record, layer_deltas, grads)
    }
}

/// A record of a composite's step with the layer's own cache in place of the composite's.
fn with_cache<'a, F: Float, K, L>(
    step: StepRecord<'a, F, K>,
    cache: &'a L,
) -> StepRecord<'a, F, L> {
    StepRecord {
        x: step.x,
        prev: step.prev,
        next: step.next,
        cache,
    }
}

/// Layers of one cell type, each reading the output of the one below: the usual
/// `num_layers` of a recurrent network. Parameters are named `layers.0.…`, `layers.1.…`.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use recur_cell::{Cell, ElmanConfig, Stack, Tanh};
/// use recur_core::params;
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let layers = vec![
///     ElmanConfig::new(10, 8).init::<f64, _>(Tanh, &mut rng)?,
///     ElmanConfig::new(8, 8).init(Tanh, &mut rng)?,
/// ];
/// let stack = Stack::new(layers)?;
/// assert_eq!((stack.input_size(), stack.hidden_size(), stack.state_size()), (10, 8, 16));
/// assert_eq!(params::path(stack.params(), 2), "layers.1.w_xh");
/// # Ok::<(), recur_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Stack<C> {
    layers: Vec<C>,
    places: Vec<LayerPlace>,
}

impl<C> Stack<C> {
    /// Stacks `layers`, bottom first.
    ///
    /// # Errors
    /// [`Error::Empty`] for no layers; [`Error::ShapeMismatch`] when a layer's input size
    /// differs from the hidden size of the layer below.
    pub fn new<F: Float>(layers: Vec<C>) -> Result<Self>
    where
        C: Cell<F>,
    {
        if layers.is_empty() {
            return Err(Error::Empty {
                op: "Stack::new",
                what: "list of layers",
            });
        }
        for pair in layers.windows(2) {
            check_feeds("Stack::new", &pair[0], &pair[1])?;
        }
        let places = LayerPlace::all(
            layers
                .iter()
                .map(|l| (l.state_size(), l.hidden_offset(), l.hidden_size())),
        );
        Ok(Stack { layers, places })
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[C] {
        &self.layers
    }

    /// The layers, writable (their sizes must stay as they are; steps check them).
    pub fn layers_mut(&mut self) -> &mut [C] {
        &mut self.layers
    }
}

/// Checks that `upper` can read the output of `lower`.
fn check_feeds<F: Float>(
    op: &'static str,
    lower: &impl Cell<F>,
    upper: &impl Cell<F>,
) -> Result<()> {
    if upper.input_size() != lower.hidden_size() {
        return Err(Error::shape(
            op,
            &[lower.hidden_size()],
            &[upper.input_size()],
        ));
    }
    Ok(())
}

/// The gradients of a [`Stack`]: one set per layer, bottom first.
#[derive(Debug, Clone)]
pub struct StackParams<P> {
    /// Per-layer gradients.
    pub layers: Vec<P>,
}

/// The per-step caches of a [`Stack`]'s layers.
#[derive(Debug)]
pub struct StackCache<K> {
    layers: Vec<K>,
}

/// The prefix of layer `i`'s paths.
struct LayerPrefix(usize);

impl std::fmt::Display for LayerPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "layers.{}", self.0)
    }
}

/// Writes the path of slot `index` of layered sets (`layers.<i>.<path in layer i>`).
fn write_layered_path<'a, F: Float + 'a>(
    layers: impl IntoIterator<Item = &'a dyn ParamSet<F>>,
    index: usize,
    out: &mut String,
) {
    concat_write_path(layers, LayerPrefix, index, out);
}

impl<F: Float, C: Cell<F>> ParamSet<F> for Stack<C> {
    fn slot_count(&self) -> usize {
        concat_count(self.layers.iter().map(|l| l.params()))
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot(self.layers.iter().map(|l| l.params()), index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut(self.layers.iter_mut().map(|l| l.params_mut()), index)
    }
    fn write_path(&self, index: usize, out: &mut String) {
        write_layered_path(self.layers.iter().map(|l| l.params()), index, out);
    }
}

impl<F: Float, P: ParamSet<F>> ParamSet<F> for StackParams<P> {
    fn slot_count(&self) -> usize {
        concat_count(self.layers.iter().map(|l| l as &dyn ParamSet<F>))
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot(self.layers.iter().map(|l| l as &dyn ParamSet<F>), index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut(
            self.layers.iter_mut().map(|l| l as &mut dyn ParamSet<F>),
            index,
        )
    }
    fn write_path(&self, index: usize, out: &mut String) {
        write_layered_path(
            self.layers.iter().map(|l| l as &dyn ParamSet<F>),
            index,
            out,
        );
    }
    fn zero(&mut self) {
        self.layers.iter_mut().for_each(ParamSet::zero);
    }
}

impl<F: Float, C: Cell<F>> Cell<F> for Stack<C> {
    type Params = StackParams<C::Params>;
    type Cache = StackCache<C::Cache>;

    fn input_size(&self) -> usize {
        self.layers[0].input_size()
    }

    fn hidden_size(&self) -> usize {
        self.top().hidden_size()
    }

    fn state_size(&self) -> usize {
        self.places.last().map_or(0, |p| p.state.end)
    }

    fn hidden_offset(&self) -> usize {
        self.places.last().map_or(0, |p| p.state.start) + self.top().hidden_offset()
    }

    fn params(&self) -> &dyn ParamSet<F> {
        self
    }

    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        self
    }

    fn zero_grads(&self) -> Self::Params {
        StackParams {
            layers: self.layers.iter().map(Cell::zero_grads).collect(),
        }
    }

    fn new_cache(&self, batch: usize) -> Self::Cache {
        StackCache {
            layers: self.layers.iter().map(|l| l.new_cache(batch)).collect(),
        }
    }

    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        cache: &mut Self::Cache,
    ) -> Result<()> {
        check_forward("Stack::forward", self, x, prev, next.view())?;
        for ((layer, place), cache) in self.layers.iter().zip(&self.places).zip(&mut cache.layers) {
            place.forward(layer, x, prev, &mut next, cache)?;
        }
        Ok(())
    }

    fn backward(
        &self,
        step: StepRecord<'_, F, Self::Cache>,
        deltas: StepDeltas<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        self.backward_stacked(step, deltas, grads)
    }

    /// Top layer first, each with all blocks at once.
    fn backward_stacked(
        &self,
        step: StepRecord<'_, F, Self::Cache>,
        mut deltas: StepDeltas<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        check_deltas("Stack::backward", self, step, &deltas)?;
        let layers = self.layers.iter().zip(&self.places).zip(&step.cache.layers);
        for (((layer, place), cache), grads) in layers.zip(&mut grads.layers).rev() {
            place.backward(layer, with_cache(step, cache), &mut deltas, grads)?;
        }
        Ok(())
    }
}

impl<C> Stack<C> {
    fn top(&self) -> &C {
        self.layers.last().expect("a stack has at least one layer")
    }
}

/// Two cells of different types, `upper` reading the output of `lower`: an Elman layer
/// under a user's cell, or any two layers. Parameters are named `layers.0.…` (lower) and
/// `layers.1.…` (upper), as in a [`Stack`]; pairs nest for deeper mixed stacks.
#[derive(Debug, Clone)]
pub struct Pair<A, B> {
    lower: A,
    upper: B,
    places: [LayerPlace; 2],
}

impl<A, B> Pair<A, B> {
    /// `upper` on top of `lower`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `upper`'s input size differs from `lower`'s hidden
    /// size.
    pub fn new<F: Float>(lower: A, upper: B) -> Result<Self>
    where
        A: Cell<F>,
        B: Cell<F>,
    {
        check_feeds("Pair::new", &lower, &upper)?;
        let sizes = [
            (
                lower.state_size(),
                lower.hidden_offset(),
                lower.hidden_size(),
            ),
            (
                upper.state_size(),
                upper.hidden_offset(),
                upper.hidden_size(),
            ),
        ];
        let mut places = LayerPlace::all(sizes).into_iter();
        let places = [places.next(), places.next()].map(|p| p.expect("two layers, two places"));
        Ok(Pair {
            lower,
            upper,
            places,
        })
    }

    /// The lower layer.
    pub fn lower(&self) -> &A {
        &self.lower
    }

    /// The upper layer.
    pub fn upper(&self) -> &B {
        &self.upper
    }
}

/// The gradients of a [`Pair`].
#[derive(Debug, Clone)]
pub struct PairParams<P, Q> {
    /// The lower layer's gradients.
    pub lower: P,
    /// The upper layer's gradients.
    pub upper: Q,
}

impl<F: Float, A: Cell<F>, B: Cell<F>> ParamSet<F> for Pair<A, B> {
    fn slot_count(&self) -> usize {
        concat_count([self.lower.params(), self.upper.params()])
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot([self.lower.params(), self.upper.params()], index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut([self.lower.params_mut(), self.upper.params_mut()], index)
    }
    fn write_path(&self, index: usize, out: &mut String) {
        write_layered_path([self.lower.params(), self.upper.params()], index, out);
    }
}

impl<F: Float, P: ParamSet<F>, Q: ParamSet<F>> ParamSet<F> for PairParams<P, Q> {
    fn slot_count(&self) -> usize {
        self.lower.slot_count() + self.upper.slot_count()
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot([&self.lower as &dyn ParamSet<F>, &self.upper], index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut(
            [&mut self.lower as &mut dyn ParamSet<F>, &mut self.upper],
            index,
        )
    }
    fn write_path(&self, index: usize, out: &mut String) {
        let layers = [&self.lower as &dyn ParamSet<F>, &self.upper];
        write_layered_path(layers, index, out);
    }
    fn zero(&mut self) {
        self.lower.zero();
        self.upper.zero();
    }
}

impl<F: Float, A: Cell<F>, B: Cell<F>> Cell<F> for Pair<A, B> {
    type Params = PairParams<A::Params, B::Params>;
    type Cache = (A::Cache, B::Cache);

    fn input_size(&self) -> usize {
        self.lower.input_size()
    }

    fn hidden_size(&self) -> usize {
        self.upper.hidden_size()
    }

    fn state_size(&self) -> usize {
        self.places[1].state.end
    }

    fn hidden_offset(&self) -> usize {
        self.places[1].state.start + self.upper.hidden_offset()
    }

    fn params(&self) -> &dyn ParamSet<F> {
        self
    }

    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        self
    }

    fn zero_grads(&self) -> Self::Params {
        PairParams {
            lower: self.lower.zero_grads(),
            upper: self.upper.zero_grads(),
        }
    }

    fn new_cache(&self, batch: usize) -> Self::Cache {
        (self.lower.new_cache(batch), self.upper.new_cache(batch))
    }

    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        cache: &mut Self::Cache,
    ) -> Result<()> {
        check_forward("Pair::forward", self, x, prev, next.view())?;
        let [lower, upper] = &self.places;
        lower.forward(&self.lower, x, prev, &mut next, &mut cache.0)?;
        upper.forward(&self.upper, x, prev, &mut next, &mut cache.1)
    }

    fn backward(
        &self,
        step: StepRecord<'_, F, Self::Cache>,
        deltas: StepDeltas<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        self.backward_stacked(step, deltas, grads)
    }

    fn backward_stacked(
        &self,
        step: StepRecord<'_, F, Self::Cache>,
        mut deltas: StepDeltas<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        check_deltas("Pair::backward", self, step, &deltas)?;
        let [lower, upper] = &self.places;
        let upper_step = with_cache(step, &step.cache.1);
        upper.backward(&self.upper, upper_step, &mut deltas, &mut grads.upper)?;
        let lower_step = with_cache(step, &step.cache.0);
        lower.backward(&self.lower, lower_step, &mut deltas, &mut grads.lower)
    }
}
