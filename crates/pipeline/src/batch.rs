//! One batch of a vectorizer's queue through the pipeline: each item's document is
//! parsed, chunked and formatted on blocking threads, at most `concurrency` at a time;
//! then all the batch's chunks are embedded together, in requests sized to the
//! provider. Every item ends with its chunks or with the step that failed it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ai_loader_config::chunking::Chunking;
use ai_loader_config::formatting::Formatting;
use ai_loader_config::parsing::Parsing;
use tokio::sync::Semaphore;

use futures::future::BoxFuture;

use crate::embedding::{embed_all, BatchError, Provider};
use crate::parsing::{parse, Document};
use crate::{chunking, formatting};

/// The pipeline step an item failed at, as `failure_step` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Loading,
    Parsing,
    Embedding,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Loading => "loading",
            Step::Parsing => "parsing",
            Step::Embedding => "embedding",
        })
    }
}

/// Where an item's document is: already read from the row, or behind a URI.
#[derive(Debug, Clone)]
pub enum Source {
    Inline(Document),
    Uri(String),
}

/// Fetches the documents that URIs name (`loading_uri`).
pub trait Loader: Send + Sync {
    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<Document, String>>;
}

/// A queued row, as the worker read it from the source.
#[derive(Debug, Clone)]
pub struct Item {
    pub source: Source,
    /// The source row's columns the template names, in their text form.
    pub columns: HashMap<String, Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub seq: i32,
    pub text: String,
    pub embedding: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Embedded(Vec<Chunk>),
    Failed { step: Step, message: String },
}

/// What a vectorizer does with each item.
pub struct Pipeline {
    pub parsing: Parsing,
    pub chunking: Chunking,
    pub formatting: Formatting,
    pub dimensions: usize,
    pub concurrency: usize,
    pub provider: Arc<dyn Provider>,
    /// For `Source::Uri` items; without one they fail at loading.
    pub loader: Option<Arc<dyn Loader>>,
}

struct Prepared {
    chunks: Vec<String>,
    inputs: Vec<String>,
}

async fn load(pipeline: &Pipeline, source: Source) -> Result<Document, (Step, String)> {
    match source {
        Source::Inline(document) => Ok(document),
        Source::Uri(uri) => match &pipeline.loader {
            Some(loader) => loader.load(&uri).await.map_err(|e| (Step::Loading, e)),
            None => Err((Step::Loading, format!("no loader for \"{uri}\""))),
        },
    }
}

fn prepare(
    pipeline: &Pipeline,
    document: &Document,
    columns: &HashMap<String, Option<String>>,
) -> Result<Prepared, (Step, String)> {
    let text = parse(pipeline.parsing, document).map_err(|e| (Step::Parsing, e))?;
    let chunks = chunking::split(&pipeline.chunking, &text);
    let inputs = chunks
        .iter()
        .map(|chunk| {
            formatting::render(&pipeline.formatting, chunk, |c| {
                columns.get(c).cloned().flatten()
            })
        })
        .collect();
    Ok(Prepared { chunks, inputs })
}

