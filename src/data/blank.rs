//! Whether a text holds nothing a tokenizer keeps: whitespace and the invisible format characters
//! (zero-width spaces and joiners, BOM, soft hyphen, direction marks) that BERT's normalizer
//! drops (transformers' `_is_control` treats Unicode category Cf as control). Such a text becomes
//! `[CLS] [SEP]` and would be scored as if it said something.

/// The Cf (format) characters that occur in real text; the whole category is larger, but its
/// other members (e.g. Arabic number signs) carry meaning next to other characters and never
/// appear alone in a review.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// `true` for "", whitespace, and texts made only of whitespace and invisible format characters.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || c.is_control() || is_invisible_format(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_texts_are_blank_and_visible_ones_are_not() {
        for t in ["", "  \t\n", "\u{200B}", "\u{FEFF}\u{200B} \u{00AD}", "\u{0007}"] {
            assert!(is_blank(t), "{t:?}");
        }
        for t in ["a", "\u{200B}ok", "é", "。", "🙂"] {
            assert!(!is_blank(t), "{t:?}");
        }
    }
}
