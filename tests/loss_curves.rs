//! The loss-curves example (`examples/loss_curves.rs`) on logs written here: columns read
//! by name, empty cells skipped, clear errors for logs it cannot draw, one SVG for several
//! logs.

#[path = "../examples/loss_curves.rs"]
#[allow(dead_code)]
mod loss_curves;

use std::path::PathBuf;

use clap::Parser;
use loss_curves::{parse_log_arg, read_log, run, Config, LogArg, XAxis};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("recur-curves-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HEADER: &str = "update,epoch,tokens,train_loss,train_perplexity,valid_loss,valid_perplexity,learning_rate,tokens_per_s,elapsed_s";

fn log(name: &str, text: &str) -> LogArg {
    let path = scratch(name).join(format!("{name}.csv"));
    std::fs::write(&path, text).unwrap();
    LogArg {
        label: name.to_owned(),
        path,
    }
}

fn rows(scale: f64) -> String {
    let mut text = format!("{HEADER}\n0,0,0,,,4.17,64.7,0.002,0.0,0.000\n");
    for i in 1..=5 {
        let (train, valid) = (2.0 + scale / i as f64, 2.2 + scale / i as f64);
        text.push_str(&format!(
            "{},0,{},{train},,{valid},,0.002,20000.0,{}.5\n",
            i * 1000,
            i * 25_000,
            i * 2
        ));
    }
    text
}

fn close((a, b): (f64, f64), (c, d): (f64, f64)) -> bool {
    (a - c).abs() < 1e-9 && (b - d).abs() < 1e-9
}

#[test]
fn columns_are_read_by_name_for_every_axis() {
    let arg = log("axes", &rows(1.0));
    let by_time = read_log(&arg, XAxis::Seconds).unwrap();
    assert_eq!(by_time.valid.len(), 6);
    assert_eq!(by_time.train.len(), 5, "the first row has no training loss");
    assert!(close(by_time.valid[1], (2.5, 3.2)), "{:?}", by_time.valid);
    assert_eq!(by_time.updates, 5000);
    let by_tokens = read_log(&arg, XAxis::Tokens).unwrap();
    assert!(close(by_tokens.best().unwrap(), (125_000.0, 2.4)));
    let by_updates = read_log(&arg, XAxis::Updates).unwrap();
    assert!(close(by_updates.train[0], (1000.0, 3.0)));
}

#[test]
fn logs_it_cannot_draw_are_refused_with_the_reason() {
    let old = log(
        "old",
        "update,epoch,tokens,train_loss,train_perplexity,valid_loss,valid_perplexity,learning_rate,tokens_per_s\n0,0,0,,,4.1,60,0.1,0\n",
    );
    let error = read_log(&old, XAxis::Seconds).unwrap_err().to_string();
    assert!(
        error.contains("'elapsed_s'") && error.contains("--x updates"),
        "{error}"
    );
    assert!(read_log(&old, XAxis::Updates).is_ok());

    let short = log("short", &format!("{HEADER}\n0,0,0\n"));
    let error = read_log(&short, XAxis::Updates).unwrap_err().to_string();
    assert!(
        error.contains("line 2") && error.contains("3 cells"),
        "{error}"
    );
    let text = format!("{HEADER}\n0,0,0,,,four,,0.1,0,0\n");
    let error = read_log(&log("word", &text), XAxis::Updates)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("'four'") && error.contains("valid_loss"),
        "{error}"
    );
    let missing = LogArg {
        label: "x".into(),
        path: scratch("missing").join("none.csv"),
    };
    assert!(read_log(&missing, XAxis::Updates).is_err());

    for bad in ["lstm", "=a.csv", "lstm="] {
        assert!(parse_log_arg(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_log_arg("a=b=c.csv").unwrap().path,
        PathBuf::from("b=c.csv")
    );
}

#[test]
fn several_logs_make_one_svg_with_a_legend_entry_each() {
    let (a, b) = (log("first", &rows(1.0)), log("second", &rows(0.5)));
    let out = scratch("svg").join("curves.svg");
    let words = [
        "loss_curves".to_owned(),
        "--out".to_owned(),
        out.to_string_lossy().into_owned(),
        "--train".to_owned(),
        "--y-max".to_owned(),
        "3".to_owned(),
        format!("first={}", a.path.display()),
        format!("second={}", b.path.display()),
    ];
    let config = Config::try_parse_from(words).unwrap();
    let curves = run(&config).unwrap();
    assert_eq!(curves.len(), 2);
    let svg = std::fs::read_to_string(&out).unwrap();
    for label in ["first", "second", "first, training", "wall-clock seconds"] {
        assert!(svg.contains(label), "{label} missing");
    }

    let empty = log("empty", &format!("{HEADER}\n"));
    let config = Config::try_parse_from([
        "loss_curves".to_owned(),
        "--out".to_owned(),
        out.to_string_lossy().into_owned(),
        format!("empty={}", empty.path.display()),
    ])
    .unwrap();
    assert!(run(&config).is_err());
}
