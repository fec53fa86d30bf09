//! One batch of a vectorizer's queue through the pipeline: each item's document is
//! parsed, chunked and formatted on blocking threads, at most `concurrency` at a time;
//! then all the batch's chunks are embedded together, in requests sized to the
//! provider. Every item ends with its chunks or with the step that failed it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ai_loader_core::chunking::Chunking;
use ai_loader_core::formatting::Formatting;
use ai_loader_core::parsing::Parsing;
use tokio::sync::Semaphore;

use futures::future::BoxFuture;

use crate::embedding::{embed_all, BatchError, Embedded, Provider};
use crate::isolate::Limits;
use crate::isolate::ParseError;
use crate::loading::{LoadError, Loaded};
use crate::parsing::{parse, Document};
use crate::{chunking, formatting};

/// The pipeline step an item failed at, as `failure_step` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Loading,
    Parsing,
    Chunking,
    Embedding,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Loading => "loading",
            Step::Parsing => "parsing",
            Step::Chunking => "chunking",
            Step::Embedding => "embedding",
        })
    }
}

/// Where an item's document is: already read from the row, or behind a URI (with the
/// ETag of the object as last embedded, if known).
#[derive(Debug, Clone)]
pub enum Source {
    Inline(Document),
    Uri { uri: String, etag: Option<String> },
}

/// Fetches the documents that URIs name (`loading_uri`).
pub trait Loader: Send + Sync {
    fn load<'a>(
        &'a self,
        uri: &'a str,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Loaded, LoadError>>;
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
    /// The page most of it is on, in a document that has pages (a PDF).
    pub page: Option<i32>,
    pub embedding: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The chunks to store, and the ETag of the object they came from.
    Embedded {
        chunks: Vec<Chunk>,
        etag: Option<String>,
    },
    /// The object has not changed since it was embedded: keep the store as it is.
    Unchanged,
    /// `lasting`: the document's own doing, which the same bytes would do again (a
    /// parser's or chunker's verdict on them), so not retried.
    Failed {
        step: Step,
        message: String,
        lasting: bool,
    },
}

/// What a vectorizer does with each item.
pub struct Pipeline {
    pub parsing: Parsing,
    pub chunking: Chunking,
    pub formatting: Formatting,
    pub dimensions: usize,
    /// Documents loaded and prepared at once, across every batch in flight
    /// (`processing_default(concurrency)`).
    pub loading_slots: Arc<Semaphore>,
    /// Embedding requests at once, across every batch in flight (the same setting).
    pub request_slots: Arc<Semaphore>,
    /// What parsing one document may use.
    pub limits: Limits,
    /// The largest document read from a row (`ai_loader.max_object_bytes`); a URI's is
    /// bounded by its loader, before it is read.
    pub max_document_bytes: u64,
    pub provider: Arc<dyn Provider>,
    /// For `Source::Uri` items; without one they fail at loading.
    pub loader: Option<Arc<dyn Loader>>,
}

struct Prepared {
    chunks: Vec<String>,
    pages: Vec<Option<i32>>,
    inputs: Vec<String>,
    etag: Option<String>,
}

/// How an item left the first stage (loading, parsing, chunking, formatting).
enum Stage {
    Ready(Prepared),
    Unchanged,
    /// `outage`: the document store could not be reached; `lasting` as in
    /// [`Outcome::Failed`].
    Failed {
        step: Step,
        message: String,
        outage: bool,
        lasting: bool,
    },
}

async fn load(
    pipeline: &Pipeline,
    source: Source,
) -> Result<Option<(Document, Option<String>)>, Stage> {
    match source {
        Source::Inline(document) if document.bytes.len() as u64 > pipeline.max_document_bytes => {
            Err(Stage::Failed {
                step: Step::Loading,
                message: format!(
                    "the document ({} bytes) is larger than ai_loader.max_object_bytes ({} bytes)",
                    document.bytes.len(),
                    pipeline.max_document_bytes
                ),
                outage: false,
                lasting: false,
            })
        }
        Source::Inline(document) => Ok(Some((document, None))),
        Source::Uri { uri, etag } => {
            let Some(loader) = &pipeline.loader else {
                return Err(Stage::Failed {
                    step: Step::Loading,
                    message: format!("no loader for \"{uri}\""),
                    outage: false,
                    lasting: false,
                });
            };
            match loader.load(&uri, etag.as_deref()).await {
                Ok(Loaded::Document { document, etag }) => Ok(Some((document, etag))),
                Ok(Loaded::Unchanged) => Ok(None),
                Err(e) => Err(Stage::Failed {
                    step: Step::Loading,
                    message: e.message,
                    outage: e.outage,
                    lasting: false,
                }),
            }
        }
    }
}

