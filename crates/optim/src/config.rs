//! [`OptimizerConfig`]: a serialisable, parseable description of an optimizer.

use std::fmt;
use std::str::FromStr;

use recur_core::{Error, Float, Result};
use serde::{Deserialize, Serialize};

use crate::{Adagrad, Adam, Momentum, Optimizer, RmsProp, Sgd};

/// Default momentum coefficient μ.
pub const DEFAULT_MOMENTUM: f64 = 0.9;
/// Default denominator offset ε of Adagrad, RMSprop and Adam.
pub const DEFAULT_EPS: f64 = 1e-8;
/// Default RMSprop decay ρ.
pub const DEFAULT_DECAY: f64 = 0.9;
/// Default Adam first-moment decay β₁.
pub const DEFAULT_BETA1: f64 = 0.9;
/// Default Adam second-moment decay β₂.
pub const DEFAULT_BETA2: f64 = 0.999;

fn default_momentum() -> f64 {
    DEFAULT_MOMENTUM
}
fn default_eps() -> f64 {
    DEFAULT_EPS
}
fn default_decay() -> f64 {
    DEFAULT_DECAY
}
fn default_beta1() -> f64 {
    DEFAULT_BETA1
}
fn default_beta2() -> f64 {
    DEFAULT_BETA2
}

/// Which optimizer to use and its hyper-parameters, in `f64` whatever the training precision.
///
/// Serialises with a `kind` tag (`{"kind": "adam", "lr": 0.001, …}`; omitted
/// hyper-parameters other than `lr` take the `DEFAULT_*` constants of this module) and
/// parses from a command-line string with [`FromStr`]. [`build`](Self::build) validates it
/// and makes the runtime optimizer. The default is SGD with learning rate 0.005.
///
/// # Command-line grammar
///
/// ```text
/// spec     = kind [ ":" lr [ ":" param ]* ]
/// sgd       [:lr]                          lr 0.005
/// momentum  [:lr [:momentum]]              lr 0.01,  momentum 0.9
/// nesterov  [:lr [:momentum]]              lr 0.01,  momentum 0.9
/// adagrad   [:lr [:eps]]                   lr 0.1,   eps 1e-8
/// rmsprop   [:lr [:decay [:eps]]]          lr 0.001, decay 0.9, eps 1e-8
/// adam      [:lr [:beta1 [:beta2 [:eps]]]] lr 0.001, beta1 0.9, beta2 0.999, eps 1e-8
/// ```
///
/// Kinds are case-insensitive; numbers are anything `f64::from_str` reads (`1e-3`); an
/// empty field keeps its default (`adam::0.95`). [`Display`](fmt::Display) writes the
/// full form, which parses back to the same value.
///
/// ```
/// use recur_optim::{OptimizerConfig, Optimizer};
///
/// # fn main() -> recur_core::Result<()> {
/// let config: OptimizerConfig = "adam:0.002".parse()?;
/// assert_eq!(
///     config,
///     OptimizerConfig::Adam { lr: 0.002, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
/// );
/// assert_eq!(config.to_string().parse::<OptimizerConfig>()?, config);
///
/// let opt = config.build::<f32>()?;
/// assert_eq!(opt.name(), "adam");
/// assert_eq!(opt.learning_rate(), 0.002_f32);
///
/// assert!("adam:-1".parse::<OptimizerConfig>().is_err());
/// assert!("sgd:0.1:0.9".parse::<OptimizerConfig>().is_err());
/// assert_eq!(OptimizerConfig::default(), OptimizerConfig::Sgd { lr: 0.005 });
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// [`Sgd`].
    Sgd {
        /// Learning rate.
        lr: f64,
    },
    /// Classic [`Momentum`].
    Momentum {
        /// Learning rate.
        lr: f64,
        /// Momentum coefficient μ in `[0, 1)`.
        #[serde(default = "default_momentum")]
        momentum: f64,
    },
    /// Nesterov [`Momentum`].
    Nesterov {
        /// Learning rate.
        lr: f64,
        /// Momentum coefficient μ in `[0, 1)`.
        #[serde(default = "default_momentum")]
        momentum: f64,
    },
    /// [`Adagrad`].
    Adagrad {
        /// Learning rate.
        lr: f64,
        /// Denominator offset ε > 0.
        #[serde(default = "default_eps")]
        eps: f64,
    },
    /// [`RmsProp`].
    #[serde(rename = "rmsprop")]
    RmsProp {
        /// Learning rate.
        lr: f64,
        /// Decay ρ of the mean squared gradient, in `[0, 1)`.
        #[serde(default = "default_decay")]
        decay: f64,
        /// Denominator offset ε > 0.
        #[serde(default = "default_eps")]
        eps: f64,
    },
    /// [`Adam`].
    Adam {
        /// Learning rate.
        lr: f64,
        /// First-moment decay β₁ in `[0, 1)`.
        #[serde(default = "default_beta1")]
        beta1: f64,
        /// Second-moment decay β₂ in `[0, 1)`.
        #[serde(default = "default_beta2")]
        beta2: f64,
        /// Denominator offset ε > 0.
        #[serde(default = "default_eps")]
        eps: f64,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Sgd { lr: 0.005 }
    }
}

