//! Golden values from PyTorch: `nn.RNN` (tanh and relu), `nn.LSTM` and `nn.GRU`, one and two
//! layers, batch 3, length 7, input 2, hidden 3, with biases, in f64 and in f32, against
//! recur's `Elman<F, Tanh>`, `Elman<F, Relu>`, `Lstm<F>` and `Gru<F>` (two layers: a `Stack`
//! of two cells).
//!
//! Both sides build every tensor from a closed formula, `0.5·sin(1.3·k + seed)` over the flat
//! index `k` in PyTorch's layout, so no file is exchanged; recur's weights are PyTorch's
//! transposed. Tensor `j` of layer `l` (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`) has
//! seed `23 + 13·l + j`, chosen so that the relu units are alive (one output in 63 is 0).
//! recur's Elman cell has one bias: it gets `bias_ih + bias_hh`, and its gradient must equal
//! both of PyTorch's bias gradients. The loss is `Σ out ⊙ P + Σ h_n ⊙ Q (+ Σ c_n ⊙ R for the
//! LSTM)`; outputs, final states of every layer and every parameter gradient must agree to
//! 1e-10 in f64 and to 1e-4 in f32 (against PyTorch's own float32 run).
//!
//! `values.rs` is the output of this script (torch 2.15.0, CPU), `python3 script.py >
//! tests/library/pytorch_golden/values.rs`:
//!
//! ```python
//! import math, torch
//! T, B, I, H = 7, 3, 2, 3
//! def det(shape, seed, dtype):
//!     n = math.prod(shape)
//!     v = [0.5 * math.sin(1.3 * k + seed) for k in range(n)]
//!     return torch.tensor(v, dtype=torch.float64).to(dtype).reshape(shape)
//! def show(t, dtype):
//!     if dtype == torch.float64:
//!         return ", ".join(repr(float(v)) for v in t.flatten())
//!     return ", ".join(str(v) for v in t.flatten().numpy())  # shortest f32 digits
//! print("//! PyTorch's values, printed by the script in `mod.rs`'s documentation.")
//! print()
//! print("/// `(\"dtype kind layers tensor\", values in PyTorch's element order)`.")
//! print("pub const GOLDENS: &[(&str, &[f64])] = &[")
//! KINDS = (("RNN_TANH", torch.nn.RNN, 1, {"nonlinearity": "tanh"}),
//!          ("RNN_RELU", torch.nn.RNN, 1, {"nonlinearity": "relu"}),
//!          ("LSTM", torch.nn.LSTM, 4, {}),
//!          ("GRU", torch.nn.GRU, 3, {}))
//! for dtype, dname in ((torch.float64, "f64"), (torch.float32, "f32")):
//!     for kind, net, gates, extra in KINDS:
//!         for L in (1, 2):
//!             m = net(I, H, num_layers=L, **extra).to(dtype)
//!             with torch.no_grad():
//!                 for l in range(L):
//!                     shapes = ((gates * H, I if l == 0 else H), (gates * H, H), (gates * H,), (gates * H,))
//!                     for j, (p, shape) in enumerate(zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), shapes)):
//!                         getattr(m, f"{p}_l{l}").copy_(det(shape, 23 + 13 * l + j, dtype))
//!             out, state = m(det((T, B, I), 5.0, dtype))
//!             h_n = state[0] if kind == "LSTM" else state
//!             loss = (out * det((T, B, H), 6.0, dtype)).sum() + (h_n * det((L, B, H), 7.0, dtype)).sum()
//!             tensors = {"output": out, "h_n": h_n}
//!             if kind == "LSTM":
//!                 loss = loss + (state[1] * det((L, B, H), 8.0, dtype)).sum()
//!                 tensors["c_n"] = state[1]
//!             loss.backward()
//!             tensors.update((f"{name}.grad", p.grad) for name, p in m.named_parameters())
//!             for name, t in tensors.items():
//!                 print(f'    ("{dname} {kind} {L} {name}", &[{show(t.detach(), dtype)}]),')
//! print("];")
//! ```

// One line per tensor: formatted, the file would be thousands of lines of numbers.
#[rustfmt::skip]
mod values;

use ndarray::{s, Array1, Array2, Array3, ArrayView2, Axis};
use recur::cell::ElmanParams;
use recur::core::params::path;
use recur::prelude::*;
use recur::GatedParams;

const T: usize = 7;
const B: usize = 3;
const I: usize = 2;
const H: usize = 3;
const F64_TOLERANCE: f64 = 1e-10;
const F32_TOLERANCE: f64 = 1e-4;
/// PyTorch's parameter tensors of one layer, in the order of their seeds.
const TORCH_PARAMS: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

