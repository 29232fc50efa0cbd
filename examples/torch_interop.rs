//! Weights both ways between recur and PyTorch, checked on logits.
//!
//! For each case (a one-layer tanh RNN with two biases, a two-layer relu RNN with one bias,
//! two-layer LSTM and GRU, each under a `Linear` readout) and each of f32 and f64, this
//! program
//! - **recur → PyTorch**: draws a model, writes it with `export_torch` as the `state_dict`
//!   of a PyTorch module holding `rnn` and `decoder` (`<case>-<dtype>.recur.safetensors`),
//!   the bare cell alone (`.bare.safetensors`, for `nn.LSTM` etc. directly), and its inputs,
//!   logits and top-layer hidden states (`.recur-io.safetensors`);
//! - **PyTorch → recur**: when `scripts/torch_interop.py` has left a trained `state_dict`
//!   (`.torch.safetensors`) and its inputs and logits (`.torch-io.safetensors`), loads it
//!   with `import_torch` into a fresh model, reproduces the logits and prints the largest
//!   absolute difference. It fails when that exceeds 1e-6 (f32) or 1e-14 (f64) times the
//!   largest logit (at least 1): a few roundings apart.
//!
//! The whole round trip, one command per side (the first run of each finds nothing of the
//! other yet):
//!
//! ```text
//! cargo run --release --example torch_interop -- target/torch_interop
//! python3 scripts/torch_interop.py target/torch_interop
//! cargo run --release --example torch_interop -- target/torch_interop
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayD, Axis, IxDyn};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::io::{export_torch, import_torch, TorchPrefixes, TorchRecurrent};
use recur::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// Steps, sequences, input features, hidden units, outputs: as in the Python script.
const T: usize = 6;
const B: usize = 2;
const INPUT: usize = 3;
const HIDDEN: usize = 5;
const OUTPUT: usize = 4;

/// The names of a PyTorch module with `self.rnn` and `self.decoder`.
const MODULE: TorchPrefixes<'static> = TorchPrefixes {
    cell: "rnn.",
    readout: "decoder.",
};

type Failure = Box<dyn std::error::Error>;

/// Every entry of `set` uniform in ±0.5, so biases are not left at zero.
fn randomise<F: Float>(set: &mut dyn ParamSet<F>, rng: &mut StdRng) {
    for i in 0..set.slot_count() {
        for v in set.slot_mut(i).value.iter_mut() {
            *v = F::from_f64_lossy(rng.random_range(-0.5..0.5));
        }
    }
}

/// Runs `model` over `x` `[T, B, INPUT]`: logits `[T, B, OUTPUT]` and top-layer hidden
/// states `[T, B, HIDDEN]`.
fn run<F: Float, C: Cell<F>>(
    model: &Model<F, C>,
    x: &Array3<F>,
) -> recur::Result<(Array3<F>, Array3<F>)> {
    let mut predictor = Predictor::new(model, B);
    let (mut logits, mut hidden) = (Array3::zeros((T, B, OUTPUT)), Array3::zeros((T, B, HIDDEN)));
    for t in 0..T {
        let step = predictor.step(model, Input::Dense(x.index_axis(Axis(0), t)))?;
        logits.index_axis_mut(Axis(0), t).assign(&step);
        let h = model.cell().hidden(predictor.state());
        hidden.index_axis_mut(Axis(0), t).assign(&h);
    }
    Ok((logits, hidden))
}

/// Writes float tensors as one safetensors file in `F`'s dtype.
fn write_tensors<F: Float>(path: &Path, tensors: &[(&str, &Array3<F>)]) -> Result<(), Failure> {
    let dtype = if F::NAME == "f32" {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let bytes: Vec<(&str, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, a)| {
            let data = a
                .iter()
                .flat_map(|v| match dtype {
                    Dtype::F32 => (v.to_f64_lossless() as f32).to_le_bytes().to_vec(),
                    _ => v.to_f64_lossless().to_le_bytes().to_vec(),
                })
                .collect();
            (*name, a.shape().to_vec(), data)
        })
        .collect();
    let mut views = HashMap::new();
    for (name, shape, data) in &bytes {
        views.insert(*name, TensorView::new(dtype, shape.clone(), data)?);
    }
    safetensors::serialize_to_file(views, &None, path)?;
    Ok(())
}

/// Reads tensor `name` of a safetensors file as `F` (f32 or f64 in the file).
fn read_tensor<F: Float>(file: &SafeTensors<'_>, name: &str) -> Result<ArrayD<F>, Failure> {
    let view = file.tensor(name)?;
    let values: Vec<F> = match view.dtype() {
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|c| F::from_f64_lossy(f32::from_le_bytes(c.try_into().unwrap_or_default()).into()))
            .collect(),
        _ => view
            .data()
            .chunks_exact(8)
            .map(|c| F::from_f64_lossy(f64::from_le_bytes(c.try_into().unwrap_or_default())))
            .collect(),
    };
    Ok(ArrayD::from_shape_vec(IxDyn(view.shape()), values)?)
}

fn max_abs_diff<F: Float>(a: &ArrayD<F>, b: &ArrayD<F>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.to_f64_lossless() - y.to_f64_lossless()).abs())
        .fold(0.0, f64::max)
}

/// One case in one dtype: `make(seed)` builds the cell.
struct Case<'a> {
    name: &'a str,
    dir: &'a Path,
}

