//! The language model as a user drives it: a held-out split disjoint from training,
//! perplexity, the CSV log, sampling controls (temperature, prompt), generate-only mode,
//! early stopping, the best checkpoint and the exported weights with their vocabulary.
//! Everything runs in-process on small corpora written here.

use std::path::{Path, PathBuf};

use clap::Parser;
use rand::{rngs::StdRng, SeedableRng};
use recur::prelude::*;
use recur::{Batches, SeqInput, SeqTargets};

use super::language_model::{run, text, Config, Summary};
use super::{s, scratch};

/// A few paragraphs of plain prose, repeated with a counter so that no two sentences are
/// the same.
fn prose(paragraphs: usize) -> String {
    (0..paragraphs)
        .map(|i| {
            format!(
                "The cell reads the input and the state of step {i}. The readout of step {i} \
                 turns the hidden state into scores, and the loss compares them with the next \
                 token.\n\n"
            )
        })
        .collect()
}

fn corpus(name: &str, text: &str) -> String {
    let path = scratch(name).join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// A quiet config from command-line words, plotting into its own scratch folder.
fn config(name: &str, args: &[&str]) -> Config {
    let plot = s(&scratch(name).join("loss.svg"));
    let mut words = vec!["language_model", "--quiet", "--plot", &plot];
    words.extend_from_slice(args);
    Config::try_parse_from(words).unwrap()
}

/// A small character model of the prose: LSTM, 16 units, 2 epochs.
fn small_char(name: &str, corpus: &str, more: &[&str]) -> Summary {
    let mut args = vec![
        "--corpus",
        corpus,
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--generate",
        "2",
    ];
    args.extend_from_slice(more);
    run(&config(name, &args)).unwrap()
}

/// The token ids a batch set covers, in order: each batch's inputs, then the target of its
/// last step (a streamed piece's inputs start where the previous piece's targets end).
fn covered(data: &mut dyn Batches<f32>) -> Vec<Vec<usize>> {
    (0..data.len())
        .map(|i| {
            let batch = data.get(0, i).unwrap();
            let (SeqInput::Tokens(inputs), SeqTargets::Classes(targets)) =
                (batch.inputs, batch.targets)
            else {
                panic!("token batches hold token ids");
            };
            let mut ids: Vec<usize> = inputs.column(0).to_vec();
            ids.push(*targets.column(0).last().unwrap());
            ids
        })
        .collect()
}

/// Characters: training is the head of the text, validation its tail, with no position
/// in both; words: the last sentences are held out, each sentence in exactly one set.
#[test]
fn the_validation_split_is_disjoint_from_training_by_position() {
    let text = prose(40);
    let path = corpus("split-char", &text);
    let config = config(
        "split-char",
        &["--corpus", &path, "--valid-fraction", "0.2"],
    );
    let documents = text::load(&config).unwrap();
    let vocab = text::vocabulary(&config, &documents).unwrap();
    let text::Vocab::Chars(chars) = &vocab else {
        panic!("characters by default")
    };
    let all = chars.encode(&documents.join("\n\n")).unwrap();
    let mut split = text::split(&config, &documents, &vocab).unwrap();
    let join = |pieces: Vec<Vec<usize>>| -> Vec<usize> {
        // Consecutive pieces share their boundary token: the next piece's first input.
        pieces
            .iter()
            .enumerate()
            .fold(Vec::new(), |mut out, (i, p)| {
                out.extend_from_slice(if i == 0 { p } else { &p[1..] });
                out
            })
    };
    let train = join(covered(&mut split.train));
    let valid = join(covered(&mut split.valid));
    let held_out = (all.len() as f64 * 0.2).round() as usize;
    assert_eq!(valid.len(), held_out);
    assert_eq!(train.len(), all.len() - held_out);
    assert_eq!(
        train,
        all[..train.len()],
        "training is the head of the text"
    );
    assert_eq!(
        valid,
        all[train.len()..],
        "validation is the rest, no position shared"
    );

    let words = config_words("split-word", &path);
    let documents = text::load(&words).unwrap();
    let vocab = text::vocabulary(&words, &documents).unwrap();
    let mut split = text::split(&words, &documents, &vocab).unwrap();
    let (train, valid) = (covered(&mut split.train), covered(&mut split.valid));
    let sentences = train.len() + valid.len();
    assert_eq!(valid.len(), (sentences as f64 * 0.1).round() as usize);
    // Each sentence names its step number, so it is unique: no sentence is in both sets,
    // and validation is the last ones in corpus order.
    assert!(valid.iter().all(|v| !train.contains(v)));
    let text::Vocab::Words(w) = &vocab else {
        panic!("word level asked for")
    };
    let last = valid.last().unwrap();
    assert!(
        w.decode(last).unwrap().contains(&"39"),
        "{:?}",
        w.decode(last)
    );
}

fn config_words(name: &str, corpus: &str) -> Config {
    config(
        name,
        &["--level", "word", "--corpus", corpus, "--batch", "1"],
    )
}

/// Reads a CSV log: its header and rows of cells.
fn read_log(path: &Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_owned();
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// The log has the documented columns and one row per evaluation, whose perplexities are
/// `exp` of its losses (as are the summary's).
#[test]
fn the_log_has_a_row_per_evaluation_and_perplexity_is_exp_of_the_loss() {
    let path = corpus("log", &prose(30));
    let log = scratch("log").join("run.csv");
    let summary = small_char("log", &path, &["--log", &s(&log), "--evaluate-every", "40"]);
    let (header, rows) = read_log(&log);
    assert_eq!(
        header,
        "update,epoch,tokens,train_loss,train_perplexity,valid_loss,valid_perplexity,learning_rate,tokens_per_s,elapsed_s"
    );
    assert!(summary.evaluations.len() >= 4, "{summary:?}");
    assert_eq!(rows.len(), summary.evaluations.len());
    for (row, e) in rows.iter().zip(&summary.evaluations) {
        assert_eq!(row.len(), 10);
        assert_eq!(row[0], e.update.to_string());
        let valid: f64 = row[5].parse().unwrap();
        let ppl: f64 = row[6].parse().unwrap();
        assert!((valid - e.valid_loss.unwrap()).abs() < 1e-6);
        assert!((ppl / valid.exp() - 1.0).abs() < 1e-5, "{row:?}");
        if let Some(train) = e.train_loss {
            let train_ppl: f64 = row[4].parse().unwrap();
            assert!((train_ppl / train.exp() - 1.0).abs() < 1e-5, "{row:?}");
        }
        let exp = e.valid_loss.unwrap().exp();
        assert_eq!(e.valid_perplexity().unwrap().to_bits(), exp.to_bits());
    }
    let elapsed: Vec<f64> = rows.iter().map(|r| r[9].parse().unwrap()).collect();
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]), "{elapsed:?}");
}

