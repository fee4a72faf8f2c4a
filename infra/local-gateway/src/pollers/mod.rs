//! The event source mappings of `template.yaml`, emulated: Lambda's pollers, which read a
//! queue or a table's stream and invoke a function with what they read, run here in the
//! gateway's process, one module per kind of source.
//!
//! - `sqs` drains a queue into its function (`deliver`, `alerter`): receive loops that
//!   hand each batch to an invocation of its own, at most `MaximumConcurrency` at once;
//! - `dynamodb_stream` reads a table's stream into its function (`fanout`): shard by shard,
//!   filtered, batched and checkpointed.
//!
//! Both stop when the gateway's stop signal turns true, and count each invocation on the
//! gateway's `Meter`.

pub mod dynamodb_stream;
pub mod sqs;

/// A mapping the stack describes without `enabled` is enabled, as on Lambda.
pub(crate) fn enabled() -> bool {
    true
}
