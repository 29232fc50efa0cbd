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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use recur_core::params::{concat_count, concat_slot, concat_slot_mut, concat_write_path};
use recur_core::{Error, Float, Input, ParamSet, Result, Slot, SlotMut};

use crate::step::{check_deltas, check_forward};
use crate::{Cell, StepDeltas, StepRecord, SweepRecord};

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

    /// Runs `layer`'s forward step on its columns of `next`; with `dropout`, on the output
    /// of the layer below with units dropped.
    fn forward<F: Float, C: Cell<F>>(
        &self,
        layer: &C,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: &mut ArrayViewMut2<'_, F>,
        cache: &mut C::Cache,
        dropout: Option<(&Dropout, &mut Dropped<F>)>,
    ) -> Result<()> {
        let (lower, mut own) = next.view_mut().split_at(Axis(1), self.state.start);
        let own = own.slice_mut(s![.., ..self.state.len()]);
        let prev = prev.slice(s![.., self.state.clone()]);
        match (&self.input, dropout) {
            (None, _) => layer.forward(x, prev, own, cache),
            (Some(cols), None) => {
                let below = lower.slice(s![.., cols.clone()]);
                layer.forward(Input::Dense(below), prev, own, cache)
            }
            (Some(cols), Some((dropout, dropped))) => {
                dropout.apply(lower.slice(s![.., cols.clone()]), dropped);
                layer.forward(Input::Dense(dropped.input.view()), prev, own, cache)
            }
        }
    }

    /// Runs `layer`'s backward step on its columns of the deltas; its input gradient goes
    /// into the `d_next` columns of the layer below (through the dropout mask, if its input
    /// was `dropped`) or into the stack's `d_x`. `tape` is the layer's columns of the
    /// step's tape, if any.
    fn backward<F: Float, C: Cell<F>>(
        &self,
        layer: &C,
        step: StepRecord<'_, F, C::Cache>,
        deltas: &mut StepDeltas<'_, F>,
        grads: &mut C::Params,
        dropped: Option<&Dropped<F>>,
        tape: Option<ArrayViewMut2<'_, F>>,
    ) -> Result<()> {
        let cols = self.state.clone();
        let x = match (&self.input, dropped) {
            (None, _) => step.x.reborrow(),
            (Some(_), Some(dropped)) => Input::Dense(dropped.input.view()),
            (Some(below), None) => {
                Input::Dense(step.next.slice_move(s![.., below.clone()]).reborrow())
            }
        };
        let record = StepRecord {
            x,
            prev: step.prev.slice_move(s![.., cols.clone()]).reborrow(),
            next: step.next.slice_move(s![.., cols.clone()]).reborrow(),
            cache: step.cache,
        };
        let (mut lower, mut own) = deltas.d_next.view_mut().split_at(Axis(1), cols.start);
        let mut own = own.slice_mut(s![.., ..cols.len()]);
        let mut d_prev = deltas.d_prev.slice_mut(s![.., cols]);
        let Some(below) = &self.input else {
            let d_x = deltas.d_x.as_mut().map(|d| d.view_mut());
            let layer_deltas = StepDeltas {
                d_next: own,
                d_prev,
                d_x,
                tape: tape.map(ArrayViewMut2::reborrow),
            };
            return layer.backward_stacked(record, layer_deltas, grads);
        };
        let mut d_below = lower.slice_mut(s![.., below.clone()]);
        let Some(dropped) = dropped else {
            let layer_deltas = StepDeltas {
                d_next: own,
                d_prev,
                d_x: Some(d_below),
                tape: tape.map(ArrayViewMut2::reborrow),
            };
            return layer.backward_stacked(record, layer_deltas, grads);
        };
        // The input gradient reaches the layer below only through the kept units.
        let mut scratch = dropped
            .scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if scratch.dim() != d_below.dim() {
            *scratch = Array2::zeros(d_below.dim());
        } else {
            scratch.fill(F::zero());
        }
        let layer_deltas = StepDeltas {
            d_next: own.view_mut(),
            d_prev: d_prev.view_mut(),
            d_x: Some(scratch.view_mut()),
            tape: tape.map(ArrayViewMut2::reborrow),
        };
        layer.backward_stacked(record, layer_deltas, grads)?;
        let batch = dropped.mask.nrows();
        for (mut block, from_above) in d_below
            .axis_chunks_iter_mut(Axis(0), batch)
            .zip(scratch.axis_chunks_iter(Axis(0), batch))
        {
            Zip::from(&mut block)
                .and(&from_above)
                .and(&dropped.mask)
                .for_each(|d, &g, &m| *d += g * m);
        }
        Ok(())
    }
}

