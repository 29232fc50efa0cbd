//! Text from a trained model: sentences for words, a run of characters otherwise.

use ndarray::{Array1, Array2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::data::{CharVocabulary, Vocabulary};
use recur::prelude::*;

use super::config::Config;
use super::session::LanguageModel;
use super::text::Vocab;
use super::BoxError;

/// Samples text from the model: sentences for words (start token, resample unknown words,
/// stop at the end token, retry below the minimum length), characters otherwise.
pub fn generate<F: Float, C: Cell<F>>(
    config: &Config,
    model: &LanguageModel<F, C>,
    vocab: &Vocab,
) -> Result<Vec<String>, BoxError> {
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(1));
    let mut out = Vec::new();
    for _ in 0..config.generate {
        let text = match vocab {
            Vocab::Words(v) => generate_sentence(model, v, config.min_length, &mut rng)?,
            Vocab::Chars(v) => generate_chars(model, v, 200, &mut rng)?,
        };
        out.push(text);
    }
    Ok(out)
}

fn generate_sentence<F: Float, C: Cell<F>>(
    model: &LanguageModel<F, C>,
    vocab: &Vocabulary,
    min_length: usize,
    rng: &mut StdRng,
) -> Result<String, BoxError> {
    const MAX_WORDS: usize = 60;
    let mut sampler = Sampler::new(model);
    for _attempt in 0..100 {
        sampler.reset();
        let mut words = Vec::new();
        let mut token = Vocabulary::SENTENCE_START_ID;
        while words.len() < MAX_WORDS {
            token = loop {
                let next = sampler.next(model, token, rng)?;
                if next != Vocabulary::UNKNOWN_ID {
                    break next;
                }
            };
            if token == Vocabulary::SENTENCE_END_ID {
                break;
            }
            words.push(vocab.word_of(token).unwrap_or("?").to_owned());
        }
        if words.len() >= min_length {
            return Ok(words.join(" "));
        }
    }
    Err(format!("no sentence of at least {min_length} words in 100 attempts").into())
}

fn generate_chars<F: Float, C: Cell<F>>(
    model: &LanguageModel<F, C>,
    vocab: &CharVocabulary,
    len: usize,
    rng: &mut StdRng,
) -> Result<String, BoxError> {
    let mut sampler = Sampler::new(model);
    // Start after a line break, as a text does, rather than after a rare character.
    let mut token = vocab.id_of('\n').unwrap_or(0);
    let mut ids = vec![token];
    for _ in 1..len {
        token = sampler.next(model, token, rng)?;
        ids.push(token);
    }
    Ok(vocab.decode(&ids)?)
}

/// Feeds one token at a time and samples the next from the softmax.
struct Sampler<F: Float, C: Cell<F>> {
    predictor: Predictor<F, C>,
    probabilities: Array2<F>,
}

impl<F: Float, C: Cell<F>> Sampler<F, C> {
    fn new(model: &LanguageModel<F, C>) -> Self {
        Sampler {
            predictor: Predictor::new(model, 1),
            probabilities: Array2::zeros((1, model.readout().output_size())),
        }
    }

    fn reset(&mut self) {
        self.predictor.reset();
    }

    fn next(
        &mut self,
        model: &LanguageModel<F, C>,
        token: usize,
        rng: &mut StdRng,
    ) -> Result<usize, BoxError> {
        let logits = self.predictor.step(model, Input::Tokens(&[token]))?;
        SoftmaxCrossEntropy.predict(logits, self.probabilities.view_mut())?;
        let p: Array1<f64> = self.probabilities.row(0).mapv(|v| v.to_f64_lossless());
        let mut u = rng.random::<f64>() * p.sum();
        for (i, &pi) in p.iter().enumerate() {
            u -= pi;
            if u <= 0.0 {
                return Ok(i);
            }
        }
        Ok(p.len() - 1)
    }
}