impl OptimizerConfig {
    /// The kind, as in the grammar and in [`Optimizer::name`].
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Momentum { .. } => "momentum",
            OptimizerConfig::Nesterov { .. } => "nesterov",
            OptimizerConfig::Adagrad { .. } => "adagrad",
            OptimizerConfig::RmsProp { .. } => "rmsprop",
            OptimizerConfig::Adam { .. } => "adam",
        }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { lr }
            | OptimizerConfig::Momentum { lr, .. }
            | OptimizerConfig::Nesterov { lr, .. }
            | OptimizerConfig::Adagrad { lr, .. }
            | OptimizerConfig::RmsProp { lr, .. }
            | OptimizerConfig::Adam { lr, .. } => lr,
        }
    }

    /// Builds the optimizer, computing in `F` (hyper-parameters are rounded to `F`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a hyper-parameter is out of range (see each
    /// optimizer's constructor).
    pub fn build<F: Float>(&self) -> Result<Box<dyn Optimizer<F>>> {
        let f = F::from_f64_lossy;
        Ok(match *self {
            OptimizerConfig::Sgd { lr } => Box::new(Sgd::new(f(lr))?),
            OptimizerConfig::Momentum { lr, momentum } => {
                Box::new(Momentum::new(f(lr), f(momentum))?)
            }
            OptimizerConfig::Nesterov { lr, momentum } => {
                Box::new(Momentum::nesterov(f(lr), f(momentum))?)
            }
            OptimizerConfig::Adagrad { lr, eps } => Box::new(Adagrad::new(f(lr), f(eps))?),
            OptimizerConfig::RmsProp { lr, decay, eps } => {
                Box::new(RmsProp::new(f(lr), f(decay), f(eps))?)
            }
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => Box::new(Adam::new(f(lr), f(beta1), f(beta2), f(eps))?),
        })
    }

    /// The hyper-parameters in grammar order (learning rate first).
    fn values(&self) -> Vec<f64> {
        match *self {
            OptimizerConfig::Sgd { lr } => vec![lr],
            OptimizerConfig::Momentum { lr, momentum }
            | OptimizerConfig::Nesterov { lr, momentum } => vec![lr, momentum],
            OptimizerConfig::Adagrad { lr, eps } => vec![lr, eps],
            OptimizerConfig::RmsProp { lr, decay, eps } => vec![lr, decay, eps],
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => vec![lr, beta1, beta2, eps],
        }
    }

    /// The default configuration of a kind, `None` for an unknown kind.
    fn default_of(kind: &str) -> Option<Self> {
        Some(match kind {
            "sgd" => OptimizerConfig::default(),
            "momentum" => OptimizerConfig::Momentum {
                lr: 0.01,
                momentum: DEFAULT_MOMENTUM,
            },
            "nesterov" => OptimizerConfig::Nesterov {
                lr: 0.01,
                momentum: DEFAULT_MOMENTUM,
            },
            "adagrad" => OptimizerConfig::Adagrad {
                lr: 0.1,
                eps: DEFAULT_EPS,
            },
            "rmsprop" => OptimizerConfig::RmsProp {
                lr: 0.001,
                decay: DEFAULT_DECAY,
                eps: DEFAULT_EPS,
            },
            "adam" => OptimizerConfig::Adam {
                lr: 0.001,
                beta1: DEFAULT_BETA1,
                beta2: DEFAULT_BETA2,
                eps: DEFAULT_EPS,
            },
            _ => return None,
        })
    }

    /// The inverse of [`values`](Self::values), for a config of the same kind.
    fn with_values(self, v: &[f64]) -> Self {
        match self {
            OptimizerConfig::Sgd { .. } => OptimizerConfig::Sgd { lr: v[0] },
            OptimizerConfig::Momentum { .. } => OptimizerConfig::Momentum {
                lr: v[0],
                momentum: v[1],
            },
            OptimizerConfig::Nesterov { .. } => OptimizerConfig::Nesterov {
                lr: v[0],
                momentum: v[1],
            },
            OptimizerConfig::Adagrad { .. } => OptimizerConfig::Adagrad {
                lr: v[0],
                eps: v[1],
            },
            OptimizerConfig::RmsProp { .. } => OptimizerConfig::RmsProp {
                lr: v[0],
                decay: v[1],
                eps: v[2],
            },
            OptimizerConfig::Adam { .. } => OptimizerConfig::Adam {
                lr: v[0],
                beta1: v[1],
                beta2: v[2],
                eps: v[3],
            },
        }
    }
}

