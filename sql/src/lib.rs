//! Tributary's streaming SQL engine for Kinesis Data Analytics (SQL) applications.
//!
//! A pure library: application code goes in, rows go in with their ROWTIME, rows come out of
//! in-application streams. No I/O and no wall clock: the host drives time, which makes window
//! results deterministic in tests and lets production use the wall clock.
//!
//! Layers: [`lexer`] and [`parser`] (text → [`ast`]), [`plan`] (names, types and windows resolved,
//! errors with positions), [`exec`] (the running application), [`format`] (record formats in and
//! out, schema discovery).

pub mod ast;
pub mod error;
pub mod eval;
pub mod exec;
pub mod format;
pub mod functions;
pub mod lexer;
pub mod logparse;
pub mod parser;
pub mod plan;
pub mod tablefn;
pub mod time;
pub mod value;

pub use error::{EngineError, EvalError, Pos, Span, SqlError, SqlErrorKind};
pub use exec::{Application, Row, StreamDef, StreamKind, ERROR_STREAM};
pub use plan::Column;
pub use value::{SqlType, Value};