/// A recur cell that computes one layer of a PyTorch network.
trait TorchLayer<F: Float>: Cell<F> + Sized {
    /// The network's name in the golden keys (`"LSTM"`).
    const KIND: &'static str;
    /// Gate blocks: PyTorch's weights have `GATES·H` rows.
    const GATES: usize;
    /// The final-state tensors, one per block of `H` columns of a layer's state, in order.
    const STATES: &'static [&'static str];
    /// The cell from PyTorch's four tensors, transposed into recur's layout.
    fn from_torch(w_ih: Array2<F>, w_hh: Array2<F>, b_ih: Array1<F>, b_hh: Array1<F>) -> Self;
    /// The PyTorch tensors whose gradient recur's slot `slot` holds.
    fn torch_names(slot: &str) -> &'static [&'static str];
}

fn elman<F: Float, A: Activation<F>>(
    activation: A,
    w_ih: Array2<F>,
    w_hh: Array2<F>,
    b: Array1<F>,
) -> Elman<F, A> {
    let params = ElmanParams::new(w_ih, w_hh, Some(b)).unwrap();
    Elman::from_params(params, activation).unwrap()
}

fn elman_names(slot: &str) -> &'static [&'static str] {
    match slot {
        "w_xh" => &["weight_ih"],
        "w_hh" => &["weight_hh"],
        "b_h" => &["bias_ih", "bias_hh"],
        _ => &[],
    }
}

fn gated_names(slot: &str) -> &'static [&'static str] {
    match slot {
        "w_ih" => &["weight_ih"],
        "w_hh" => &["weight_hh"],
        "b_ih" => &["bias_ih"],
        "b_hh" => &["bias_hh"],
        _ => &[],
    }
}

fn gated<F: Float>(
    gates: usize,
    w_ih: Array2<F>,
    w_hh: Array2<F>,
    b_ih: Array1<F>,
    b_hh: Array1<F>,
) -> GatedParams<F> {
    GatedParams::new(gates, w_ih, w_hh, Some(b_ih), Some(b_hh)).unwrap()
}

impl<F: Float> TorchLayer<F> for Elman<F, Tanh> {
    const KIND: &'static str = "RNN_TANH";
    const GATES: usize = 1;
    const STATES: &'static [&'static str] = &["h_n"];
    fn from_torch(w_ih: Array2<F>, w_hh: Array2<F>, b_ih: Array1<F>, b_hh: Array1<F>) -> Self {
        elman(Tanh, w_ih, w_hh, b_ih + b_hh)
    }
    fn torch_names(slot: &str) -> &'static [&'static str] {
        elman_names(slot)
    }
}

impl<F: Float> TorchLayer<F> for Elman<F, Relu> {
    const KIND: &'static str = "RNN_RELU";
    const GATES: usize = 1;
    const STATES: &'static [&'static str] = &["h_n"];
    fn from_torch(w_ih: Array2<F>, w_hh: Array2<F>, b_ih: Array1<F>, b_hh: Array1<F>) -> Self {
        elman(Relu, w_ih, w_hh, b_ih + b_hh)
    }
    fn torch_names(slot: &str) -> &'static [&'static str] {
        elman_names(slot)
    }
}

impl<F: Float> TorchLayer<F> for Lstm<F> {
    const KIND: &'static str = "LSTM";
    const GATES: usize = 4;
    const STATES: &'static [&'static str] = &["h_n", "c_n"];
    fn from_torch(w_ih: Array2<F>, w_hh: Array2<F>, b_ih: Array1<F>, b_hh: Array1<F>) -> Self {
        Lstm::from_params(gated(4, w_ih, w_hh, b_ih, b_hh), Sigmoid, Tanh).unwrap()
    }
    fn torch_names(slot: &str) -> &'static [&'static str] {
        gated_names(slot)
    }
}

impl<F: Float> TorchLayer<F> for Gru<F> {
    const KIND: &'static str = "GRU";
    const GATES: usize = 3;
    const STATES: &'static [&'static str] = &["h_n"];
    fn from_torch(w_ih: Array2<F>, w_hh: Array2<F>, b_ih: Array1<F>, b_hh: Array1<F>) -> Self {
        let params = gated(3, w_ih, w_hh, b_ih, b_hh);
        Gru::from_params(params, GruVariant::ResetAfter, Sigmoid, Tanh).unwrap()
    }
    fn torch_names(slot: &str) -> &'static [&'static str] {
        gated_names(slot)
    }
}

