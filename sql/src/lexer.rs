//! Tokens of the KDA SQL dialect, each with its position for error messages.

use crate::error::{Pos, Span, SqlError};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier. Unquoted identifiers are upper-cased here, as standard SQL and KDA do;
    /// quoted ones keep their case, which is why they must match exactly later.
    Ident {
        name: String,
        quoted: bool,
    },
    Number(String),
    Str(String),
    /// `X'0A1B'`.
    Binary(String),
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Token {
    /// The text Calcite would quote in `Encountered "..."`.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Ident { name, quoted: true } => format!("\"\\\"{name}\\\"\""),
            Tok::Ident { name, .. } => format!("\"{name}\""),
            Tok::Number(n) => format!("\"{n}\""),
            Tok::Str(s) => format!("\"'{s}'\""),
            Tok::Binary(s) => format!("\"X'{s}'\""),
            Tok::Sym(s) => format!("\"{s}\""),
            Tok::Eof => "\"<EOF>\"".to_string(),
        }
    }
}

const SYMBOLS: [&str; 17] = [
    "<>", "<=", ">=", "!=", "||", "(", ")", ",", ";", ".", "+", "-", "*", "/", "=", "<", ">",
];

pub fn lex(src: &str) -> Result<Vec<Token>, SqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    // Advances over one char, keeping line and column right across newlines.
    macro_rules! bump {
        () => {{
            if chars[i] == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
            i += 1;
        }};
    }
    while i < chars.len() {
        let c = chars[i];
        let start = Pos::new(line, col);
        if c.is_whitespace() {
            bump!();
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                bump!();
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            bump!();
            bump!();
            loop {
                if i >= chars.len() {
                    return Err(SqlError::syntax(
                        Span::new(start, start),
                        format!(
                            "Lexical error at line {}, column {}.  Encountered: <EOF> after : \"/*\"",
                            start.line, start.column
                        ),
                    ));
                }
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    bump!();
                    bump!();
                    break;
                }
                bump!();
            }
            continue;
        }
        let mut last = start;
        let tok = if c == '"' {
            bump!();
            let mut name = String::new();
            loop {
                if i >= chars.len() {
                    return Err(unterminated(start, "\""));
                }
                if chars[i] == '"' {
                    if chars.get(i + 1) == Some(&'"') {
                        name.push('"');
                        bump!();
                        bump!();
                        continue;
                    }
                    last = Pos::new(line, col);
                    bump!();
                    break;
                }
                name.push(chars[i]);
                bump!();
            }
            Tok::Ident { name, quoted: true }
        } else if c == '\'' || ((c == 'X' || c == 'x') && chars.get(i + 1) == Some(&'\'')) {
            let binary = c != '\'';
            if binary {
                bump!();
            }
            bump!();
            let mut s = String::new();
            loop {
                if i >= chars.len() {
                    return Err(unterminated(start, "'"));
                }
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        s.push('\'');
                        bump!();
                        bump!();
                        continue;
                    }
                    last = Pos::new(line, col);
                    bump!();
                    break;
                }
                s.push(chars[i]);
                bump!();
            }
            if binary {
                Tok::Binary(s)
            } else {
                Tok::Str(s)
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut s = String::new();
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                s.push(chars[i]);
                last = Pos::new(line, col);
                bump!();
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let sign = chars.get(i + 1).is_some_and(|d| *d == '+' || *d == '-');
                let digit_at = if sign { i + 2 } else { i + 1 };
                if chars.get(digit_at).is_some_and(|d| d.is_ascii_digit()) {
                    s.push('E');
                    bump!();
                    if sign {
                        s.push(chars[i]);
                        bump!();
                    }
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        s.push(chars[i]);
                        last = Pos::new(line, col);
                        bump!();
                    }
                }
            }
            Tok::Number(s)
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let mut s = String::new();
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                s.push(chars[i]);
                last = Pos::new(line, col);
                bump!();
            }
            Tok::Ident {
                name: s.to_uppercase(),
                quoted: false,
            }
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
                Some(sym) => {
                    for _ in 0..sym.len() {
                        last = Pos::new(line, col);
                        bump!();
                    }
                    Tok::Sym(sym)
                }
                None => {
                    return Err(SqlError::syntax(
                        Span::new(start, start),
                        format!(
                            "Lexical error at line {}, column {}.  Encountered: \"{}\"",
                            start.line, start.column, c
                        ),
                    ))
                }
            }
        };
        out.push(Token {
            tok,
            span: Span::new(start, last),
        });
    }
    let end = Pos::new(line, col);
    out.push(Token {
        tok: Tok::Eof,
        span: Span::new(end, end),
    });
    Ok(out)
}

fn unterminated(start: Pos, quote: &str) -> SqlError {
    SqlError::syntax(
        Span::new(start, start),
        format!(
            "Lexical error at line {}, column {}.  Encountered: <EOF> after : \"{}\"",
            start.line, start.column, quote
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_identifiers_are_upper_cased_and_quoted_ones_keep_their_case() {
        let toks = lex("select \"Mixed\" from x").unwrap();
        assert_eq!(
            toks[0].tok,
            Tok::Ident {
                name: "SELECT".into(),
                quoted: false
            }
        );
        assert_eq!(
            toks[1].tok,
            Tok::Ident {
                name: "Mixed".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn positions_count_lines_and_columns_from_one() {
        let toks = lex("a\n  -- note\n  bc").unwrap();
        assert_eq!(toks[1].span.start, Pos::new(3, 3));
        assert_eq!(toks[1].span.end, Pos::new(3, 4));
    }

    #[test]
    fn doubled_quotes_escape_inside_strings() {
        let toks = lex("'it''s'").unwrap();
        assert_eq!(toks[0].tok, Tok::Str("it's".into()));
    }

    #[test]
    fn an_unterminated_string_is_a_lexical_error_at_its_start() {
        let err = lex("select 'abc").unwrap_err();
        assert_eq!(err.pos(), Pos::new(1, 8));
    }
}