const GRAMMAR: &str = "expected sgd[:lr], momentum[:lr[:momentum]], nesterov[:lr[:momentum]], \
                       adagrad[:lr[:eps]], rmsprop[:lr[:decay[:eps]]] or \
                       adam[:lr[:beta1[:beta2[:eps]]]]";

impl FromStr for OptimizerConfig {
    type Err = Error;

    /// Parses the grammar documented on [`OptimizerConfig`] and validates the values.
    fn from_str(spec: &str) -> Result<Self> {
        let mut fields = spec.trim().split(':');
        let kind = fields
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let defaults = Self::default_of(&kind).ok_or_else(|| {
            Error::config(
                "optimizer",
                format!("unknown kind {kind:?} in {spec:?}; {GRAMMAR}"),
            )
        })?;
        let mut values = defaults.values();
        let names = param_names(&kind);
        for (i, field) in fields.enumerate() {
            if i >= values.len() {
                return Err(Error::config(
                    "optimizer",
                    format!(
                        "too many fields in {spec:?}: {kind} takes at most {}; {GRAMMAR}",
                        values.len()
                    ),
                ));
            }
            let field = field.trim();
            if field.is_empty() {
                continue;
            }
            values[i] = field.parse().map_err(|_| {
                Error::config(
                    "optimizer",
                    format!("{} of {spec:?} is not a number: {field:?}", names[i]),
                )
            })?;
        }
        let config = defaults.with_values(&values);
        config.build::<f64>()?;
        Ok(config)
    }
}

fn param_names(kind: &str) -> &'static [&'static str] {
    match kind {
        "momentum" | "nesterov" => &["lr", "momentum"],
        "adagrad" => &["lr", "eps"],
        "rmsprop" => &["lr", "decay", "eps"],
        "adam" => &["lr", "beta1", "beta2", "eps"],
        _ => &["lr"],
    }
}

