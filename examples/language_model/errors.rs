//! Errors as the person at the command line reads them: bad arguments (exit code 2)
//! apart from failures (exit code 1), and advice meant for library users reworded.

use super::BoxError;

/// A command-line value that cannot work (a conflict with the checkpoint, an unwritable
/// path): the program exits with code 2, as for a flag clap refuses.
#[derive(Debug)]
pub struct BadArgument(pub String);

impl std::fmt::Display for BadArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArgument {}

/// A [`BadArgument`] as the program's error type.
pub fn bad(message: impl Into<String>) -> BoxError {
    Box::new(BadArgument(message.into()))
}

/// Library advice that makes no sense on the command line, and what to say instead.
const REWORDED: &[(&str, &str)] = &[
    (
        "read it with import_safetensors",
        "--resume takes a checkpoint written with --save, not an --export file",
    ),
    (
        "plain weight files are read with import_safetensors",
        "--resume takes a checkpoint written with --save",
    ),
    ("type parameter", "--dtype (or leave --dtype out)"),
    (
        "bptt: nothing to work on (empty sequence)",
        "the text gave an empty sequence: lower --min-words or raise --limit",
    ),
];

/// The message for `error` and the exit code: 2 for bad arguments, 1 otherwise.
pub fn explain(error: &BoxError) -> (String, i32) {
    let mut message = error.to_string();
    for (library, program) in REWORDED {
        message = message.replace(library, program);
    }
    let code = if error.downcast_ref::<BadArgument>().is_some() {
        2
    } else {
        1
    };
    (message, code)
}