async fn stage(pipeline: Arc<Pipeline>, item: Item) -> Stage {
    use futures::FutureExt;
    let loaded = std::panic::AssertUnwindSafe(load(&pipeline, item.source))
        .catch_unwind()
        .await;
    let (document, etag) = match loaded {
        Ok(Ok(Some(loaded))) => loaded,
        Ok(Ok(None)) => return Stage::Unchanged,
        Ok(Err(stage)) => return stage,
        Err(_) => {
            return Stage::Failed {
                step: Step::Loading,
                message: "the loader failed unexpectedly (see the server log)".into(),
                outage: false,
                lasting: false,
            }
        }
    };
    let columns = item.columns;
    let prepared =
        tokio::task::spawn_blocking(move || prepare(&pipeline, &document, &columns)).await;
    match prepared {
        Ok(Ok((chunks, pages, inputs))) => Stage::Ready(Prepared {
            chunks,
            pages,
            inputs,
            etag,
        }),
        Ok(Err((step, e))) => Stage::Failed {
            step,
            message: e.message,
            outage: false,
            lasting: e.lasting,
        },
        Err(e) => Stage::Failed {
            step: Step::Parsing,
            message: format!("the parser failed: {e}"),
            outage: false,
            lasting: false,
        },
    }
}

/// An item's chunks, the page each is on, and the texts to embed.
type Chunked = (Vec<String>, Vec<Option<i32>>, Vec<String>);

fn prepare(
    pipeline: &Pipeline,
    document: &Document,
    columns: &HashMap<String, Option<String>>,
) -> Result<Chunked, (Step, ParseError)> {
    let parsed =
        parse(pipeline.parsing, document, &pipeline.limits).map_err(|e| (Step::Parsing, e))?;
    let budget = pipeline.limits.text.saturating_mul(3);
    let chunks = chunking::split(&pipeline.chunking, &parsed.text, budget)
        .map_err(|e| (Step::Chunking, ParseError::from(e)))?;
    let pages = chunking::pages(&parsed.text, &chunks, &parsed.page_ends);
    let inputs = chunks
        .iter()
        .map(|chunk| {
            formatting::render(&pipeline.formatting, chunk, |c| {
                columns.get(c).cloned().flatten()
            })
        })
        .collect();
    Ok((chunks, pages, inputs))
}

/// What the provider is asked to embed when a batch failed, to tell whose fault it was.
const PROBE: &str = "ai_loader";

impl Pipeline {
    /// Embeds `inputs` with the vectorizer's provider, its requests sharing the slots.
    async fn embed_all(&self, inputs: &[String]) -> Result<Embedded, BatchError> {
        embed_all(
            self.provider.as_ref(),
            self.dimensions,
            inputs,
            &self.request_slots,
        )
        .await
    }

    /// Embeds the batch's inputs. When the provider fails the batch, the fault is the
    /// provider's — nothing consumed, the batch waits — if it throttles (a
    /// `Retry-After`) or cannot embed a one-word probe either. Otherwise some inputs are
    /// the cause (one that makes the provider fail with 500 or answer nonsense): they
    /// are asked for again, by halves, and each that still fails fails alone, spending a
    /// retry of its row.
    async fn embed(&self, inputs: &[String]) -> Result<Embedded, BatchError> {
        let e = match self.embed_all(inputs).await {
            Ok(vectors) => return Ok(vectors),
            Err(e) => e,
        };
        if e.retry_after.is_some() {
            return Err(e);
        }
        let probe = self.embed_all(&[PROBE.to_string()]).await;
        if !matches!(probe.as_deref(), Ok([Ok(_)])) {
            return Err(e);
        }
        Ok(self.again(inputs).await)
    }

