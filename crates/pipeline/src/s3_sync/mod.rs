//! An S3 sync's network side: listing a prefix, receiving and deleting the event
//! notifications of its SQS queue, and reading those events.

pub mod events;
pub mod list;
pub mod sqs;
