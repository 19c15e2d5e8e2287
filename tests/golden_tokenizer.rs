//! Golden tokenizer tests: every case of `../shared/golden/minilm_tokenizer.json` (made by
//! `../shared/reference/parity.py` with transformers' BertTokenizerFast) must match exactly,
//! from the checkpoint's tokenizer.json and from a folder holding only vocab.txt.

mod common;

use std::path::Path;

use bertkit::tokenize::{EncodePlan, Padding, TextTokenizer, TokenBatch, Truncation};
use common::{golden, model_dir, u32s};

fn check_all_cases(dir: &Path) {
    let g = golden("minilm_tokenizer.json");
    let cases = g["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10, "expected the full golden set, got {}", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let max_len = case["max_length"].as_u64().unwrap() as usize;
        let tok = TextTokenizer::from_dir(dir, EncodePlan::new(max_len, Truncation::LongestFirst))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = case["text"].as_str().unwrap();
        let pair = case.get("text_pair").and_then(|p| p.as_str());
        let enc = tok.encode(text, pair).unwrap_or_else(|e| panic!("{name}: {e}"));

        let unpadded = &case["unpadded"];
        assert_eq!(enc.ids, u32s(&unpadded["input_ids"]), "{name}: unpadded input_ids");
        assert_eq!(enc.type_ids, u32s(&unpadded["token_type_ids"]), "{name}: unpadded type ids");
        let tokens: Vec<String> = enc.ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
        let expected_tokens: Vec<&str> =
            case["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(tokens, expected_tokens, "{name}: tokens");

        let padded = &case["padded"];
        let batch = TokenBatch::pad(std::slice::from_ref(&enc), Padding::Fixed(max_len), tok.pad_id());
        let as_u32 = |v: &[i64]| v.iter().map(|&x| x as u32).collect::<Vec<_>>();
        assert_eq!(as_u32(&batch.input_word_ids), u32s(&padded["input_ids"]), "{name}: padded ids");
        assert_eq!(as_u32(&batch.input_mask), u32s(&padded["attention_mask"]), "{name}: padded mask");
        assert_eq!(as_u32(&batch.input_type_ids), u32s(&padded["token_type_ids"]), "{name}: padded types");
    }
}

#[test]
fn every_golden_case_matches_from_tokenizer_json() {
    check_all_cases(&model_dir());
}

#[test]
fn every_golden_case_matches_from_vocab_txt_only() {
    let src = model_dir();
    let dir = tempfile::tempdir().unwrap();
    for f in ["vocab.txt", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let tok = TextTokenizer::from_dir(dir.path(), EncodePlan::default()).unwrap();
    assert!(tok.source().ends_with("vocab.txt"));
    check_all_cases(dir.path());
}

#[test]
fn seed_sentence_ids() {
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::default()).unwrap();
    let enc = tok.encode("this is such an amazing movie!", None).unwrap();
    let batch = TokenBatch::pad(&[enc], Padding::Fixed(128), tok.pad_id());
    assert_eq!(&batch.input_word_ids[..12], &[101, 2023, 2003, 2107, 2019, 6429, 3185, 999, 102, 0, 0, 0]);
    assert_eq!(batch.input_word_ids.len(), 128);
}

#[test]
fn checkpoint_padding_does_not_leak_into_unpadded_encodings() {
    // The checkpoint's tokenizer.json pads to a fixed 128; an unpadded encode must not.
    let raw = std::fs::read_to_string(model_dir().join("tokenizer.json")).unwrap();
    assert!(raw.contains("\"Fixed\""), "the fixture no longer carries padding; test is moot");
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::new(64, Truncation::LongestFirst)).unwrap();
    assert_eq!(tok.encode("hello", None).unwrap().len(), 3);
}

#[test]
fn pair_gets_sep_between_and_type_one_on_second_segment() {
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::default()).unwrap();
    let enc = tok.encode("good film", Some("bad film")).unwrap();
    let tokens: Vec<String> = enc.ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(tokens, ["[CLS]", "good", "film", "[SEP]", "bad", "film", "[SEP]"]);
    assert_eq!(enc.type_ids, [0, 0, 0, 0, 1, 1, 1]);
}

fn words(n: usize) -> String {
    (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn head_tail_keeps_first_and_last_tokens() {
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::new(18, Truncation::HeadTail)).unwrap();
    // "one two ... " words that are single WordPiece tokens.
    let text = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
        .repeat(5)
        .join(" ");
    let enc = tok.encode(&text, None).unwrap();
    let tokens: Vec<String> = enc.ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    // budget 16 = 4 head + 12 tail.
    assert_eq!(enc.len(), 18);
    assert_eq!(tokens[..5], ["[CLS]", "one", "two", "three", "four"]);
    assert_eq!(tokens[5..], ["nine", "ten", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "[SEP]"]);
    // A short text is untouched.
    assert_eq!(tok.encode("one two", None).unwrap().len(), 4);
}

#[test]
fn only_second_cuts_the_second_segment_and_needs_a_pair() {
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::new(8, Truncation::OnlySecond)).unwrap();
    let enc = tok.encode("good", Some(&words(20))).unwrap();
    assert_eq!(enc.len(), 8);
    assert_eq!(enc.ids[1], tok.inner().token_to_id("good").unwrap());
    let err = tok.encode("good", None).unwrap_err().to_string();
    assert!(err.contains("only_second") && err.contains("pair"), "{err}");
    let err = tok.encode_all(&["good", "bad"]).unwrap_err().to_string();
    assert!(err.starts_with("text 0:") || err.starts_with("text 1:"), "{err}");
}

#[test]
fn only_first_cuts_the_first_segment() {
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::new(8, Truncation::OnlyFirst)).unwrap();
    let enc = tok.encode(&"good ".repeat(20), Some("bad")).unwrap();
    let tokens: Vec<String> = enc.ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(tokens, ["[CLS]", "good", "good", "good", "good", "[SEP]", "bad", "[SEP]"]);
}

#[test]
fn missing_tokenizer_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = TextTokenizer::from_dir(dir.path(), EncodePlan::default()).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json or vocab.txt"), "{err}");
}

#[test]
fn sequence_length_too_short_for_special_tokens_is_an_error() {
    let err = TextTokenizer::from_dir(&model_dir(), EncodePlan::new(2, Truncation::LongestFirst))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sequence length 2"), "{err}");
}