    /// Inputs that failed together, asked for again (the failure may have passed); a
    /// set that fails again is halved, until each failing input stands alone.
    fn again<'a>(&'a self, inputs: &'a [String]) -> BoxFuture<'a, Embedded> {
        Box::pin(async move {
            let e = match self.embed_all(inputs).await {
                Ok(vectors) => return vectors,
                Err(e) => e,
            };
            if inputs.len() <= 1 {
                let message = format!("{} (the provider embeds other inputs)", e.message);
                return inputs.iter().map(|_| Err(message.clone())).collect();
            }
            let (left, right) = inputs.split_at(inputs.len() / 2);
            let mut out = self.again(left).await;
            out.extend(self.again(right).await);
            out
        })
    }

    /// Runs the batch. `Err` means nothing of it may be consumed (the provider is down
    /// or misconfigured); otherwise there is one outcome per item, in order.
    pub async fn run(self: Arc<Self>, items: Vec<Item>) -> Result<Vec<Outcome>, BatchError> {
        let uris = items
            .iter()
            .filter(|i| matches!(i.source, Source::Uri { .. }))
            .count();
        let tasks: Vec<_> = items
            .into_iter()
            .map(|item| {
                let pipeline = Arc::clone(&self);
                tokio::spawn(async move {
                    let _permit = Arc::clone(&pipeline.loading_slots)
                        .acquire_owned()
                        .await
                        .expect("semaphore open");
                    stage(pipeline, item).await
                })
            })
            .collect();
        let mut staged = Vec::with_capacity(tasks.len());
        for task in tasks {
            staged.push(task.await.unwrap_or_else(|e| Stage::Failed {
                step: Step::Parsing,
                message: format!("the parser failed: {e}"),
                outage: false,
                lasting: false,
            }));
        }

        // When the store is down for every document, the batch waits rather than
        // spending the documents' retries.
        let outages: Vec<&str> = staged
            .iter()
            .filter_map(|s| match s {
                Stage::Failed {
                    message,
                    outage: true,
                    ..
                } => Some(message.as_str()),
                _ => None,
            })
            .collect();
        if uris > 0 && outages.len() == uris {
            return Err(BatchError {
                message: outages[0].to_string(),
                retry_after: None,
            });
        }

        let inputs: Vec<String> = staged
            .iter()
            .filter_map(|s| match s {
                Stage::Ready(p) => Some(p.inputs.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut vectors = self.embed(&inputs).await?.into_iter();

        Ok(staged
            .into_iter()
            .map(|s| match s {
                Stage::Failed {
                    step,
                    message,
                    lasting,
                    ..
                } => Outcome::Failed {
                    step,
                    message,
                    lasting,
                },
                Stage::Unchanged => Outcome::Unchanged,
                Stage::Ready(p) => {
                    let results: Vec<_> = vectors.by_ref().take(p.chunks.len()).collect();
                    match results.iter().position(Result::is_err) {
                        Some(i) => Outcome::Failed {
                            step: Step::Embedding,
                            message: format!(
                                "chunk {i}: {}",
                                results[i].clone().err().unwrap_or_default()
                            ),
                            lasting: false,
                        },
                        None => Outcome::Embedded {
                            chunks: (p.chunks.into_iter().zip(p.pages))
                                .zip(results.into_iter().flatten())
                                .enumerate()
                                .map(|(seq, ((text, page), embedding))| Chunk {
                                    seq: seq as i32,
                                    text,
                                    page,
                                    embedding,
                                })
                                .collect(),
                            etag: p.etag,
                        },
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

    /// Embeds each input as [its length, 1]; rejects (400) inputs containing "poison";
    /// fails (as a 500 would) every request holding an input with "crash", or all of
    /// them when `down`.
    struct Fake {
        max_inputs: usize,
        down: bool,
    }

    const LENGTHS: Fake = Fake {
        max_inputs: 3,
        down: false,
    };

    impl Provider for Fake {
        fn max_inputs(&self) -> usize {
            self.max_inputs
        }
        fn max_tokens(&self) -> usize {
            10_000
        }
        fn request<'a>(
            &'a self,
            inputs: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, RequestError>> {
            Box::pin(async move {
                if self.down || inputs.iter().any(|i| i.contains("crash")) {
                    return Err(RequestError::Fatal(
                        "the provider's response is not the expected JSON".into(),
                    ));
                }
                if inputs.iter().any(|i| i.contains("poison")) {
                    return Err(RequestError::Rejected("HTTP 400: rejected".into()));
                }
                Ok(inputs.iter().map(|i| vec![i.len() as f32, 1.0]).collect())
            })
        }
    }

    #[test]
    fn a_failing_batch_is_the_inputs_fault_only_when_the_provider_works() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let run = |down: bool| {
            let mut pipeline = pipeline();
            pipeline.provider = Arc::new(Fake {
                max_inputs: 100,
                down,
            });
            let items = ["fine", "a crash", "also fine"]
                .map(|t| item(t, "T", false))
                .to_vec();
            rt.block_on(Arc::new(pipeline).run(items))
        };
        let out = run(false).unwrap();
        assert!(matches!(&out[0], Outcome::Embedded { .. }));
        assert_eq!(
            out[1],
            Outcome::Failed {
                step: Step::Embedding,
                message: "chunk 1: the provider's response is not the expected JSON (the provider embeds other inputs)".into(),
                lasting: false,
            }
        );
        assert!(matches!(&out[2], Outcome::Embedded { .. }));
        // Nothing works: the provider's fault, the batch is not consumed.
        assert_eq!(
            run(true).unwrap_err().message,
            "the provider's response is not the expected JSON"
        );
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

    fn pipeline() -> Pipeline {
        Pipeline {
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
            loading_slots: Arc::new(Semaphore::new(2)),
            request_slots: Arc::new(Semaphore::new(2)),
            limits: crate::isolate::Limits {
                memory: 256 << 20,
                time: std::time::Duration::from_secs(10),
                text: 1 << 20,
                program: std::path::Path::new("/nonexistent/ai_loader_parse"),
                pdfium: std::path::Path::new("/nonexistent/libpdfium.so"),
                parsers: 2,
            },
            provider: Arc::new(LENGTHS),
            max_document_bytes: 1 << 20,
            loader: None,
        }
    }

    #[test]
    fn each_item_ends_embedded_or_failed() {
        let pipeline = Arc::new(pipeline());
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
                source: Source::Uri {
                    uri: "s3://bucket/key.md".into(),
                    etag: None,
                },
                columns: HashMap::new(),
            },
            item("ccc", "D", true),
            item(&"big ".repeat(300_000), "E", false),
        ];
        let rt = tokio::runtime::Runtime::new().unwrap();
        let out = rt.block_on(Arc::clone(&pipeline).run(items)).unwrap();
        assert_eq!(
            out[0],
            Outcome::Embedded {
                chunks: vec![
                    Chunk {
                        seq: 0,
                        text: "aaa".into(),
                        page: None,
                        embedding: vec![6.0, 1.0]
                    },
                    Chunk {
                        seq: 1,
                        text: "bbb".into(),
                        page: None,
                        embedding: vec![6.0, 1.0]
                    },
                ],
                etag: None
            }
        );
        assert_eq!(
            out[1],
            Outcome::Failed {
                step: Step::Embedding,
                message: "chunk 1: HTTP 400: rejected".into(),
                lasting: false,
            }
        );
        assert_eq!(
            out[2],
            Outcome::Embedded {
                chunks: vec![],
                etag: None
            }
        );
        assert!(
            matches!(&out[3], Outcome::Failed { step: Step::Parsing, message, lasting: true } if message.contains("UTF-16"))
        );
        assert_eq!(
            out[4],
            Outcome::Failed {
                step: Step::Loading,
                message: "no loader for \"s3://bucket/key.md\"".into(),
                lasting: false,
            }
        );
        assert_eq!(
            out[5],
            Outcome::Embedded {
                chunks: vec![Chunk {
                    seq: 0,
                    text: "ccc".into(),
                    page: None,
                    embedding: vec![6.0, 1.0]
                }],
                etag: None
            }
        );
        // A row's document past the bound fails at loading, in its place: one outcome
        // per item, in order.
        assert_eq!(
            out[6],
            Outcome::Failed {
                step: Step::Loading,
                message: "the document (1200000 bytes) is larger than ai_loader.max_object_bytes (1048576 bytes)"
                    .into(),
                lasting: false,
            }
        );
        assert_eq!(out.len(), 7);
    }
}