/// `--time-budget` ends a run early, at an update boundary, and the run still ends as a
/// finished one: an evaluation of its last weights, then samples. A value that is not a
/// duration is a bad argument (exit code 2).
#[test]
fn a_tiny_time_budget_ends_training_early_and_finishes_as_usual() {
    let path = corpus("budget", &prose(30));
    let full = small_char("budget", &path, &[]);
    let log = scratch("budget").join("run.csv");
    let short = small_char("budget", &path, &["--time-budget", "0s", "--log", &s(&log)]);
    assert!(
        short.updates < full.updates,
        "{} updates of {}",
        short.updates,
        full.updates
    );
    assert!(short.stopped.is_none(), "{:?}", short.stopped);
    assert_eq!(short.evaluations.last().unwrap().update, short.updates);
    assert_eq!(short.generated.len(), 2);
    assert_eq!(read_log(&log).1.len(), short.evaluations.len());

    for good in ["90", "90s", "10m", "1.5h", "0"] {
        let words = ["language_model", "--time-budget", good];
        assert!(Config::try_parse_from(words).is_ok(), "{good}");
    }
    for bad in ["", "10x", "m", "-5s", "1e3", "inf", "10 min"] {
        // `=` so that clap takes `-5s` as the value, not as a flag.
        let flag = format!("--time-budget={bad}");
        let error = Config::try_parse_from(["language_model", flag.as_str()]).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad}");
        assert!(error.to_string().contains("is not a duration"), "{error}");
    }
}

/// Trains a small model of the prose, saves it and exports it: the checkpoint, the weights.
fn trained(name: &str) -> (PathBuf, PathBuf, Summary) {
    let dir = scratch(name);
    let (ckpt, weights) = (dir.join("lm.ckpt"), dir.join("lm.safetensors"));
    let path = corpus(name, &prose(30));
    let summary = small_char(
        name,
        &path,
        &["--save", &s(&ckpt), "--export", &s(&weights)],
    );
    (ckpt, weights, summary)
}

/// Generate-only mode reads no corpus, trains nothing (the checkpoint stays byte for
/// byte, the update count too), and with the checkpoint's seed draws the very samples the
/// training run drew at its end: the weights are the trained ones, untouched.
#[test]
fn generate_only_does_not_train_and_reuses_the_checkpoint_seed() {
    let (ckpt, _, trained) = trained("generate-only");
    let before = std::fs::read(&ckpt).unwrap();
    let summary = run(&config(
        "generate-only",
        &["--resume", &s(&ckpt), "--generate-only", "--generate", "2"],
    ))
    .unwrap();
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
    assert_eq!(summary.updates, trained.updates);
    assert_eq!(summary.generated, trained.generated);
    assert!(
        Config::try_parse_from(["lm", "--generate-only"]).is_err(),
        "needs --resume"
    );
    assert!(
        Config::try_parse_from(["lm", "--resume", "x", "--generate-only", "--epochs", "3"])
            .is_err(),
        "training flags do not go with --generate-only"
    );
}