impl LayerPlace {
    /// Runs `layer`'s [`Cell::backward_sequence`] on its columns of a composite's sweep:
    /// its states, its input (the output of the layer below, or the composite's input) and
    /// its `tape` columns.
    fn backward_sequence<F: Float, C: Cell<F>>(
        &self,
        layer: &C,
        sweep: SweepRecord<'_, F>,
        tape: Range<usize>,
        grads: &mut C::Params,
    ) -> Result<()> {
        if tape.is_empty() {
            return Ok(());
        }
        let x = match &self.input {
            None => sweep.x,
            Some(below) => Input::Dense(sweep.next.slice_move(s![.., below.clone()])),
        };
        let record = SweepRecord {
            x,
            prev: sweep.prev.slice_move(s![.., self.state.clone()]),
            next: sweep.next.slice_move(s![.., self.state.clone()]),
            tape: sweep.tape.slice_move(s![.., tape]),
        };
        layer.backward_sequence(record, grads)
    }
}

/// The columns of a composite's tape that belong to a layer of tape width `width`, given
/// the end of the columns not yet handed out; moves that end down.
fn take_tape_columns(end: &mut usize, width: usize) -> Range<usize> {
    *end -= width;
    *end..*end + width
}

/// A layer's part of a step's tape (none when the layer keeps no tape).
fn layer_tape<'t, F>(
    tape: &'t mut Option<ArrayViewMut2<'_, F>>,
    columns: Range<usize>,
) -> Option<ArrayViewMut2<'t, F>> {
    if columns.is_empty() {
        return None;
    }
    tape.as_mut().map(|t| t.slice_mut(s![.., columns]))
}

/// Checks that a composite's sweep record has the composite's tape width.
fn check_tape<F>(op: &'static str, sweep: &SweepRecord<'_, F>, width: usize) -> Result<()> {
    if sweep.tape.ncols() != width {
        return Err(Error::shape(
            op,
            &[sweep.tape.nrows(), width],
            sweep.tape.shape(),
        ));
    }
    Ok(())
}

/// Dropout between the layers of a [`Stack`]: each unit of a layer's output is dropped from
/// the next layer's input with probability `p`, and the kept ones are scaled by
/// `1 / (1 − p)`; the recurrent path is left alone (Zaremba et al., 2014). Only while
/// training (see [`Cell::set_training`]).
#[derive(Debug)]
struct Dropout {
    p: f64,
    seed: u64,
    /// Forward passes that drew masks so far: masks are a hash of the seed, this count and
    /// the unit, so a run draws the same masks every time.
    draws: AtomicU64,
}

impl Clone for Dropout {
    fn clone(&self) -> Self {
        Dropout {
            p: self.p,
            seed: self.seed,
            draws: AtomicU64::new(self.draws.load(Ordering::Relaxed)),
        }
    }
}

