//! The library's integration tests that need no process of their own, in one binary so that
//! the engine's generic code is compiled for them once.

mod cells;
mod composition;
mod custom_cell;
mod docs_equations;
mod lstm_gru;
mod pytorch_golden;