/// `0.5·sin(1.3·k + seed)` for `k` in `0..n`, rounded to `F`: the script's `det`.
fn det<F: Float>(n: usize, seed: f64) -> Vec<F> {
    (0..n)
        .map(|k| F::from_f64_lossy(0.5 * (1.3 * k as f64 + seed).sin()))
        .collect()
}

fn det2<F: Float>(rows: usize, cols: usize, seed: f64) -> Array2<F> {
    Array2::from_shape_vec((rows, cols), det(rows * cols, seed)).unwrap()
}

fn det3<F: Float>(shape: (usize, usize, usize), seed: f64) -> Array3<F> {
    Array3::from_shape_vec(shape, det(shape.0 * shape.1 * shape.2, seed)).unwrap()
}

/// Layer `layer` of the script's network.
fn layer<F: Float, C: TorchLayer<F>>(layer: usize) -> C {
    let seed = |j: usize| (23 + 13 * layer + j) as f64;
    let rows = C::GATES * H;
    let input = if layer == 0 { I } else { H };
    C::from_torch(
        det2(rows, input, seed(0)).reversed_axes(),
        det2(rows, H, seed(1)).reversed_axes(),
        Array1::from(det(rows, seed(2))),
        Array1::from(det(rows, seed(3))),
    )
}

/// The golden values of one network: keys `"{dtype} {kind} {layers} {tensor}"`.
struct Golden {
    prefix: String,
    tolerance: f64,
}

impl Golden {
    fn new<F: Float, C: TorchLayer<F>>(layers: usize) -> Self {
        let dtype = std::any::type_name::<F>();
        Golden {
            prefix: format!("{dtype} {} {layers}", C::KIND),
            tolerance: if dtype == "f32" {
                F32_TOLERANCE
            } else {
                F64_TOLERANCE
            },
        }
    }

    fn values(&self, tensor: &str) -> &'static [f64] {
        let key = format!("{} {tensor}", self.prefix);
        values::GOLDENS
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no golden values for {key}"))
            .1
    }

    /// Asserts that `ours`, in PyTorch's element order, is within the tolerance of
    /// `values[range]` of `tensor`.
    fn assert_close<'a, F: Float>(
        &self,
        tensor: &str,
        range: std::ops::Range<usize>,
        ours: impl IntoIterator<Item = &'a F>,
    ) {
        let golden = &self.values(tensor)[range];
        let ours: Vec<f64> = ours.into_iter().map(|v| v.to_f64_lossless()).collect();
        let what = format!("{} {tensor}", self.prefix);
        assert_eq!(ours.len(), golden.len(), "{what}: length");
        let worst = ours
            .iter()
            .zip(golden)
            .map(|(a, b)| (a - b).abs())
            .fold(
                0.0,
                |w: f64, d| if d.is_nan() { f64::NAN } else { w.max(d) },
            );
        eprintln!("{what}: worst difference {worst:.1e}");
        assert!(worst < self.tolerance, "{what}: worst difference {worst:e}");
    }
}

/// Runs `model` over the script's input and pulls the script's loss back through every step,
/// `d_last` being `∂L/∂state_T`: the outputs `[T, B, H]`, the final state and the parameter
/// gradients.
fn run<F: Float, M: Cell<F>>(model: &M, d_last: Array2<F>) -> (Array3<F>, Array2<F>, M::Params) {
    let x: Array3<F> = det3((T, B, I), 5.0);
    let p: Array3<F> = det3((T, B, H), 6.0);
    let top = model.hidden_offset()..model.hidden_offset() + H;
    let mut states = vec![model.zero_state(B)];
    let mut caches = Vec::new();
    for t in 0..T {
        let mut next = model.zero_state(B);
        let mut cache = model.new_cache(B);
        let x_t = Input::Dense(x.index_axis(Axis(0), t));
        model
            .forward(x_t, states[t].view(), next.view_mut(), &mut cache)
            .unwrap();
        states.push(next);
        caches.push(cache);
    }
    let out = Array3::from_shape_fn((T, B, H), |(t, b, j)| states[t + 1][[b, top.start + j]]);
    let mut d = d_last;
    let mut grads = model.zero_grads();
    for t in (0..T).rev() {
        let mut h = d.slice_mut(s![.., top.clone()]);
        h += &p.index_axis(Axis(0), t);
        let mut d_prev = model.zero_state(B);
        let step = StepRecord {
            x: Input::Dense(x.index_axis(Axis(0), t)),
            prev: states[t].view(),
            next: states[t + 1].view(),
            cache: &caches[t],
        };
        let deltas = StepDeltas {
            d_next: d.view_mut(),
            d_prev: d_prev.view_mut(),
            d_x: None,
            tape: None,
        };
        model.backward(step, deltas, &mut grads).unwrap();
        d = d_prev;
    }
    (out, states.pop().unwrap(), grads)
}