impl Case<'_> {
    fn file<F: Float>(&self, kind: &str) -> PathBuf {
        self.dir
            .join(format!("{}-{}.{kind}.safetensors", self.name, F::NAME))
    }

    /// recur → PyTorch: the model, the bare cell, and what the model computes.
    fn export<F: Float, C: Cell<F> + TorchRecurrent<F>>(
        &self,
        make: &impl Fn(u64) -> C,
    ) -> Result<(), Failure> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut cell = make(1);
        randomise(cell.params_mut(), &mut rng);
        let mut readout = LinearConfig::new(HIDDEN, OUTPUT)
            .with_bias(true)
            .init::<F>(&mut rng)?;
        randomise(readout.params_mut(), &mut rng);
        let model = Model::new(cell, readout)?;
        let x = Array3::from_shape_fn((T, B, INPUT), |_| {
            F::from_f64_lossy(rng.random_range(-1.0..1.0))
        });
        let (logits, hidden) = run(&model, &x)?;
        export_torch(
            model.cell(),
            Some(model.readout()),
            MODULE,
            self.file::<F>("recur"),
        )?;
        export_torch(
            model.cell(),
            None,
            TorchPrefixes::default(),
            self.file::<F>("bare"),
        )?;
        let io = [("x", &x), ("logits", &logits), ("hidden", &hidden)];
        write_tensors(&self.file::<F>("recur-io"), &io)
    }

    /// PyTorch → recur: the largest logit difference and the largest logit, if the Python
    /// side has run.
    fn import<F: Float, C: Cell<F> + TorchRecurrent<F>>(
        &self,
        make: &impl Fn(u64) -> C,
    ) -> Result<Option<(f64, f64)>, Failure> {
        let (weights, io) = (self.file::<F>("torch"), self.file::<F>("torch-io"));
        if !weights.exists() || !io.exists() {
            return Ok(None);
        }
        let mut cell = make(2);
        let mut readout = LinearConfig::new(HIDDEN, OUTPUT)
            .with_bias(true)
            .init::<F>(&mut StdRng::seed_from_u64(3))?;
        import_torch(&mut cell, Some(&mut readout), MODULE, &weights)?;
        let model = Model::new(cell, readout)?;
        let bytes = std::fs::read(&io)?;
        let file = SafeTensors::deserialize(&bytes)?;
        let x = read_tensor::<F>(&file, "x")?.into_dimensionality()?;
        let expected = read_tensor::<F>(&file, "logits")?;
        let (logits, _) = run(&model, &x)?;
        let scale = expected
            .iter()
            .map(|v| v.to_f64_lossless().abs())
            .fold(1.0, f64::max);
        Ok(Some((max_abs_diff(&logits.into_dyn(), &expected), scale)))
    }

    fn both<F: Float, C: Cell<F> + TorchRecurrent<F>>(
        &self,
        make: impl Fn(u64) -> C,
    ) -> Result<(), Failure> {
        self.export::<F, C>(&make)?;
        let tolerance = if F::NAME == "f32" { 1e-6 } else { 1e-14 };
        match self.import::<F, C>(&make)? {
            None => println!("{:>9} {}: written; no PyTorch file yet", self.name, F::NAME),
            Some((diff, scale)) => {
                println!(
                    "{:>9} {}: PyTorch → recur, max |Δ logits| = {diff:.3e} (max |logit| {scale:.1})",
                    self.name,
                    F::NAME
                );
                if diff.is_nan() || diff > tolerance * scale {
                    let message = format!(
                        "{} {}: {diff:e} > {tolerance:e} · {scale}",
                        self.name,
                        F::NAME
                    );
                    return Err(message.into());
                }
            }
        }
        Ok(())
    }
}

fn elman<F: Float, A: Activation<F>>(
    act: A,
    input: usize,
    biases: usize,
    seed: u64,
) -> Elman<F, A> {
    let config = ElmanConfig::new(input, HIDDEN)
        .with_bias(biases > 0)
        .with_recurrent_bias(biases > 1);
    config
        .init(act, &mut StdRng::seed_from_u64(seed))
        .expect("valid sizes")
}

fn stack<C: Cell<F>, F: Float>(layers: Vec<C>) -> Stack<C> {
    Stack::new(layers).expect("layers that feed each other")
}

fn all_cases<F: Float>(dir: &Path) -> Result<(), Failure> {
    let case = |name| Case { name, dir };
    case("rnn_tanh").both(|s| elman::<F, _>(Tanh, INPUT, 2, s))?;
    case("rnn_relu").both(|s| {
        stack(vec![
            elman::<F, _>(Relu, INPUT, 1, s),
            elman(Relu, HIDDEN, 1, s + 1),
        ])
    })?;
    let lstm = |input, s| {
        LstmConfig::new(input, HIDDEN)
            .init::<F, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(s))
            .expect("valid sizes")
    };
    case("lstm").both(|s| stack(vec![lstm(INPUT, s), lstm(HIDDEN, s + 1)]))?;
    let gru = |input, s| {
        GruConfig::new(input, HIDDEN)
            .init::<F, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(s))
            .expect("valid sizes")
    };
    case("gru").both(|s| stack(vec![gru(INPUT, s), gru(HIDDEN, s + 1)]))
}

fn main() -> Result<(), Failure> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/torch_interop"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    all_cases::<f32>(&dir)?;
    all_cases::<f64>(&dir)?;
    println!("files in {}", dir.display());
    Ok(())
}
