//! The `Checker` every section of the inventory reports its problems to, each with its line
//! and dotted path.

use std::collections::BTreeSet;
use std::ops::Range;

use toml::Spanned;

use super::{Problem, is_identifier};

/// What [`is_identifier`] requires, as a problem's message says it.
pub(super) const IDENTIFIER_RULE: &str =
    "the id must be lower snake_case (a-z, 0-9, _), starting with a letter";

/// Collects the problems of one inventory, each with its line.
pub(super) struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            text,
            problems: Vec::new(),
        }
    }

    /// Whether no problem was reported.
    pub(super) fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems, in line order.
    pub(super) fn into_problems(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| p.line.unwrap_or(0));
        self.problems
    }

    /// The 1-based line a span starts on.
    pub(super) fn line_of(&self, span: Range<usize>) -> usize {
        line_in(self.text, span.start)
    }

    /// The line a spanned value starts on, as a problem carries it.
    pub(super) fn line<T>(&self, value: &Spanned<T>) -> Option<usize> {
        Some(self.line_of(value.span()))
    }

    pub(super) fn report(
        &mut self,
        line: Option<usize>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            line,
            path: path.into(),
            message: message.into(),
        });
    }

    /// Reports an id that is not an identifier or was seen before under `what`.
    pub(super) fn id(
        &mut self,
        line: Option<usize>,
        path: &str,
        id: &str,
        seen: &mut BTreeSet<String>,
        what: &str,
    ) {
        if !is_identifier(id) {
            self.report(line, path, IDENTIFIER_RULE);
        }
        if !seen.insert(id.to_owned()) {
            self.report(
                line,
                path,
                format!("a {what} with this id is declared twice"),
            );
        }
    }
}

/// The 1-based line `offset` is on.
pub(super) fn line_in(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