impl fmt::Display for OptimizerConfig {
    /// Writes the full command-line form, e.g. `momentum:0.01:0.9`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())?;
        for v in self.values() {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> OptimizerConfig {
        spec.parse()
            .unwrap_or_else(|e| panic!("{spec:?} should parse: {e}"))
    }

    #[test]
    fn grammar_examples_parse() {
        assert_eq!(parse("sgd:0.005"), OptimizerConfig::Sgd { lr: 0.005 });
        assert_eq!(
            parse("adam:0.001"),
            OptimizerConfig::default_of("adam").unwrap()
        );
        assert_eq!(
            parse("adagrad:0.1"),
            OptimizerConfig::Adagrad { lr: 0.1, eps: 1e-8 }
        );
        assert_eq!(
            parse("momentum:0.01:0.9"),
            OptimizerConfig::Momentum {
                lr: 0.01,
                momentum: 0.9
            }
        );
        assert_eq!(
            parse("nesterov:0.01:0.5"),
            OptimizerConfig::Nesterov {
                lr: 0.01,
                momentum: 0.5
            }
        );
        assert_eq!(
            parse("rmsprop:0.001"),
            OptimizerConfig::RmsProp {
                lr: 0.001,
                decay: 0.9,
                eps: 1e-8
            }
        );
        assert_eq!(
            parse(" ADAM : 2e-3 :: 0.99 : 1e-6 "),
            OptimizerConfig::Adam {
                lr: 2e-3,
                beta1: 0.9,
                beta2: 0.99,
                eps: 1e-6
            }
        );
        assert_eq!(parse("sgd"), OptimizerConfig::default());
        assert_eq!(
            parse("rmsprop::0.95"),
            OptimizerConfig::RmsProp {
                lr: 0.001,
                decay: 0.95,
                eps: 1e-8
            }
        );
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        for bad in [
            "",
            "sgdd:0.1",
            "sgd:0.1:0.9",
            "sgd:fast",
            "sgd:0",
            "sgd:-1",
            "sgd:inf",
            "sgd:NaN",
            "momentum:0.1:1.0",
            "adam:0.1:0.9:0.999:1e-8:5",
            "adagrad:0.1:0",
            "rmsprop:0.1:-0.1",
        ] {
            let err = bad.parse::<OptimizerConfig>().unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{bad:?}: {err}");
        }
        let err = "sgdd".parse::<OptimizerConfig>().unwrap_err().to_string();
        assert!(
            err.contains("adam[:lr"),
            "the message shows the grammar: {err}"
        );
    }

    #[test]
    fn display_and_serde_round_trip() {
        for spec in [
            "sgd",
            "momentum",
            "nesterov:0.3:0.1",
            "adagrad:0.2:1e-6",
            "rmsprop",
            "adam:3e-4",
        ] {
            let config = parse(spec);
            assert_eq!(parse(&config.to_string()), config, "{spec}");
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(
                serde_json::from_str::<OptimizerConfig>(&json).unwrap(),
                config
            );
            let built = config.build::<f64>().unwrap();
            assert_eq!(built.name(), config.kind());
            assert_eq!(
                built.learning_rate().to_bits(),
                config.learning_rate().to_bits()
            );
        }
        assert_eq!(
            serde_json::to_string(&OptimizerConfig::default()).unwrap(),
            r#"{"kind":"sgd","lr":0.005}"#
        );
        let adam: OptimizerConfig = serde_json::from_str(r#"{"kind":"adam","lr":0.01}"#).unwrap();
        assert_eq!(
            adam,
            OptimizerConfig::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8
            }
        );
        let rms: OptimizerConfig = serde_json::from_str(r#"{"kind":"rmsprop","lr":0.01}"#).unwrap();
        assert_eq!(rms.kind(), "rmsprop");
        assert!(
            serde_json::from_str::<OptimizerConfig>(r#"{"kind":"adam","lr":0.01,"beta":0.9}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind":"adam"}"#).is_err());
        // Deserialising does not validate; building does.
        let bad: OptimizerConfig = serde_json::from_str(r#"{"kind":"sgd","lr":-1.0}"#).unwrap();
        assert!(bad.build::<f32>().is_err());
    }
}
