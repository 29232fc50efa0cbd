//! Golden values from PyTorch: `nn.LSTM` and `nn.GRU`, single layer, batch 3, length 7, input
//! 2, hidden 3, with biases, in f64. The weights, inputs and loss weights are a closed formula
//! (`0.5·sin(1.3·k + seed)` over the flat index `k` in PyTorch's layout), so both sides build
//! them without exchanging files; recur's weights are PyTorch's transposed. The loss is
//! `Σ out ⊙ P + Σ h_n ⊙ Q (+ Σ c_n ⊙ R for the LSTM)`; outputs, final states and every
//! parameter gradient must agree to 1e-10.
//!
//! The values below were printed by this script (torch 2.15.0, CPU):
//!
//! ```python
//! import math, torch
//! torch.set_default_dtype(torch.float64)
//! T, B, I, H = 7, 3, 2, 3
//! def det(shape, seed):
//!     n = math.prod(shape)
//!     return torch.tensor([0.5 * math.sin(1.3 * k + seed) for k in range(n)]).reshape(shape)
//! def rust(name, t):
//!     vals = ", ".join(repr(float(v)) for v in t.flatten())
//!     print(f"const {name}: [f64; {t.numel()}] = [{vals}];")
//! for kind, gates in (("LSTM", 4), ("GRU", 3)):
//!     m = getattr(torch.nn, kind)(I, H, batch_first=False)
//!     with torch.no_grad():
//!         m.weight_ih_l0.copy_(det((gates * H, I), 1.0))
//!         m.weight_hh_l0.copy_(det((gates * H, H), 2.0))
//!         m.bias_ih_l0.copy_(det((gates * H,), 3.0))
//!         m.bias_hh_l0.copy_(det((gates * H,), 4.0))
//!     x = det((T, B, I), 5.0)
//!     out, state = m(x)
//!     h_n = state[0] if kind == "LSTM" else state
//!     loss = (out * det((T, B, H), 6.0)).sum() + (h_n[0] * det((B, H), 7.0)).sum()
//!     if kind == "LSTM":
//!         loss = loss + (state[1][0] * det((B, H), 8.0)).sum()
//!     loss.backward()
//!     rust(f"{kind}_OUT", out)
//!     rust(f"{kind}_H_N", h_n[0])
//!     if kind == "LSTM":
//!         rust("LSTM_C_N", state[1][0])
//!     for p in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
//!         rust(f"{kind}_GRAD_{p.upper()}", getattr(m, p).grad)
//! ```

use ndarray::{Array1, Array2, Array3, Axis};
use recur::prelude::*;
use recur::GatedParams;

const T: usize = 7;
const B: usize = 3;
const I: usize = 2;
const H: usize = 3;
const TOLERANCE: f64 = 1e-10;

/// `0.5·sin(1.3·k + seed)` for `k` in `0..n`: the script's `det`.
fn det(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|k| 0.5 * (1.3 * k as f64 + seed).sin())
        .collect()
}

fn det2(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
    Array2::from_shape_vec((rows, cols), det(rows * cols, seed)).unwrap()
}

/// PyTorch's `[gates·H, in]` weights, biases `bias_ih_l0`, `bias_hh_l0`, in recur's layout.
fn params(gates: usize) -> GatedParams<f64> {
    GatedParams::new(
        gates,
        det2(gates * H, I, 1.0).reversed_axes(),
        det2(gates * H, H, 2.0).reversed_axes(),
        Some(Array1::from(det(gates * H, 3.0))),
        Some(Array1::from(det(gates * H, 4.0))),
    )
    .unwrap()
}

/// Runs `cell` over the script's input and pulls the script's loss back through every step:
/// the outputs `[T, B, H]`, the final state, and the parameter gradients.
fn run<C: Cell<f64>>(cell: &C) -> (Array3<f64>, Array2<f64>, C::Params) {
    let x = Array3::from_shape_vec((T, B, I), det(T * B * I, 5.0)).unwrap();
    let p = Array3::from_shape_vec((T, B, H), det(T * B * H, 6.0)).unwrap();
    let mut states = vec![cell.zero_state(B)];
    let mut caches = Vec::new();
    for t in 0..T {
        let mut next = cell.zero_state(B);
        let mut cache = cell.new_cache(B);
        cell.forward(
            Input::Dense(x.index_axis(Axis(0), t)),
            states[t].view(),
            next.view_mut(),
            &mut cache,
        )
        .unwrap();
        states.push(next);
        caches.push(cache);
    }
    let out = Array3::from_shape_fn((T, B, H), |(t, b, j)| states[t + 1][[b, j]]);
    // ∂L/∂state_T: Q on h_n, R on c_n (an LSTM's second half).
    let mut d = cell.zero_state(B);
    d.slice_mut(ndarray::s![.., ..H]).assign(&det2(B, H, 7.0));
    if cell.state_size() == 2 * H {
        d.slice_mut(ndarray::s![.., H..]).assign(&det2(B, H, 8.0));
    }
    let mut grads = cell.zero_grads();
    for t in (0..T).rev() {
        let mut h = d.slice_mut(ndarray::s![.., ..H]);
        h += &p.index_axis(Axis(0), t);
        let mut d_prev = cell.zero_state(B);
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
        };
        cell.backward(step, deltas, &mut grads).unwrap();
        d = d_prev;
    }
    (out, states.pop().unwrap(), grads)
}

