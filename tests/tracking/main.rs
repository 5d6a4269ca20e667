//! The tracker: API, CLI, reliability, MLflow compatibility and the REST server.
//! One test binary per layer, so that a test build links a few binaries rather than one per file.
//!
//!   cargo test --test tracking                # all of them
//!   cargo test --test tracking tracking_api:: # one file

#[allow(dead_code)]
#[path = "../../examples/mlflow_fixture.rs"]
mod fixture;
#[path = "../study_util/mod.rs"]
mod study_util;
#[path = "../tracking_rest_util/mod.rs"]
mod tracking_rest_util;

mod mlflow_compat;
mod tracking_api;
mod tracking_cli;
mod tracking_experiment_kind;
mod tracking_reliability;
mod tracking_rest;
mod tracking_rest_outage;
mod tracking_upgraded;
