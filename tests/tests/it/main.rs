//! Integration tests: one process, one moto server, one local gateway, many tests.
//! Event types are shared between tests, so every assertion filters by its own event id,
//! and `competition.ended` is subscribed to by no test at all.

mod admin;
mod admin_stories;
mod alerts;
mod bad_input;
mod circuit;
mod example_receivers;
mod ingest_batch;
mod ingest_signing;
mod lambda_binaries;
mod many_subscribers;
mod metering;
mod openapi;
mod pipeline;
mod races;
mod recover;
mod sdk_transport;
mod signing;
mod test_event;
