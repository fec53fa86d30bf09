//! `embedding_local`: the sentence-transformers model all-MiniLM-L6-v2 run in-process
//! by ONNX Runtime, on inputs truncated at the model's 256 tokens. The graph
//! (`model.onnx`, written by `scripts/model_graph.py` from the model's own weights) is
//! a BERT encoder followed by mean pooling over the attention mask and L2
//! normalisation. ONNX Runtime's library is loaded when a model is first needed; a
//! model is loaded once per process and shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures::future::BoxFuture;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::embedding::{Provider, RequestError};
use crate::signals;

/// The model's input limit, as sentence-transformers sets it (`max_seq_length`).
pub const MAX_TOKENS: usize = 256;

/// The files a model directory must hold.
pub const FILES: &[&str] = &["tokenizer.json", "model.onnx"];

/// ONNX Runtime's library, under the server's library directory (`pg_config --pkglibdir`).
pub const RUNTIME_LIBRARY: &str = "ai_loader/libonnxruntime.so";

/// How the local model runs in this process.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// ONNX Runtime's library.
    pub library: PathBuf,
    /// Threads a forward pass may use (`ai_loader.model_threads`).
    pub threads: usize,
}

pub struct LocalModel {
    /// One forward pass at a time: its threads are capped anyway, and each pass holds
    /// its batch's activations.
    session: Mutex<Session>,
    tokenizer: Tokenizer,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The model's session on ONNX Runtime. Its threads wait rather than spin between
/// passes: they share the cores with the database's queries.
fn session(dir: &Path, runtime: &Runtime) -> Result<Session, String> {
    let environment = environment(&runtime.library)?;
    Session::builder(&environment)
        .map_err(err)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(err)?
        .with_intra_threads(runtime.threads.max(1))
        .map_err(err)?
        .with_inter_threads(1)
        .map_err(err)?
        .with_intra_op_spinning(false)
        .map_err(err)?
        .commit_from_file(dir.join("model.onnx"))
        .map_err(|e| format!("{}: {e}", dir.join("model.onnx").display()))
}

/// ONNX Runtime, loaded once per process (a failure is not remembered: installing the
/// library lets the next use succeed).
fn environment(library: &Path) -> Result<Environment, String> {
    static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);
    let mut environment = ENVIRONMENT.lock().map_err(err)?;
    if environment.is_none() {
        if !library.is_file() {
            return Err(format!(
                "the local model's runtime is not installed: {} is missing",
                library.display()
            ));
        }
        let built = ort::init_from(library)
            .map_err(err)?
            .with_name("ai_loader")
            .with_telemetry(false)
            .build()
            .map_err(err)?;
        *environment = Some(built);
    }
    environment
        .clone()
        .ok_or_else(|| "ONNX Runtime did not start".into())
}

impl LocalModel {
    pub fn load(dir: &Path, runtime: &Runtime) -> Result<Self, String> {
        for f in FILES {
            if !dir.join(f).is_file() {
                return Err(format!(
                    "the local model is not installed: {} is missing",
                    dir.join(f).display()
                ));
            }
        }
        // The runtime's threads start with the session: they take no signal.
        let session = signals::blocked_while(|| session(dir, runtime))?;
        // The tokenizer works in the calling thread: a batch is a few short inputs, and
        // its thread pool would start threads of its own wherever it is first used.
        tokenizers::utils::parallelism::set_parallelism(false);
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
        Ok(LocalModel {
            session: Mutex::new(session),
            tokenizer,
        })
    }

    /// The model in `dir`, loaded on first use and shared by every vectorizer.
    pub fn shared(dir: &Path, runtime: &Runtime) -> Result<Arc<LocalModel>, String> {
        static MODELS: OnceLock<Mutex<HashMap<PathBuf, Arc<LocalModel>>>> = OnceLock::new();
        let mut models = MODELS.get_or_init(Default::default).lock().map_err(err)?;
        if let Some(m) = models.get(dir) {
            return Ok(Arc::clone(m));
        }
        let model = Arc::new(LocalModel::load(dir, runtime)?);
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
        let encodings = (self.tokenizer)
            .encode_batch(inputs.to_vec(), true)
            .map_err(err)?;
        // Padded to the batch's longest input: every row has the same width.
        let shape = [encodings.len(), encodings[0].len()];
        let column = |field: fn(&Encoding) -> &[u32]| -> Result<Tensor<i64>, String> {
            let values = (encodings.iter())
                .flat_map(|e| field(e).iter().map(|&v| i64::from(v)))
                .collect::<Vec<i64>>();
            Tensor::from_array((shape, values)).map_err(err)
        };
        let ids = column(Encoding::get_ids)?;
        let mask = column(Encoding::get_attention_mask)?;
        let mut session = self.session.lock().map_err(err)?;
        let outputs = session
            .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
            .map_err(err)?;
        let (dims, values) = outputs["sentence_embedding"]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        match dims[..] {
            [rows, width] if rows as usize == inputs.len() && width > 0 => {
                Ok(values.chunks(width as usize).map(<[f32]>::to_vec).collect())
            }
            _ => Err(format!("the model answered a tensor of shape {dims:?}")),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(library: &str) -> Runtime {
        Runtime {
            library: library.into(),
            threads: 1,
        }
    }

    /// A model directory holding the files a model needs (empty: nothing reads them
    /// before the checks tested here).
    fn model_dir(name: &str, files: &[&str]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ai_loader_local_{name}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        dir
    }

    #[test]
    fn a_missing_model_file_is_named() {
        let dir = model_dir("no_graph", &["tokenizer.json"]);
        let error = LocalModel::load(&dir, &runtime("/nonexistent/libonnxruntime.so"))
            .err()
            .unwrap();
        assert_eq!(
            error,
            format!(
                "the local model is not installed: {} is missing",
                dir.join("model.onnx").display()
            )
        );
    }

    #[test]
    fn a_missing_runtime_is_named() {
        let dir = model_dir("no_runtime", FILES);
        let error = LocalModel::load(&dir, &runtime("/nonexistent/libonnxruntime.so"))
            .err()
            .unwrap();
        assert_eq!(
            error,
            "the local model's runtime is not installed: /nonexistent/libonnxruntime.so is missing"
        );
    }
}
