//! The language-model example on the real corpora in `../shared/data/`: initial loss, learning,
//! checkpoints (save/load/resume), generation and bad input.

use std::path::PathBuf;

use clap::Parser;

use super::language_model::{self, run, Config};
use super::{s, scratch, shared};

/// A config from command-line words, always quiet and plotting into a scratch folder.
fn config(args: &[&str]) -> Config {
    use std::hash::{Hash, Hasher};
    // A short, distinct plot name per argument list (paths in the arguments can be long).
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    args.hash(&mut hasher);
    let plot = scratch("plots").join(format!("{:016x}.svg", hasher.finish()));
    let plot = plot.to_string_lossy().into_owned();
    let mut words = vec!["language_model", "--quiet", "--plot", &plot];
    words.extend_from_slice(args);
    Config::try_parse_from(words).unwrap()
}

fn reddit_args() -> Vec<String> {
    let corpus = shared("reddit-comments-2015-08.csv")
        .to_string_lossy()
        .into_owned();
    [
        "--level", "word", "--corpus", &corpus, "--vocab", "2000", "--hidden", "50", "--dtype",
        "f64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn with(base: &[String], more: &[&str]) -> Config {
    let mut words: Vec<&str> = base.iter().map(String::as_str).collect();
    words.extend_from_slice(more);
    config(&words)
}

/// Before training every word is about equally likely (loss ln V per word); ten epochs on
/// 90 sentences take the training loss down by two nats, and the held-out 10 sentences
/// (never trained on) improve too.
#[test]
fn initial_loss_is_log_vocabulary_and_ten_epochs_drop_it_by_two_nats() {
    let summary = run(&with(
        &reddit_args(),
        &["--limit", "100", "--epochs", "10", "--generate", "3"],
    ))
    .unwrap();
    let uniform = (summary.vocab_size as f64).ln();
    assert_eq!(summary.vocab_size, 2000);
    assert!(
        (summary.initial_loss - uniform).abs() < 0.01,
        "{} vs ln V = {uniform}",
        summary.initial_loss
    );
    let last = summary.evaluations.last().unwrap();
    let train = last.train_loss.unwrap();
    assert!(
        summary.initial_loss - train >= 2.0,
        "training loss went from {} to {train}",
        summary.initial_loss,
    );
    assert!(summary.final_loss < summary.initial_loss, "{summary:?}");
    assert_eq!(
        last.valid_loss.unwrap().to_bits(),
        summary.final_loss.to_bits()
    );
    assert_eq!(summary.generated.len(), 3);
    assert!(summary.generated.iter().all(|s| s.split(' ').count() >= 5));
    eprintln!(
        "reddit, 10 epochs: {} -> {}; samples: {:#?}",
        summary.initial_loss, summary.final_loss, summary.generated
    );
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one_to_the_bit() {
    let dir = scratch("resume");
    let (full, half, resumed) = (
        dir.join("full.safetensors"),
        dir.join("half.safetensors"),
        dir.join("resumed.safetensors"),
    );
    let base = reddit_args();
    run(&with(
        &base,
        &[
            "--epochs",
            "2",
            "--limit",
            "30",
            "--generate",
            "0",
            "--save",
            &s(&full),
        ],
    ))
    .unwrap();
    run(&with(
        &base,
        &[
            "--epochs",
            "2",
            "--limit",
            "30",
            "--generate",
            "0",
            "--stop-after",
            "37",
            "--save",
            &s(&half),
        ],
    ))
    .unwrap();
    run(&with(
        &base,
        &[
            "--epochs",
            "2",
            "--limit",
            "30",
            "--generate",
            "0",
            "--resume",
            &s(&half),
            "--save",
            &s(&resumed),
        ],
    ))
    .unwrap();
    let load = |p: &PathBuf| recur::io::Checkpoint::<f64>::load(p).unwrap();
    let (a, b) = (load(&full), load(&resumed));
    assert_eq!(a.tensors.len(), b.tensors.len());
    for ((name_a, x), (name_b, y)) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(name_a, name_b);
        assert!(
            x.iter()
                .zip(y.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits()),
            "{name_a} differs"
        );
    }
    // Evaluating a loaded checkpoint gives the loss the saving run ended with, to the bit.
    let again = run(&with(
        &base,
        &[
            "--epochs",
            "2",
            "--limit",
            "30",
            "--generate",
            "0",
            "--resume",
            &s(&full),
        ],
    ))
    .unwrap();
    let first = run(&with(
        &base,
        &["--epochs", "2", "--limit", "30", "--generate", "0"],
    ))
    .unwrap();
    assert_eq!(again.final_loss.to_bits(), first.final_loss.to_bits());
}

#[test]
fn character_level_streaming_learns_tiny_shakespeare() {
    let corpus = shared("tinyshakespeare.txt");
    let corpus = corpus.to_string_lossy();
    let summary = run(&config(&[
        "--level",
        "char",
        "--corpus",
        &corpus,
        "--limit",
        "30000",
        "--epochs",
        "2",
        "--hidden",
        "64",
        "--generate",
        "1",
    ]))
    .unwrap();
    assert!(summary.vocab_size <= 65);
    assert!(
        summary.final_loss < summary.initial_loss - 0.8,
        "{summary:?}"
    );
    let valid: Vec<f64> = summary
        .evaluations
        .iter()
        .map(|e| e.valid_loss.unwrap())
        .collect();
    assert!(
        valid.windows(2).all(|w| w[1] < w[0]),
        "the held-out loss must fall every epoch: {valid:?}"
    );
    assert_eq!(summary.generated[0].chars().count(), 200);
}

/// `--cell` and `--layers` build gated stacks that learn, and a resumed run takes its shape
/// from the checkpoint, not from the flags' defaults.
#[test]
fn gated_stacks_learn_and_resume_with_their_own_shape() {
    let corpus = shared("tinyshakespeare.txt");
    let corpus = corpus.to_string_lossy().into_owned();
    let checkpoint = scratch("gated").join("gru2.ckpt");
    let checkpoint = checkpoint.to_string_lossy().into_owned();
    let base = ["--level", "char", "--corpus", &corpus, "--limit", "20000"];
    let args =
        |more: &[&str]| -> Vec<String> { base.iter().chain(more).map(|s| s.to_string()).collect() };
    for cell in ["lstm", "gru"] {
        let words = args(&[
            "--cell",
            cell,
            "--layers",
            "2",
            "--hidden",
            "32",
            "--generate",
            "0",
        ]);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let summary = run(&config(&words)).unwrap();
        assert!(
            summary.final_loss < summary.initial_loss - 0.8,
            "{cell}: {summary:?}"
        );
    }
    let first = args(&[
        "--cell", "gru", "--layers", "2", "--hidden", "24", "--epochs", "1",
    ]);
    let first: Vec<&str> = first
        .iter()
        .map(String::as_str)
        .chain(["--save", &checkpoint])
        .collect();
    run(&config(&first)).unwrap();
    let resumed = args(&["--epochs", "2", "--resume", &checkpoint, "--generate", "1"]);
    let resumed: Vec<&str> = resumed.iter().map(String::as_str).collect();
    let summary = run(&config(&resumed)).unwrap();
    assert_eq!(summary.evaluations.len(), 3, "{summary:?}");
    assert!(summary.final_loss < summary.evaluations[0].watched().unwrap());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = scratch("bad");
    let missing = dir.join("no-such-file.txt");
    let err = run(&config(&["--corpus", &missing.to_string_lossy()])).unwrap_err();
    assert!(err.to_string().contains("no-such-file"), "{err}");

    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    assert!(run(&config(&["--corpus", &empty.to_string_lossy()])).is_err());

    let no_body = dir.join("comments.csv");
    std::fs::write(&no_body, "title\nhello\n").unwrap();
    let err = run(&config(&["--corpus", &no_body.to_string_lossy()])).unwrap_err();
    assert!(err.to_string().contains("body"), "{err}");

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    assert!(run(&config(&[
        "--resume",
        &garbage.to_string_lossy(),
        "--epochs",
        "0"
    ]))
    .is_err());

    // A checkpoint whose shapes differ from the model being resumed.
    let small = dir.join("small.safetensors");
    let base = reddit_args();
    run(&with(
        &base,
        &[
            "--epochs",
            "1",
            "--limit",
            "10",
            "--generate",
            "0",
            "--save",
            &small.to_string_lossy(),
        ],
    ))
    .unwrap();
    // Asking for f32 explicitly conflicts with the f64 checkpoint.
    let small = small.to_string_lossy();
    let plot = scratch("plots").join("f32.svg");
    let words = [
        "language_model",
        "--quiet",
        "--plot",
        &plot.to_string_lossy(),
        "--resume",
        &small,
        "--dtype",
        "f32",
        "--epochs",
        "0",
    ];
    let (f32_resume, given) = language_model::parse_from(&words).unwrap();
    let err = language_model::run_with(&f32_resume, given).unwrap_err();
    assert!(err.to_string().contains("--dtype f32"), "{err}");
}