/// Worst absolute difference between `ours` (in PyTorch's element order) and `golden`.
fn assert_close<'a>(what: &str, ours: impl IntoIterator<Item = &'a f64>, golden: &[f64]) {
    let ours: Vec<f64> = ours.into_iter().copied().collect();
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
    assert!(worst < TOLERANCE, "{what}: worst difference {worst:e}");
}

fn assert_grads(kind: &str, g: &GatedParams<f64>, golden: [&[f64]; 4]) {
    assert_close(&format!("{kind} weight_ih_l0.grad"), g.w_ih.t(), golden[0]);
    assert_close(&format!("{kind} weight_hh_l0.grad"), g.w_hh.t(), golden[1]);
    assert_close(
        &format!("{kind} bias_ih_l0.grad"),
        g.b_ih.as_ref().unwrap(),
        golden[2],
    );
    assert_close(
        &format!("{kind} bias_hh_l0.grad"),
        g.b_hh.as_ref().unwrap(),
        golden[3],
    );
}

#[test]
fn lstm_equals_pytorch_nn_lstm() {
    let cell: Lstm<f64> = Lstm::from_params(params(4), Sigmoid, Tanh).unwrap();
    let (out, last, grads) = run(&cell);
    assert_close("LSTM output", &out, &LSTM_OUT);
    assert_close("LSTM h_n", last.slice(ndarray::s![.., ..H]), &LSTM_H_N);
    assert_close("LSTM c_n", last.slice(ndarray::s![.., H..]), &LSTM_C_N);
    assert_grads(
        "LSTM",
        &grads,
        [
            &LSTM_GRAD_WEIGHT_IH_L0,
            &LSTM_GRAD_WEIGHT_HH_L0,
            &LSTM_GRAD_BIAS_IH_L0,
            &LSTM_GRAD_BIAS_HH_L0,
        ],
    );
}

#[test]
fn gru_equals_pytorch_nn_gru() {
    let cell: Gru<f64> =
        Gru::from_params(params(3), GruVariant::ResetAfter, Sigmoid, Tanh).unwrap();
    let (out, last, grads) = run(&cell);
    assert_close("GRU output", &out, &GRU_OUT);
    assert_close("GRU h_n", &last, &GRU_H_N);
    assert_grads(
        "GRU",
        &grads,
        [
            &GRU_GRAD_WEIGHT_IH_L0,
            &GRU_GRAD_WEIGHT_HH_L0,
            &GRU_GRAD_BIAS_IH_L0,
            &GRU_GRAD_BIAS_HH_L0,
        ],
    );
    // The original variant is a different function: it must not match nn.GRU.
    let cho: Gru<f64> =
        Gru::from_params(params(3), GruVariant::ResetBefore, Sigmoid, Tanh).unwrap();
    let (out, _, _) = run(&cho);
    let worst = out
        .iter()
        .zip(&GRU_OUT)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst > 1e-3,
        "reset-before variant equals nn.GRU: {worst:e}"
    );
}

