//! `bertkit preprocess`: shows what the encoder will be fed, like the TF Hub preprocessing model.

use anyhow::Context;
use bertkit::tokenize::{Padding, TokenBatch};
use clap::Args;

use super::args::head;
use super::{ModelArgs, PreprocessArgs};

#[derive(Args, Debug)]
pub struct PreprocessCmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    pre: PreprocessArgs,
    /// Second segment of a sentence pair (one per TEXT when given).
    #[arg(long, env = "BERTKIT_PAIR")]
    pair: Vec<String>,
    /// Print the full arrays as JSON instead of the first 12 values.
    #[arg(long, env = "BERTKIT_JSON")]
    json: bool,
    /// Text(s) to encode.
    #[arg(required = true)]
    texts: Vec<String>,
}

impl PreprocessCmd {
    pub fn run(self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.pair.is_empty() || self.pair.len() == self.texts.len(),
            "got {} --pair values for {} texts: give one per text or none",
            self.pair.len(),
            self.texts.len()
        );
        let tok = self.pre.tokenizer(&self.model)?;
        let encodings = self
            .texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                tok.encode(t, self.pair.get(i).map(String::as_str))
                    .with_context(|| format!("encoding text {}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let batch = TokenBatch::pad(&encodings, Padding::Fixed(self.pre.seq_len), tok.pad_id());
        if self.json {
            let rows = |v: &[i64]| -> Vec<Vec<i64>> { v.chunks(batch.seq_len).map(<[i64]>::to_vec).collect() };
            let out = serde_json::json!({
                "input_word_ids": rows(&batch.input_word_ids),
                "input_mask": rows(&batch.input_mask),
                "input_type_ids": rows(&batch.input_type_ids),
                "shape": [batch.batch_size, batch.seq_len],
            });
            println!("{}", serde_json::to_string(&out)?);
            return Ok(());
        }
        println!("Keys       : ['input_word_ids', 'input_mask', 'input_type_ids']");
        println!("Shape      : [{}, {}]", batch.batch_size, batch.seq_len);
        for (i, enc) in encodings.iter().enumerate() {
            let (ids, mask, types) = batch.row(i);
            if encodings.len() > 1 {
                println!("Text {}", i + 1);
            }
            println!("Word Ids   : {}", head(ids, 12));
            println!("Input Mask : {}", head(mask, 12));
            println!("Type Ids   : {}", head(types, 12));
            let tokens: Vec<String> =
                enc.ids.iter().map(|&id| tok.id_to_token(id).unwrap_or_else(|| format!("<{id}>"))).collect();
            println!("Tokens     : {} ({} of {})", tokens.join(" "), enc.len(), batch.seq_len);
        }
        Ok(())
    }
}
