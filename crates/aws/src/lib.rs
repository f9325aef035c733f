//! Pipewright's adapters to AWS services. Each implements a trait that `pipewright-core` owns, so
//! the domain never sees an SDK type.

pub mod config;
pub mod logging;
pub mod pipeline_store;