impl Dropout {
    /// Draws a mask for `below` into `dropped` and writes the dropped input.
    fn apply<F: Float>(&self, below: ArrayView2<'_, F>, dropped: &mut Dropped<F>) {
        let draw = self.draws.fetch_add(1, Ordering::Relaxed);
        if dropped.mask.dim() != below.dim() {
            dropped.mask = Array2::zeros(below.dim());
            dropped.input = Array2::zeros(below.dim());
        }
        let keep = F::from_f64_lossy(1.0 / (1.0 - self.p));
        let stream = self.seed ^ draw.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for ((index, m), (x, &h)) in dropped
            .mask
            .iter_mut()
            .enumerate()
            .zip(dropped.input.iter_mut().zip(below.iter()))
        {
            let bits = splitmix64(stream ^ (index as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9));
            let u = (bits >> 11) as f64 / (1u64 << 53) as f64;
            *m = if u < self.p { F::zero() } else { keep };
            *x = h * *m;
        }
    }
}

/// A 64-bit mixing function (splitmix64's finaliser): consecutive inputs give
/// independent-looking outputs.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One step's dropout for the input of one layer: the mask (0 or `1/(1 − p)` per unit),
/// the dropped input the layer read, and scratch for its input gradient.
#[derive(Debug)]
pub struct Dropped<F> {
    mask: Array2<F>,
    input: Array2<F>,
    scratch: Mutex<Array2<F>>,
}

impl<F: Float> Default for Dropped<F> {
    fn default() -> Self {
        Dropped {
            mask: Array2::zeros((0, 0)),
            input: Array2::zeros((0, 0)),
            scratch: Mutex::new(Array2::zeros((0, 0))),
        }
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
    dropout: Option<Dropout>,
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
        Ok(Stack {
            layers,
            places,
            dropout: None,
        })
    }

