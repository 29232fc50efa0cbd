//! Text from a trained model: sentences for words, a run of characters otherwise, each
//! starting with the prompt. How a token is drawn is `sample.rs`'s business.

use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::data::{self, CharVocabulary, Vocabulary};
use recur::prelude::*;

use super::config::Config;
use super::sample::{self, Sampling};
use super::session::LanguageModel;
use super::text::Vocab;
use super::BoxError;

/// Words a sentence may have after the prompt unless `--max-tokens` says otherwise.
const MAX_WORDS: usize = 60;
/// Characters generated after the prompt unless `--max-tokens` says otherwise.
const CHARS: usize = 200;

/// Samples `config.generate` texts from the model, drawing with `seed`: sentences for
/// words (after the start token and the prompt; never the start or unknown token; retried
/// below `--min-length` words), characters otherwise (after a line break, or the prompt).
///
/// # Errors
/// Bad sampling settings, a prompt character outside the vocabulary, model errors.
pub fn generate<F: Float, C: Cell<F>>(
    config: &Config,
    model: &LanguageModel<F, C>,
    vocab: &Vocab,
    seed: u64,
) -> Result<Vec<String>, BoxError> {
    config.sampling.validate()?;
    let mut sampler = Sampler::new(model, config.sampling, StdRng::seed_from_u64(seed));
    let prompt = config.prompt.as_deref().unwrap_or_default();
    (0..config.generate)
        .map(|_| match vocab {
            Vocab::Words(v) => {
                let max = config.max_tokens.unwrap_or(MAX_WORDS);
                sentence(&mut sampler, model, v, prompt, config.min_length, max)
            }
            Vocab::Chars(v) => chars(
                &mut sampler,
                model,
                v,
                prompt,
                config.max_tokens.unwrap_or(CHARS),
            ),
        })
        .collect()
}

fn sentence<F: Float, C: Cell<F>>(
    sampler: &mut Sampler<F, C>,
    model: &LanguageModel<F, C>,
    vocab: &Vocabulary,
    prompt: &str,
    min_length: usize,
    max_words: usize,
) -> Result<String, BoxError> {
    let banned = [Vocabulary::SENTENCE_START_ID, Vocabulary::UNKNOWN_ID];
    let mut context = vec![Vocabulary::SENTENCE_START_ID];
    context.extend(
        data::tokenize_words(prompt)
            .iter()
            .map(|w| vocab.id_or_unknown(w)),
    );
    for _attempt in 0..100 {
        let mut token = sampler.start(model, &context)?;
        let mut words = Vec::new();
        while words.len() < max_words {
            token = sampler.next(model, token, &banned)?;
            if token == Vocabulary::SENTENCE_END_ID {
                break;
            }
            words.push(vocab.word_of(token).unwrap_or("?"));
        }
        if words.len() >= min_length.min(max_words) {
            let text = words.join(" ");
            return Ok(match prompt.trim() {
                "" => text,
                p => format!("{p} {text}"),
            });
        }
    }
    Err(format!("no sentence of at least {min_length} words in 100 attempts").into())
}

fn chars<F: Float, C: Cell<F>>(
    sampler: &mut Sampler<F, C>,
    model: &LanguageModel<F, C>,
    vocab: &CharVocabulary,
    prompt: &str,
    len: usize,
) -> Result<String, BoxError> {
    // Without a prompt, start after a line break, as a text does (not shown).
    let shown = prompt;
    let prompt = if prompt.is_empty() { "\n" } else { prompt };
    let context = vocab.encode(prompt).map_err(|e| {
        format!("the prompt has a character the model never saw ({e}); try another prompt")
    })?;
    let mut token = sampler.start(model, &context)?;
    let mut ids = Vec::with_capacity(len);
    for _ in 0..len {
        token = sampler.next(model, token, &[])?;
        ids.push(token);
    }
    Ok(format!("{shown}{}", vocab.decode(&ids)?))
}

/// Feeds one token at a time and draws the next from the softmax.
struct Sampler<F: Float, C: Cell<F>> {
    predictor: Predictor<F, C>,
    probabilities: Array2<F>,
    sampling: Sampling,
    rng: StdRng,
}

impl<F: Float, C: Cell<F>> Sampler<F, C> {
    fn new(model: &LanguageModel<F, C>, sampling: Sampling, rng: StdRng) -> Self {
        Sampler {
            predictor: Predictor::new(model, 1),
            probabilities: Array2::zeros((1, model.readout().output_size())),
            sampling,
            rng,
        }
    }

    /// Resets the state and feeds all of `context` but its last token, which it returns
    /// (the first input of [`Sampler::next`]).
    fn start(&mut self, model: &LanguageModel<F, C>, context: &[usize]) -> Result<usize, BoxError> {
        self.predictor.reset();
        let (&last, before) = context.split_last().ok_or("an empty context")?;
        for &token in before {
            self.predictor.step(model, Input::Tokens(&[token]))?;
        }
        Ok(last)
    }

    fn next(
        &mut self,
        model: &LanguageModel<F, C>,
        token: usize,
        banned: &[usize],
    ) -> Result<usize, BoxError> {
        let logits = self.predictor.step(model, Input::Tokens(&[token]))?;
        SoftmaxCrossEntropy.predict(logits, self.probabilities.view_mut())?;
        let p: Vec<f64> = self
            .probabilities
            .iter()
            .map(|v| v.to_f64_lossless())
            .collect();
        let weights = self.sampling.weights(&p, banned)?;
        Ok(sample::draw(&weights, self.rng.random::<f64>()))
    }
}