// Golden values printed by the script above.
const LSTM_OUT: [f64; 63] = [
    -0.13681259694261846,
    -0.004582060936778366,
    0.11142651884809529,
    -0.22268312936167328,
    0.023307046682282232,
    0.07933000696534859,
    -0.10075540186003715,
    -0.027276734273987444,
    0.11717152488692144,
    -0.29885713308047257,
    0.029642779544280993,
    0.09499782789857023,
    -0.27879547003498095,
    0.007688527016264306,
    0.1193584919773805,
    -0.2273013388595898,
    -0.004850263130187073,
    0.11917885264096756,
    -0.3560256075137679,
    0.05203721345476606,
    0.09955360135834601,
    -0.2943950239110093,
    -0.0014336902570179768,
    0.1353223857129097,
    -0.34511827640197074,
    0.03584980777299078,
    0.09229184952152938,
    -0.3491299471543606,
    0.0212836747230679,
    0.12847030413219368,
    -0.35417040891844537,
    0.029854160053519423,
    0.09946538035488742,
    -0.3657259879976245,
    0.04490357892866799,
    0.10692159786112225,
    -0.3482165044048677,
    0.020585358272005472,
    0.12421524525849481,
    -0.39813063952373645,
    0.06625285601385372,
    0.0862234095091765,
    -0.3523357635221869,
    0.014854559300571828,
    0.13277338884088116,
    -0.3946912745318482,
    0.05545995306946859,
    0.08699816238439015,
    -0.38555094036024407,
    0.0498051530185099,
    0.11213579314643723,
    -0.362355000603735,
    0.02877099730074862,
    0.11238292367315549,
    -0.40801699869938074,
    0.07977090720331355,
    0.08890486863916988,
    -0.36638170030363865,
    0.022928769987698876,
    0.1305464249876655,
    -0.40709451184434986,
    0.06653032475537408,
    0.08241028679835588,
];
const LSTM_H_N: [f64; 9] = [
    -0.40801699869938074,
    0.07977090720331355,
    0.08890486863916988,
    -0.36638170030363865,
    0.022928769987698876,
    0.1305464249876655,
    -0.40709451184434986,
    0.06653032475537408,
    0.08241028679835588,
];
const LSTM_C_N: [f64; 9] = [
    -0.7986325183012462,
    0.20147366297776723,
    0.4018310649186444,
    -0.6316882839106216,
    0.07593112762611164,
    0.39192860078513897,
    -0.724871833420173,
    0.18190291645432896,
    0.35454411966165905,
];
const LSTM_GRAD_WEIGHT_IH_L0: [f64; 24] = [
    0.011030294963160926,
    -0.0584991665091944,
    0.0046129291973503565,
    -0.004612337767502609,
    -0.03628301516111169,
    -0.055385645110649695,
    -0.004952414586413988,
    -0.10450170444236835,
    0.008084086356153165,
    0.001908972299363578,
    -0.01389261603170215,
    -0.045610094913450305,
    -0.021975110569049577,
    0.056851392089104474,
    -0.032330489990181836,
    0.01833487825527262,
    -0.07555722487718236,
    -0.17869903391283148,
    -0.021631137605842576,
    -0.15310756473643658,
    0.033653258344326094,
    0.016668703455290444,
    0.0263065528479948,
    -0.0277336575995268,
];
const LSTM_GRAD_WEIGHT_HH_L0: [f64; 36] = [
    0.037646241768392805,
    -0.002000903847827952,
    -0.010335859386635917,
    -0.0014863405610290343,
    0.0006882873576956881,
    -0.0004328505582152088,
    0.007781305328531673,
    0.001522186466390471,
    -0.003083738358229506,
    0.01168719183544505,
    0.0030232706695004514,
    -0.00726878551181555,
    0.00019453686241169385,
    0.000491259325796882,
    -0.0009415474695707595,
    0.01381648421425183,
    0.00010180083961605011,
    -0.004632788580969161,
    -0.00955967044867486,
    -0.0044481329424024335,
    0.007216608578741536,
    0.04948295039393628,
    -0.004169226517643476,
    -0.015747755074596206,
    0.1081453714941419,
    -0.006393751085542937,
    -0.03158420195642443,
    -0.004456082552163909,
    0.005214013893514921,
    -0.00017625888140829975,
    -0.010798324410451478,
    0.001553386350579197,
    0.0019751364224523797,
    -0.004142448480288515,
    0.003054858611592065,
    -7.800662994221367e-05,
];
const LSTM_GRAD_BIAS_IH_L0: [f64; 12] = [
    -0.08017664412015289,
    -0.01734419355125814,
    -0.022000476487628512,
    -0.04187725629928765,
    -0.004707626771506116,
    -0.03613684032007081,
    0.05800096769352864,
    -0.09908483814438669,
    -0.2524900082964991,
    0.029316563393353215,
    0.015276575292128192,
    0.01601551484530704,
];
const LSTM_GRAD_BIAS_HH_L0: [f64; 12] = [
    -0.08017664412015289,
    -0.017344193551258137,
    -0.022000476487628512,
    -0.041877256299287666,
    -0.004707626771506114,
    -0.03613684032007079,
    0.05800096769352865,
    -0.09908483814438668,
    -0.2524900082964991,
    0.029316563393353232,
    0.015276575292128194,
    0.016015514845307038,
];
const GRU_OUT: [f64; 63] = [
    -0.1416028741295931,
    -0.06775605012002434,
    0.3338418498782868,
    -0.22163507119200776,
    0.01888277833793851,
    0.2687327792264935,
    -0.08824587444762497,
    -0.12826349668444764,
    0.4224706256172891,
    -0.3583745554400013,
    0.0014705166359248734,
    0.3024497712581898,
    -0.29489079562662346,
    -0.07017695205263288,
    0.47902575179310986,
    -0.25562477739247963,
    -0.10525409087262864,
    0.3667139746489389,
    -0.4694284078556201,
    0.01060263726489586,
    0.3869484655123947,
    -0.28825423687747326,
    -0.11125663346867182,
    0.4705301942250236,
    -0.4424397889568326,
    -0.0131195819624092,
    0.3152151527000819,
    -0.42705789649628273,
    -0.061489941659977926,
    0.5007806859323939,
    -0.4225235163636806,
    -0.05858610874278883,
    0.31115826553628856,
    -0.5007092786810365,
    -0.02907249847377292,
    0.4262497829537357,
    -0.39083952680891476,
    -0.0780911868543713,
    0.40120933813021165,
    -0.5433484458255973,
    0.013100013913424274,
    0.31403249367678127,
    -0.4182082343330197,
    -0.08626772723009923,
    0.493782884739121,
    -0.5135976971299758,
    -0.010311305665664794,
    0.2738413471335561,
    -0.5324143550141786,
    -0.035311818485739846,
    0.4533268795658021,
    -0.4298448820286784,
    -0.0748342433447394,
    0.34622050201115795,
    -0.5864059292369352,
    0.02443290067809792,
    0.33832261664804175,
    -0.4244410129059013,
    -0.07930435493020352,
    0.46071860098501766,
    -0.5525175048935089,
    0.006709516099486307,
    0.2704309448025377,
];
const GRU_H_N: [f64; 9] = [
    -0.5864059292369352,
    0.02443290067809792,
    0.33832261664804175,
    -0.4244410129059013,
    -0.07930435493020352,
    0.46071860098501766,
    -0.5525175048935089,
    0.006709516099486307,
    0.2704309448025377,
];
const GRU_GRAD_WEIGHT_IH_L0: [f64; 18] = [
    0.012396204621574272,
    -0.012407946239636708,
    -0.004955988297543767,
    0.030932908126061795,
    -0.0023304403672219772,
    0.015477788225046354,
    -0.033269426206782395,
    -0.058272069422605086,
    -0.01860306454920538,
    -0.007335043531212603,
    0.027055487689453418,
    -0.03309594706282647,
    -0.1578481963986551,
    0.14502984043950548,
    -0.17544549066368814,
    0.17436787842930818,
    0.26254443227875746,
    -0.20544732952966613,
];
const GRU_GRAD_WEIGHT_HH_L0: [f64; 27] = [
    0.0012667624854543864,
    0.002423257681748,
    -0.007846494079213898,
    0.014637538784398845,
    -0.0023749518058483686,
    -0.008659978048017892,
    0.003448711748274148,
    -0.0012414231111597326,
    0.000822555762102186,
    -0.050390466166676716,
    0.0033439507878436385,
    0.014452047207874914,
    0.05408409059664584,
    0.004067791869671786,
    -0.043047848704955656,
    0.04653424045302529,
    0.005739974301887645,
    -0.03628967366118723,
    -0.008336419845595579,
    -0.008656340730715917,
    0.03018476515722813,
    0.0496637058369137,
    -0.007095034419581741,
    -0.02837791190051947,
    0.0900233070283843,
    0.023130875341475184,
    -0.10627089707779566,
];
const GRU_GRAD_BIAS_IH_L0: [f64; 9] = [
    -0.00924232843325564,
    -0.01917925170200606,
    0.01671425105459692,
    0.008058516199110674,
    -0.05148078032756349,
    -0.08080131627853251,
    0.10964841557422095,
    -0.1110452019963865,
    -0.18676112465909644,
];
const GRU_GRAD_BIAS_HH_L0: [f64; 9] = [
    -0.009242328433255644,
    -0.019179251702006062,
    0.016714251054596917,
    0.008058516199110691,
    -0.051480780327563466,
    -0.08080131627853254,
    0.03212727561663342,
    -0.05462471958927599,
    -0.12025148344547736,
];
