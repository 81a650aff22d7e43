//! Errors of the SQL engine.
//!
//! KDA's SQL front end is SQLstream, built on Apache Calcite, so its messages read like Calcite's:
//! `From line 3, column 8 to line 3, column 12: Column 'FOO' not found in any table`. We keep that
//! shape so that users who grep their old error logs find the same text.

use std::fmt;

/// A 1-based line and column in the application code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub fn new(line: u32, column: u32) -> Self {
        Pos { line, column }
    }
}

/// A range of the application code, start and end inclusive (as Calcite reports them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub fn new(start: Pos, end: Pos) -> Self {
        Span { start, end }
    }

    pub fn to(self, other: Span) -> Span {
        Span::new(self.start, other.end)
    }
}

/// Which stage rejected the application code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlErrorKind {
    /// The text is not SQL of the dialect: an unexpected token or an unterminated literal.
    Syntax,
    /// The SQL parses but names a stream, pump, column or function that does not exist.
    UnknownObject,
    /// Operand types do not fit an operator, function or target column.
    Type,
    /// The query is well typed but breaks a streaming rule, such as an aggregate without a
    /// ROWTIME-based GROUP BY or a non-grouped column in an aggregate query.
    Semantic,
}

/// An error found in application code when it is created: the engine never starts with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SqlError {
    pub kind: SqlErrorKind,
    pub message: String,
    pub span: Span,
}

impl SqlError {
    pub fn new(kind: SqlErrorKind, span: Span, message: impl Into<String>) -> Self {
        SqlError {
            kind,
            message: message.into(),
            span,
        }
    }

    pub fn syntax(span: Span, message: impl Into<String>) -> Self {
        Self::new(SqlErrorKind::Syntax, span, message)
    }

    pub fn unknown(span: Span, message: impl Into<String>) -> Self {
        Self::new(SqlErrorKind::UnknownObject, span, message)
    }

    pub fn typ(span: Span, message: impl Into<String>) -> Self {
        Self::new(SqlErrorKind::Type, span, message)
    }

    pub fn semantic(span: Span, message: impl Into<String>) -> Self {
        Self::new(SqlErrorKind::Semantic, span, message)
    }

    /// The position where the error starts.
    pub fn pos(&self) -> Pos {
        self.span.start
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            // Calcite's parser reports syntax errors with the message first.
            SqlErrorKind::Syntax => write!(f, "{}", self.message),
            _ => write!(
                f,
                "From line {}, column {} to line {}, column {}: {}",
                self.span.start.line,
                self.span.start.column,
                self.span.end.line,
                self.span.end.column,
                self.message
            ),
        }
    }
}

/// A failure while evaluating one row. The row goes to `error_stream`; the application keeps
/// running, as KDA does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// The `ERROR_NAME` column of `error_stream`.
    pub name: &'static str,
    /// The `MESSAGE` column of `error_stream`.
    pub message: String,
}

impl EvalError {
    pub fn new(name: &'static str, message: impl Into<String>) -> Self {
        EvalError {
            name,
            message: message.into(),
        }
    }

    pub fn division_by_zero() -> Self {
        // SQLstream raises SQL state 22012 with this text for both exact and approximate division.
        Self::new("Division_By_Zero", "Division by zero")
    }

    pub fn cast(message: impl Into<String>) -> Self {
        Self::new("Cast_Error", message)
    }

    pub fn overflow(message: impl Into<String>) -> Self {
        Self::new("Numeric_Overflow", message)
    }
}

/// Errors from engine calls made by the host (not from SQL or row data).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The named in-application stream does not exist.
    #[error("Stream '{0}' not found")]
    UnknownStream(String),
    /// A row was inserted with a different number of values than the stream has columns.
    #[error("Stream '{stream}' has {expected} columns but the row has {actual} values")]
    Arity {
        stream: String,
        expected: usize,
        actual: usize,
    },
    /// A reference-table row has a value that does not fit its column.
    #[error("Row {row} of reference table '{table}' does not fit its schema: {message}")]
    TableRow {
        table: String,
        row: usize,
        message: String,
    },
    /// Rows may only be inserted into input streams; the others are written by pumps.
    #[error("Stream '{0}' is written by the application and cannot take rows from outside")]
    NotAnInput(String),
}
