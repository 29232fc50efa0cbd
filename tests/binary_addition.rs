//! The binary-addition example, run in-process: it learns to add for nearly every seed,
//! its printed error drops like the classic program's, what it learns on 8-bit sums
//! carries over to 16-bit ones, and LSTM and GRU cells, bare or stacked, learn it too.

#[path = "../examples/binary_addition.rs"]
#[allow(dead_code)]
mod binary_addition;

use binary_addition::{run, ActivationKind, CellKind, Config, Summary};
use clap::Parser;
use recur::optim::OptimizerConfig;

const SEEDS: [u64; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

fn quiet(seed: u64) -> Config {
    Config {
        seed,
        quiet: true,
        ..Config::default()
    }
}

/// Runs the classic configuration for every seed, on two threads (the seeds are independent).
fn run_seeds(seeds: &[u64]) -> Vec<(u64, Summary)> {
    let (first, second) = seeds.split_at(seeds.len() / 2);
    let run_all = |seeds: &[u64]| -> Vec<(u64, Summary)> {
        seeds
            .iter()
            .map(|&seed| (seed, run(&quiet(seed)).expect("training runs")))
            .collect()
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| run_all(second));
        let mut all = run_all(first);
        all.extend(other.join().expect("no panic"));
        all
    })
}

/// Reported errors from iteration 8 000 on.
fn late_errors(summary: &Summary) -> Vec<f64> {
    summary
        .reports
        .iter()
        .filter(|r| r.iteration >= 8_000)
        .map(|r| r.error)
        .collect()
}

#[test]
fn learns_to_add_for_nine_of_ten_seeds_and_its_error_falls_below_one() {
    let results = run_seeds(&SEEDS);
    let table: Vec<String> = results
        .iter()
        .map(|(seed, s)| {
            format!(
                "seed {seed}: {:.1} % exact, errors from 8000 on {:?}",
                100.0 * s.recent_accuracy,
                late_errors(s)
            )
        })
        .collect();
    let learned: Vec<&(u64, Summary)> = results
        .iter()
        .filter(|(_, s)| s.recent_accuracy >= 0.95)
        .collect();
    assert!(learned.len() >= 9, "{table:#?}");
    for (seed, summary) in learned {
        let late = late_errors(summary);
        assert_eq!(late.len(), 3, "seed {seed}: reports at 8000, 9000, 10000");
        assert!(late.iter().all(|&e| e < 1.0), "seed {seed}: {table:#?}");
    }
}

#[test]
fn what_it_learns_on_8_bit_sums_adds_16_bit_numbers() {
    // Same learning rate and iterations as the classic run; only the hidden layer is wider.
    for seed in [0, 1] {
        let config = Config {
            hidden: 32,
            eval_bits: Some(16),
            eval_samples: 2_000,
            ..quiet(seed)
        };
        let summary = run(&config).unwrap();
        assert_eq!(summary.eval_bits, 16);
        assert!(summary.eval_accuracy >= 0.99, "seed {seed}: {summary:?}");
    }
}

#[test]
fn a_cell_activation_with_f_of_zero_zero_needs_biases() {
    // Without biases, a tanh cell maps the input (0, 0) from the zero state to h = 0, so the
    // output is σ(0) = ½ exactly whenever both low bits are 0: a quarter of the problems
    // stay wrong however long it trains. The sigmoid cell gets away with it (σ(0) = ½).
    let tanh = |bias| Config {
        activation: ActivationKind::Tanh,
        bias,
        ..quiet(0)
    };
    let without = run(&tanh(false)).unwrap();
    assert!(without.recent_accuracy < 0.8, "{without:?}");
    let with = run(&tanh(true)).unwrap();
    assert!(with.recent_accuracy >= 0.95, "{with:?}");
}

/// Trains `layers` cells of `cell`, with biases, on `iterations` problems (seed 0) and asserts
/// that the last 1 000 sums and the held-out ones come out right.
fn learns_to_add(cell: CellKind, layers: usize, iterations: usize) {
    let config = Config {
        cell,
        layers,
        iterations,
        bias: true,
        ..quiet(0)
    };
    let summary = run(&config).unwrap();
    assert!(summary.recent_accuracy >= 0.95, "{config:?}: {summary:?}");
    assert!(summary.eval_accuracy >= 0.99, "{config:?}: {summary:?}");
}

#[test]
fn an_lstm_learns_to_add() {
    learns_to_add(CellKind::Lstm, 1, 3_000);
}

#[test]
fn a_gru_learns_to_add() {
    learns_to_add(CellKind::Gru, 1, 3_000);
}

#[test]
fn two_stacked_lstms_learn_to_add() {
    learns_to_add(CellKind::Lstm, 2, 5_000);
}

#[test]
fn two_stacked_grus_learn_to_add() {
    learns_to_add(CellKind::Gru, 2, 3_000);
}