/// Every sample starts with `--prompt`, at any temperature and with top-k / top-p.
#[test]
fn a_prompt_prefixes_every_sample() {
    let (ckpt, _, _) = trained("prompt");
    for extra in [
        &["--temperature", "0.5"][..],
        &["--top-k", "3", "--top-p", "0.9"],
    ] {
        let mut args = vec![
            "--resume",
            &s(&ckpt),
            "--generate-only",
            "--generate",
            "3",
            "--prompt",
            "The cell ",
            "--max-tokens",
            "40",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let summary = run(&config("prompt", &args)).unwrap();
        assert_eq!(summary.generated.len(), 3);
        for sample in &summary.generated {
            assert!(sample.starts_with("The cell "), "{sample:?}");
            assert_eq!(sample.chars().count(), "The cell ".len() + 40);
        }
    }
}

/// At temperature 0 the sample is the argmax path, whatever the seed: checked against a
/// greedy decode of the exported weights, rebuilt from the safetensors file and its
/// `vocab.json` alone.
#[test]
fn temperature_zero_is_the_argmax_path_of_the_exported_weights() {
    let (ckpt, weights, _) = trained("argmax");
    let sample = |seed: &str| {
        run(&config(
            "argmax",
            &[
                "--resume",
                &s(&ckpt),
                "--generate-only",
                "--generate",
                "1",
                "--temperature",
                "0",
                "--max-tokens",
                "60",
                "--sample-seed",
                seed,
            ],
        ))
        .unwrap()
        .generated
        .remove(0)
    };
    let greedy = sample("1");
    assert_eq!(sample("2"), greedy);

    let vocab: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(weights.with_extension("vocab.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(vocab["level"], "char");
    let tokens: Vec<String> = serde_json::from_value(vocab["tokens"].clone()).unwrap();
    let hidden = vocab["shape"]["hidden"].as_u64().unwrap() as usize;
    let mut rng = StdRng::seed_from_u64(99);
    let cell = LstmConfig::new(tokens.len(), hidden)
        .init::<f32, _, _>(Sigmoid, Tanh, &mut rng)
        .unwrap();
    let readout = LinearConfig::new(hidden, tokens.len())
        .init(&mut rng)
        .unwrap();
    let mut model = Model::new(cell, readout).unwrap();
    recur::io::import_safetensors(&mut model, &weights).unwrap();
    let mut predictor = Predictor::new(&model, 1);
    let mut token = tokens.iter().position(|t| t == "\n").unwrap();
    let mut text = String::new();
    for _ in 0..60 {
        let logits = predictor.step(&model, Input::Tokens(&[token])).unwrap();
        let row: Vec<f64> = logits.row(0).iter().map(|&v| f64::from(v)).collect();
        token = (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best });
        text.push_str(&tokens[token]);
    }
    assert_eq!(greedy, text);
}

/// `--patience 1` ends a run at the first evaluation that does not beat the best, long
/// before its epochs are done, and `--save-best` holds the checkpoint of that best one.
#[test]
fn patience_stops_and_save_best_keeps_the_best() {
    let path = corpus("patience", &prose(20));
    let best = scratch("patience").join("best.ckpt");
    let summary = run(&config(
        "patience",
        &[
            "--corpus",
            &path,
            "--hidden",
            "16",
            "--epochs",
            "200",
            "--optimizer",
            "adagrad:0.5",
            "--patience",
            "1",
            "--save-best",
            &s(&best),
            "--generate",
            "0",
        ],
    ))
    .unwrap();
    let valid: Vec<f64> = summary
        .evaluations
        .iter()
        .map(|e| e.valid_loss.unwrap())
        .collect();
    let epochs = summary.evaluations.last().unwrap().epoch;
    assert!(epochs < 200, "never stopped: {valid:?}");
    let (last, before) = valid.split_last().unwrap();
    let lowest = before.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(*last >= lowest, "stopped at a new best: {valid:?}");

    let checkpoint = recur::io::Checkpoint::<f32>::load(&best).unwrap();
    let progress: serde_json::Value =
        serde_json::from_str(&checkpoint.metadata["progress"]).unwrap();
    let saved = progress["run"]["evaluations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        saved["valid_loss"].as_f64().unwrap().to_bits(),
        lowest.to_bits()
    );
    let resumed = run(&config(
        "patience",
        &["--resume", &s(&best), "--generate-only", "--generate", "1"],
    ))
    .unwrap();
    assert_eq!(resumed.final_loss.to_bits(), lowest.to_bits());
}