impl Pipeline {
    /// Runs the batch. `Err` means nothing of it may be consumed (the provider is down
    /// or misconfigured); otherwise there is one outcome per item, in order.
    pub async fn run(self: Arc<Self>, items: Vec<Item>) -> Result<Vec<Outcome>, BatchError> {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let tasks: Vec<_> = items
            .into_iter()
            .map(|item| {
                let pipeline = Arc::clone(&self);
                let permits = Arc::clone(&permits);
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("semaphore open");
                    let document = load(&pipeline, item.source).await?;
                    let columns = item.columns;
                    tokio::task::spawn_blocking(move || prepare(&pipeline, &document, &columns))
                        .await
                        .unwrap_or_else(|e| Err((Step::Parsing, format!("the parser failed: {e}"))))
                })
            })
            .collect();
        let mut prepared = Vec::with_capacity(tasks.len());
        for task in tasks {
            prepared.push(
                task.await
                    .unwrap_or_else(|e| Err((Step::Parsing, format!("the parser failed: {e}")))),
            );
        }

        let inputs: Vec<String> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .flat_map(|p| p.inputs.iter().cloned())
            .collect();
        let mut vectors = embed_all(self.provider.as_ref(), self.dimensions, &inputs)
            .await?
            .into_iter();

        Ok(prepared
            .into_iter()
            .map(|p| match p {
                Err((step, message)) => Outcome::Failed { step, message },
                Ok(p) => {
                    let results: Vec<_> = vectors.by_ref().take(p.chunks.len()).collect();
                    match results.iter().position(Result::is_err) {
                        Some(i) => Outcome::Failed {
                            step: Step::Embedding,
                            message: format!(
                                "chunk {i}: {}",
                                results[i].clone().err().unwrap_or_default()
                            ),
                        },
                        None => Outcome::Embedded(
                            p.chunks
                                .into_iter()
                                .zip(results.into_iter().flatten())
                                .enumerate()
                                .map(|(seq, (text, embedding))| Chunk {
                                    seq: seq as i32,
                                    text,
                                    embedding,
                                })
                                .collect(),
                        ),
                    }
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::RequestError;

    /// Embeds each input as [its length, 1], and rejects inputs containing "poison".
    struct Lengths;

    impl Provider for Lengths {
        fn max_inputs(&self) -> usize {
            3
        }
        fn max_tokens(&self) -> usize {
            10_000
        }
        fn request<'a>(
            &'a self,
            inputs: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
            Box::pin(async move {
                if inputs.iter().any(|i| i.contains("poison")) {
                    return Err(RequestError::Rejected("HTTP 400: rejected".into()));
                }
                Ok(inputs.iter().map(|i| vec![i.len() as f32, 1.0]).collect())
            })
        }
    }

    fn item(text: &str, title: &str, bytes: bool) -> Item {
        Item {
            source: Source::Inline(Document {
                bytes: text.as_bytes().to_vec(),
                name: None,
                is_text: !bytes,
            }),
            columns: HashMap::from([("title".to_string(), Some(title.to_string()))]),
        }
    }

    #[test]
    fn each_item_ends_embedded_or_failed() {
        let pipeline = Arc::new(Pipeline {
            parsing: Parsing::Auto,
            chunking: Chunking::CharacterTextSplitter {
                chunk_size: 5,
                chunk_overlap: 0,
                separator: " ".into(),
                is_separator_regex: false,
            },
            formatting: Formatting::PythonTemplate {
                template: "$title: $chunk".into(),
            },
            dimensions: 2,
            concurrency: 2,
            provider: Arc::new(Lengths),
            loader: None,
        });
        let items = vec![
            item("aaa bbb", "A", false),
            item("x poison", "B", false),
            item("", "C", false),
            Item {
                source: Source::Inline(Document {
                    bytes: b"\xff\xfe\x00".to_vec(),
                    name: None,
                    is_text: false,
                }),
                columns: HashMap::new(),
            },
            Item {
                source: Source::Uri("s3://bucket/key.md".into()),
                columns: HashMap::new(),
            },
            item("ccc", "D", true),
        ];
        let rt = tokio::runtime::Runtime::new().unwrap();
        let out = rt.block_on(Arc::clone(&pipeline).run(items)).unwrap();
        assert_eq!(
            out[0],
            Outcome::Embedded(vec![
                Chunk {
                    seq: 0,
                    text: "aaa".into(),
                    embedding: vec![6.0, 1.0]
                },
                Chunk {
                    seq: 1,
                    text: "bbb".into(),
                    embedding: vec![6.0, 1.0]
                },
            ])
        );
        assert_eq!(
            out[1],
            Outcome::Failed {
                step: Step::Embedding,
                message: "chunk 1: HTTP 400: rejected".into()
            }
        );
        assert_eq!(out[2], Outcome::Embedded(vec![]));
        assert!(
            matches!(&out[3], Outcome::Failed { step: Step::Parsing, message } if message.contains("UTF-16"))
        );
        assert_eq!(
            out[4],
            Outcome::Failed {
                step: Step::Loading,
                message: "no loader for \"s3://bucket/key.md\"".into()
            }
        );
        assert_eq!(
            out[5],
            Outcome::Embedded(vec![Chunk {
                seq: 0,
                text: "ccc".into(),
                embedding: vec![6.0, 1.0]
            }])
        );
    }
}
