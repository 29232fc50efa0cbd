//! Every optimizer minimises an ill-conditioned quadratic.

use ndarray::{array, Array1};
use recur_optim::{OptimizerConfig, Schedule};

/// f(x) = ½ Σ aᵢ (xᵢ − cᵢ)², ∇f = a ⊙ (x − c); curvatures spread over two decades.
fn run(spec: &str, steps: usize, schedule: Schedule) -> f64 {
    let a = array![0.1, 1.0, 10.0];
    let c = array![1.0, -2.0, 0.5];
    let mut opt = spec
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<f64>()
        .unwrap();
    let mut schedule = schedule;
    let mut x: Array1<f64> = Array1::zeros(3);
    for _ in 0..steps {
        let grad = &a * &(&x - &c);
        opt.step(&mut x, &grad).unwrap();
        schedule.on_step(opt.as_mut()).unwrap();
    }
    (&x - &c).iter().map(|d| d.abs()).fold(0.0, f64::max)
}

#[test]
fn every_optimizer_converges_on_a_quadratic() {
    let cases = [
        ("sgd:0.15", Schedule::Constant),
        ("momentum:0.05:0.9", Schedule::Constant),
        ("nesterov:0.05:0.9", Schedule::Constant),
        ("adagrad:0.5", Schedule::Constant),
        // The adaptive rules hover at a distance of about lr around the minimum with a
        // constant rate; a decaying rate lets them settle.
        ("rmsprop:0.05", Schedule::exponential_decay(0.997).unwrap()),
        ("adam:0.1", Schedule::exponential_decay(0.997).unwrap()),
    ];
    for (spec, schedule) in cases {
        let distance = run(spec, 3000, schedule);
        assert!(distance < 1e-4, "{spec}: still {distance} from the minimum");
    }
}
