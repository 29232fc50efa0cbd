//! Tokeniser, word vocabulary and character vocabulary on arbitrary text: no panics, and
//! whatever is encoded decodes again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recur_data::{tokenize_sentences, CharVocabulary, Vocabulary, UNKNOWN_TOKEN};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let sentences = tokenize_sentences(&text);
    if let Ok((vocab, report)) = Vocabulary::build(&sentences, 16) {
        assert!(report.kept <= report.unique_tokens);
        for sentence in &sentences {
            let ids = vocab.encode(sentence);
            let words = vocab.decode(&ids).expect("encoded ids are in range");
            for (word, got) in sentence.iter().zip(words) {
                assert!(got == word || got == UNKNOWN_TOKEN);
            }
        }
    }

    if let Ok(chars) = CharVocabulary::from_text(&text) {
        let ids = chars
            .encode(&text)
            .expect("every character of the text is known");
        assert_eq!(chars.decode(&ids).expect("ids are in range"), text);
    }
});