    /// Drops each unit of a layer's output from the next layer's input with probability
    /// `p` while training (never on the recurrent path, never in evaluation or
    /// generation), with masks drawn from `seed`. `p = 0` turns it off (the default).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] unless `0 ≤ p < 1`.
    pub fn with_dropout(mut self, p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config(
                "dropout",
                format!("{p} is not a probability below 1"),
            ));
        }
        self.dropout = (p > 0.0).then(|| Dropout {
            p,
            seed,
            draws: AtomicU64::new(0),
        });
        Ok(self)
    }

    /// Masks the dropout between layers has drawn so far (`None` without dropout). Masks
    /// are a hash of the seed and this count, so a checkpoint that must resume a run bit
    /// for bit stores it and gives it back with [`Stack::set_dropout_draws`].
    pub fn dropout_draws(&self) -> Option<u64> {
        self.dropout
            .as_ref()
            .map(|d| d.draws.load(Ordering::Relaxed))
    }

    /// Sets the count of masks drawn (see [`Stack::dropout_draws`]): a resumed run draws
    /// the masks the interrupted one would have drawn next.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a stack without dropout (a checkpoint that stored a
    /// count was made with dropout: the stack was rebuilt without it).
    pub fn set_dropout_draws(&mut self, draws: u64) -> Result<()> {
        match &self.dropout {
            Some(dropout) => {
                dropout.draws.store(draws, Ordering::Relaxed);
                Ok(())
            }
            None => Err(Error::config(
                "dropout",
                "this stack has no dropout, so it has no draw count to set",
            )),
        }
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

/// The per-step caches of a [`Stack`]'s layers, and its dropout state.
#[derive(Debug)]
pub struct StackCache<F, K> {
    layers: Vec<K>,
    /// Whether this step is training (dropout applies).
    training: bool,
    /// Per layer above the first: the step's dropout (empty without dropout).
    dropped: Vec<Dropped<F>>,
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
    type Cache = StackCache<F, C::Cache>;

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
        let dropped = match self.dropout {
            Some(_) => (1..self.layers.len()).map(|_| Dropped::default()).collect(),
            None => Vec::new(),
        };
        StackCache {
            layers: self.layers.iter().map(|l| l.new_cache(batch)).collect(),
            training: false,
            dropped,
        }
    }

    fn set_training(&self, cache: &mut Self::Cache, training: bool) {
        cache.training = training;
        for (layer, cache) in self.layers.iter().zip(&mut cache.layers) {
            layer.set_training(cache, training);
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
        let dropout = self.dropout.as_ref().filter(|_| cache.training);
        let mut dropped = cache.dropped.iter_mut();
        for (i, (layer, place)) in self.layers.iter().zip(&self.places).enumerate() {
            let drop = match (dropout, i) {
                (Some(d), 1..) => dropped.next().map(|slot| (d, slot)),
                _ => None,
            };
            place.forward(layer, x, prev, &mut next, &mut cache.layers[i], drop)?;
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
        let dropout = self.dropout.is_some() && step.cache.training;
        let mut tape = deltas.tape.take().filter(|_| self.tape_width() > 0);
        let mut tape_end = self.tape_width();
        let layers = self.layers.iter().zip(&self.places).zip(&step.cache.layers);
        for (i, (((layer, place), cache), grads)) in layers.zip(&mut grads.layers).enumerate().rev()
        {
            let dropped = match (dropout, i) {
                (true, 1..) => step.cache.dropped.get(i - 1),
                _ => None,
            };
            let columns = take_tape_columns(&mut tape_end, layer.tape_width());
            let tape = layer_tape(&mut tape, columns);
            place.backward(
                layer,
                with_cache(step, cache),
                &mut deltas,
                grads,
                dropped,
                tape,
            )?;
        }
        Ok(())
    }

    /// The layers' tapes side by side, bottom first; none with dropout, whose layers above
    /// the first read a dropped input that the sweep's record does not hold.
    fn tape_width(&self) -> usize {
        match self.dropout {
            Some(_) => 0,
            None => self.layers.iter().map(Cell::tape_width).sum(),
        }
    }

    fn backward_sequence(&self, sweep: SweepRecord<'_, F>, grads: &mut Self::Params) -> Result<()> {
        let width = self.tape_width();
        check_tape("Stack::backward_sequence tape", &sweep, width)?;
        let mut tape_end = width;
        let layers = self.layers.iter().zip(&self.places).zip(&mut grads.layers);
        for ((layer, place), grads) in layers.rev() {
            let columns = take_tape_columns(&mut tape_end, layer.tape_width());
            place.backward_sequence(layer, sweep, columns, grads)?;
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

    fn set_training(&self, cache: &mut Self::Cache, training: bool) {
        self.lower.set_training(&mut cache.0, training);
        self.upper.set_training(&mut cache.1, training);
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
        lower.forward(&self.lower, x, prev, &mut next, &mut cache.0, None)?;
        upper.forward(&self.upper, x, prev, &mut next, &mut cache.1, None)
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
        let mut tape = deltas.tape.take();
        let split = self.lower.tape_width();
        let (upper_step, lower_step) = (
            with_cache(step, &step.cache.1),
            with_cache(step, &step.cache.0),
        );
        let upper_tape = layer_tape(&mut tape, split..self.tape_width());
        let (upper_grads, lower_grads) = (&mut grads.upper, &mut grads.lower);
        upper.backward(
            &self.upper,
            upper_step,
            &mut deltas,
            upper_grads,
            None,
            upper_tape,
        )?;
        let lower_tape = layer_tape(&mut tape, 0..split);
        lower.backward(
            &self.lower,
            lower_step,
            &mut deltas,
            lower_grads,
            None,
            lower_tape,
        )
    }

    /// The lower layer's tape, then the upper one's.
    fn tape_width(&self) -> usize {
        self.lower.tape_width() + self.upper.tape_width()
    }

    fn backward_sequence(&self, sweep: SweepRecord<'_, F>, grads: &mut Self::Params) -> Result<()> {
        let width = self.tape_width();
        check_tape("Pair::backward_sequence tape", &sweep, width)?;
        let [lower, upper] = &self.places;
        let lower_columns = 0..self.lower.tape_width();
        lower.backward_sequence(&self.lower, sweep, lower_columns.clone(), &mut grads.lower)?;
        let upper_columns = lower_columns.end..width;
        upper.backward_sequence(&self.upper, sweep, upper_columns, &mut grads.upper)
    }
}