/// The columns of block `k` (`h_n`, `c_n`, …) of layer `l`'s state in a stack's state.
fn block_columns(layer_state: usize, l: usize, k: usize) -> std::ops::Range<usize> {
    let start = l * layer_state + k * H;
    start..start + H
}

/// `∂L/∂state_T`: Q on every layer's `h_n`, R on every LSTM layer's `c_n`.
fn final_state_gradient<F: Float, C: TorchLayer<F>>(layers: usize) -> Array2<F> {
    let layer_state = C::STATES.len() * H;
    let mut d = Array2::zeros((B, layers * layer_state));
    for (k, seed) in [7.0, 8.0].into_iter().enumerate().take(C::STATES.len()) {
        let q: Array3<F> = det3((layers, B, H), seed);
        for l in 0..layers {
            let cols = block_columns(layer_state, l, k);
            d.slice_mut(s![.., cols]).assign(&q.index_axis(Axis(0), l));
        }
    }
    d
}

/// Compares `model`, one or a stack of `layers` cells `C`, with PyTorch's run.
fn compare<F: Float, C: TorchLayer<F>, M: Cell<F>>(model: &M, layers: usize) {
    let golden = Golden::new::<F, C>(layers);
    let (out, last, grads) = run(model, final_state_gradient::<F, C>(layers));
    golden.assert_close("output", 0..T * B * H, &out);
    let layer_state = C::STATES.len() * H;
    for (k, tensor) in C::STATES.iter().enumerate() {
        for l in 0..layers {
            let ours: ArrayView2<'_, F> = last.slice(s![.., block_columns(layer_state, l, k)]);
            golden.assert_close(tensor, l * B * H..(l + 1) * B * H, ours);
        }
    }
    let mut checked = 0;
    for i in 0..grads.slot_count() {
        // `w_ih` for a bare cell, `layers.1.w_ih` in a stack.
        let full = path(&grads, i);
        let (l, slot) = match full.strip_prefix("layers.") {
            Some(rest) => rest.split_once('.').unwrap(),
            None => ("0", full.as_str()),
        };
        for name in C::torch_names(slot) {
            let tensor = format!("{name}_l{l}.grad");
            // The whole tensor: a length mismatch fails in `assert_close`.
            let whole = 0..golden.values(&tensor).len();
            golden.assert_close(&tensor, whole, grads.slot(i).value.t());
            checked += 1;
        }
    }
    assert_eq!(checked, TORCH_PARAMS.len() * layers, "{}", golden.prefix);
}

/// Checks one and two layers of `C` against PyTorch.
fn check<F: Float, C: TorchLayer<F>>() {
    compare::<F, C, C>(&layer(0), 1);
    let stack = Stack::new(vec![layer::<F, C>(0), layer(1)]).unwrap();
    compare::<F, C, _>(&stack, 2);
}

#[test]
fn elman_tanh_equals_nn_rnn_tanh_f64() {
    check::<f64, Elman<f64, Tanh>>();
}

#[test]
fn elman_tanh_equals_nn_rnn_tanh_f32() {
    check::<f32, Elman<f32, Tanh>>();
}

#[test]
fn elman_relu_equals_nn_rnn_relu_f64() {
    check::<f64, Elman<f64, Relu>>();
}

#[test]
fn elman_relu_equals_nn_rnn_relu_f32() {
    check::<f32, Elman<f32, Relu>>();
}

#[test]
fn lstm_equals_nn_lstm_f64() {
    check::<f64, Lstm<f64>>();
}

#[test]
fn lstm_equals_nn_lstm_f32() {
    check::<f32, Lstm<f32>>();
}

#[test]
fn gru_equals_nn_gru_f64() {
    check::<f64, Gru<f64>>();
}

#[test]
fn gru_equals_nn_gru_f32() {
    check::<f32, Gru<f32>>();
}

#[test]
fn gru_reset_before_is_not_nn_gru() {
    // The original variant is a different function: it must not match nn.GRU.
    let after: Gru<f64> = layer(0);
    let cho = Gru::from_params(
        after.weights().clone(),
        GruVariant::ResetBefore,
        Sigmoid,
        Tanh,
    )
    .unwrap();
    let (out, _, _) = run(&cho, final_state_gradient::<f64, Gru<f64>>(1));
    let golden = Golden::new::<f64, Gru<f64>>(1).values("output");
    let worst = out
        .iter()
        .zip(golden)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst > 1e-3,
        "reset-before variant equals nn.GRU: {worst:e}"
    );
}
