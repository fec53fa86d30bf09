//! `embedding_local`: the sentence-transformers model all-MiniLM-L6-v2 run in-process
//! with candle — a BERT forward pass, mean pooling over the attention mask, L2
//! normalisation — on inputs truncated at the model's 256 tokens. Loaded once per
//! process and shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use futures::future::BoxFuture;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::embedding::{Provider, RequestError};

/// The model's input limit, as sentence-transformers sets it (`max_seq_length`).
pub const MAX_TOKENS: usize = 256;

/// The files a model directory must hold.
pub const FILES: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];

pub struct LocalModel {
    model: BertModel,
    tokenizer: Tokenizer,
    /// One forward pass at a time: its threads are capped anyway, and each pass holds
    /// its batch's activations.
    pass: Mutex<()>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl LocalModel {
    pub fn load(dir: &Path) -> Result<Self, String> {
        for f in FILES {
            if !dir.join(f).is_file() {
                return Err(format!(
                    "the local model is not installed: {} is missing",
                    dir.join(f).display()
                ));
            }
        }
        let config: Config =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).map_err(err)?)
                .map_err(|e| format!("{}: {e}", dir.join("config.json").display()))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(err)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(err)?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        // SAFETY: the weights file is mapped read-only and not modified while in use.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DTYPE,
                &Device::Cpu,
            )
        }
        .map_err(err)?;
        let model = BertModel::load(vb, &config).map_err(err)?;
        Ok(LocalModel {
            model,
            tokenizer,
            pass: Mutex::new(()),
        })
    }

    /// The model in `dir`, loaded on first use and shared by every vectorizer.
    pub fn shared(dir: &Path) -> Result<Arc<LocalModel>, String> {
        static MODELS: OnceLock<Mutex<HashMap<PathBuf, Arc<LocalModel>>>> = OnceLock::new();
        let mut models = MODELS.get_or_init(Default::default).lock().map_err(err)?;
        if let Some(m) = models.get(dir) {
            return Ok(Arc::clone(m));
        }
        let model = Arc::new(LocalModel::load(dir)?);
        models.insert(dir.to_path_buf(), Arc::clone(&model));
        Ok(model)
    }

    /// The inputs' positions from the fewest tokens to the most (as the model reads
    /// them: truncated; one input alone is not padded).
    pub fn by_tokens(&self, inputs: &[String]) -> Vec<usize> {
        let tokens: Vec<usize> = (inputs.iter())
            .map(|text| {
                (self.tokenizer.encode_fast(text.as_str(), true)).map_or(text.len(), |e| e.len())
            })
            .collect();
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| tokens[i]);
        order
    }

    /// L2-normalised sentence embeddings, one per input.
    pub fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, String> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let _pass = self.pass.lock().map_err(err)?;
        let encodings = self
            .tokenizer
            .encode_batch(inputs.to_vec(), true)
            .map_err(err)?;
        let device = Device::Cpu;
        let column = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, String> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &device))
                .collect::<candle_core::Result<Vec<_>>>()
                .map_err(err)?;
            Tensor::stack(&rows, 0).map_err(err)
        };
        let ids = column(&|e| e.get_ids())?;
        let mask = column(&|e| e.get_attention_mask())?;
        let types = ids.zeros_like().map_err(err)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(err)?;
        // Mean over the tokens the mask keeps, then unit length.
        let mask = mask
            .to_dtype(DType::F32)
            .and_then(|m| m.unsqueeze(2))
            .map_err(err)?;
        let summed = hidden
            .broadcast_mul(&mask)
            .and_then(|t| t.sum(1))
            .map_err(err)?;
        let counts = mask.sum(1).map_err(err)?;
        let mean = summed.broadcast_div(&counts).map_err(err)?;
        let norms = mean
            .sqr()
            .and_then(|t| t.sum_keepdim(1))
            .and_then(|t| t.sqrt())
            .map_err(err)?;
        mean.broadcast_div(&norms)
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(err)
    }
}

/// The local model as an embedding provider.
pub struct Local {
    pub model: Arc<LocalModel>,
}

impl Provider for Local {
    /// Small batches: as fast as 32 on a CPU (less padding) with a quarter of the
    /// activations in memory.
    fn max_inputs(&self) -> usize {
        8
    }
    fn max_tokens(&self) -> usize {
        usize::MAX
    }
    fn concurrent_requests(&self) -> usize {
        1
    }
    /// Inputs of like length together: a request is padded to its longest input, so
    /// a batch in token order pads little (measured in bench/RESULTS.md).
    fn order(&self, inputs: &[String]) -> Option<Vec<usize>> {
        Some(self.model.by_tokens(inputs))
    }
    fn request<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
        let model = Arc::clone(&self.model);
        let inputs = inputs.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || model.embed(&inputs))
                .await
                .map_err(|e| RequestError::Fatal(format!("the local model failed: {e}")))?
                .map_err(|e| RequestError::Fatal(format!("the local model failed: {e}")))
        })
    }
}