#[test]
fn gated_cells_need_biases_too() {
    // As with tanh: the input (0, 0) from the zero state gives c = 0 and h = 0, so the
    // output is σ(0) = ½ whenever both low bits are 0.
    for cell in [CellKind::Lstm, CellKind::Gru] {
        let config = Config {
            cell,
            iterations: 3_000,
            ..quiet(0)
        };
        let summary = run(&config).unwrap();
        assert!(summary.recent_accuracy < 0.8, "{config:?}: {summary:?}");
    }
}

#[test]
fn reports_read_like_the_classic_program() {
    let config = Config {
        iterations: 2_000,
        print_every: 500,
        ..quiet(3)
    };
    let summary = run(&config).unwrap();
    let iterations: Vec<usize> = summary.reports.iter().map(|r| r.iteration).collect();
    assert_eq!(iterations, [500, 1000, 1500, 2000]);
    let last = summary.reports.last().unwrap();
    assert_eq!(last.error.to_bits(), summary.last_error.to_bits());
    assert_eq!(last.a + last.b, last.sum);
    assert!((0.0..=8.0).contains(&last.error));

    let text = last.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[1].starts_with("Error: "), "{text}");
    // Bit strings are the full width, most significant bit first.
    assert_eq!(lines[2], format!("Pred: {:08b}", last.predicted));
    assert_eq!(lines[3], format!("True: {:08b}", last.sum));
    assert_eq!(
        lines[4],
        format!("{} + {} = {}", last.a, last.b, last.predicted)
    );
}

#[test]
fn a_seed_gives_the_same_run() {
    let config = Config {
        iterations: 1_500,
        ..quiet(11)
    };
    let (a, b) = (run(&config).unwrap(), run(&config).unwrap());
    assert_eq!(a.reports, b.reports);
    assert_eq!(a.eval_accuracy.to_bits(), b.eval_accuracy.to_bits());
}

#[test]
fn the_command_line_sets_every_hyper_parameter() {
    let config = Config::try_parse_from([
        "binary_addition",
        "--iterations",
        "500",
        "--hidden",
        "8",
        "--cell",
        "gru",
        "--layers",
        "3",
        "--lr",
        "0.2",
        "--seed",
        "4",
        "--bits",
        "6",
        "--eval-bits",
        "12",
        "--eval-samples",
        "50",
        "--bias",
        "--activation",
        "tanh",
        "--optimizer",
        "momentum:0.05:0.8",
        "--print-every",
        "100",
        "--quiet",
        "--json",
    ])
    .unwrap();
    assert_eq!(
        (config.iterations, config.hidden, config.seed, config.bits),
        (500, 8, 4, 6)
    );
    assert_eq!((config.eval_bits, config.eval_samples), (Some(12), 50));
    assert_eq!(config.lr, Some(0.2));
    assert_eq!(config.activation, ActivationKind::Tanh);
    assert_eq!((config.cell, config.layers), (CellKind::Gru, 3));
    assert_eq!(
        config.optimizer,
        OptimizerConfig::Momentum {
            lr: 0.05,
            momentum: 0.8
        }
    );
    assert!(config.bias && config.quiet && config.json && config.print_every == 100);
    let summary = run(&config).unwrap();
    assert_eq!((summary.iterations, summary.eval_bits), (500, 12));

    // The defaults are the classic program's.
    let classic = Config::default();
    assert_eq!(
        (classic.iterations, classic.hidden, classic.bits),
        (10_000, 16, 8)
    );
    assert_eq!(classic.optimizer, OptimizerConfig::Sgd { lr: 0.1 });
    assert_eq!(classic.activation, ActivationKind::Sigmoid);
    assert_eq!((classic.cell, classic.layers), (CellKind::Elman, 1));
    assert!(!classic.bias && classic.lr.is_none() && classic.eval_bits.is_none());

    for bad in [["--bits", "0"], ["--bits", "33"], ["--eval-bits", "40"]] {
        let args = ["binary_addition", bad[0], bad[1]];
        assert!(Config::try_parse_from(args).is_err(), "{bad:?}");
    }
}

#[test]
fn bad_settings_are_errors_not_panics() {
    let bad = [
        Config {
            iterations: 0,
            ..quiet(0)
        },
        Config {
            hidden: 0,
            ..quiet(0)
        },
        Config {
            layers: 0,
            ..quiet(0)
        },
        Config {
            print_every: 0,
            ..quiet(0)
        },
        Config {
            eval_samples: 0,
            ..quiet(0)
        },
        Config {
            bits: 40,
            ..quiet(0)
        },
        Config {
            eval_bits: Some(0),
            iterations: 10,
            ..quiet(0)
        },
        Config {
            lr: Some(-1.0),
            ..quiet(0)
        },
    ];
    for config in bad {
        assert!(run(&config).is_err(), "{config:?}");
    }
}
