//! The SQS queue a bucket's event notifications feed: long-polled, and a message
//! deleted only once what it said is committed.

use std::time::Duration;

use ai_loader_core::s3_sync::queue_region;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::MessageSystemAttributeName;

use super::list::who;
use crate::loading::s3::S3;
use crate::loading::scrub;

/// A message received: its body, the handle that deletes it, and how many times it has
/// been received (this time included).
#[derive(Debug, Clone)]
pub struct Message {
    pub body: String,
    pub receipt: String,
    pub receives: u32,
}

/// A queue, with the sync's credentials.
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
    role: Option<String>,
}

/// The longest SQS lets a receive wait for a message.
pub const LONG_POLL_SECONDS: i32 = 20;
/// The most messages one receive returns.
pub const MAX_MESSAGES: i32 = 10;

impl Queue {
    /// The queue at `url`; `timeout` is the server's request timeout, to which a long
    /// poll's wait is added.
    pub fn new(s3: &S3, url: &str, timeout: Duration) -> Queue {
        let attempt = timeout + Duration::from_secs(LONG_POLL_SECONDS as u64);
        Queue::from_client(s3.sqs(queue_region(url), attempt), url, s3.role())
    }

    /// The queue at `url`, through `client`, whose credentials are `role`'s.
    pub fn from_client(client: aws_sdk_sqs::Client, url: &str, role: Option<&str>) -> Queue {
        Queue {
            client,
            url: url.to_string(),
            role: role.map(str::to_string),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits up to `wait_seconds` for messages (at most ten).
    pub async fn receive(&self, wait_seconds: i32) -> Result<Vec<Message>, String> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(MAX_MESSAGES)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.explain(&e, "sqs:ReceiveMessage", "receiving from"))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Message {
                    body: m.body()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    receives: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1),
                })
            })
            .collect())
    }

    /// How many messages wait in the queue (SQS's approximate count); `None` when it
    /// cannot be had (it takes sqs:GetQueueAttributes, which a sync does not need).
    pub async fn pending(&self) -> Option<i64> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .ok()?;
        out.attributes()?
            .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)?
            .parse()
            .ok()
    }

    /// Deletes messages by their receipt handles (one request each, at once: a batch
    /// delete is another action for some servers' policies).
    pub async fn delete(&self, receipts: &[String]) -> Result<(), String> {
        let deletes = receipts.iter().map(|r| {
            self.client
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(r)
                .send()
        });
        for result in futures::future::join_all(deletes).await {
            result.map_err(|e| self.explain(&e, "sqs:DeleteMessage", "deleting messages from"))?;
        }
        Ok(())
    }

    /// `arn:aws:sqs:<region>:<account>:<name>`, as an IAM policy names the queue.
    fn arn(&self) -> String {
        let mut parts = self.url.rsplit('/');
        let name = parts.next().unwrap_or_default();
        let account = parts.next().unwrap_or_default();
        let region = queue_region(&self.url)
            .or_else(|| self.client.config().region().map(|r| r.to_string()))
            .unwrap_or_else(|| "<region>".into());
        format!("arn:aws:sqs:{region}:{account}:{name}")
    }

    /// What went wrong, naming the permission a denial is about and the queue's ARN.
    pub fn explain<E>(&self, e: &SdkError<E, HttpResponse>, permission: &str, doing: &str) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let url = &self.url;
        let message = match e {
            SdkError::ServiceError(s) => {
                let status = s.raw().status().as_u16();
                let code = match s.err().code() {
                    Some(code) => code.to_string(),
                    None if status == 403 => "AccessDenied".to_string(),
                    None => format!("HTTP {status}"),
                };
                if code.contains("AccessDenied") || code == "Forbidden" {
                    format!(
                        "access denied {doing} the queue {url} ({code}): {} needs {permission} on {}",
                        who(self.role.as_deref()),
                        self.arn()
                    )
                } else if code.contains("NonExistentQueue") || code == "QueueDoesNotExist" {
                    format!("the queue {url} does not exist ({code}): check sqs_queue_url and the region")
                } else {
                    format!(
                        "{doing} the queue {url} failed ({code}): {}",
                        s.err().message().unwrap_or_default()
                    )
                }
            }
            _ => format!("{doing} the queue {url} failed: {}", DisplayErrorContext(e)),
        };
        scrub(&message)
    }
}
