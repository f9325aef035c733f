//! End-to-end tests: one test binary, one local stack.
//!
//! Every module is one area of Pipewright, run against the same local stack (started on first
//! use by [`pipewright_e2e::stack`], stopped when the binary exits). Tests isolate themselves by
//! names of their own ([`pipewright_e2e::unique`]): pipelines, buckets, queues and rules are
//! never shared, and nothing resets the emulator. A watchdog fails the whole run at once, with
//! the emulator's thread stacks and log tail, if the emulator stops answering.

mod api_in_emulator;
mod approvals;
mod artifacts;
mod cli;
mod cloudformation;
mod codebuild;
mod codedeploy;
mod condition_rules;
mod console;
mod control_plane_clients;
mod doors;
mod ecs;
mod engine_adapters;
mod execution_modes;
mod failure_paths;
mod git_sources;
mod isolation;
mod lambda_invoke;
mod pipeline_runs;
mod polling;
mod published;
mod repo_sources;
mod sample_events;
mod step_functions;
mod triggers;
mod two_stacks;
