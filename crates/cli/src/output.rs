//! Printing results: aligned tables and `key: value` details for people, one compact JSON
//! document per command (on one line) for programs.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Prints one JSON document on one line.
pub fn print_json(value: &Value) {
    println!("{value}");
}

/// Columns padded to their widest cell; the last column is not padded.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell_text(cell).chars().count());
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        render_row(&mut out, &header, &widths);
        for row in &self.rows {
            render_row(&mut out, row, &widths);
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

fn render_row(out: &mut String, row: &[String], widths: &[usize]) {
    let last = row.len().saturating_sub(1);
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate() {
        let text = cell_text(cell);
        line.push_str(&text);
        if i < last {
            let width = widths.get(i).copied().unwrap_or(0);
            let pad = width.saturating_sub(text.chars().count()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Table cells are one line; an empty cell shows as `-`.
fn cell_text(cell: &str) -> String {
    if cell.is_empty() {
        "-".to_owned()
    } else {
        cell.replace(['\n', '\r', '\t'], " ")
    }
}

/// `key: value` lines with the values aligned; empty values show as `-`.
pub fn render_fields(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        let value = if value.is_empty() {
            "-"
        } else {
            value.as_str()
        };
        let pad = width - key.chars().count();
        out.push_str(&format!("{key}:{} {value}\n", " ".repeat(pad)));
    }
    out
}

pub fn print_fields(fields: &[(&str, String)]) {
    print!("{}", render_fields(fields));
}

/// `yes`/`no` for table cells.
pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_mark_empty_cells() {
        let mut table = Table::new(&["ID", "USERNAME", "EMAIL"]);
        table.push(vec!["1".into(), "alice".into(), "a@example.com".into()]);
        table.push(vec!["22".into(), "bob".into(), String::new()]);
        assert_eq!(
            table.render(),
            "ID  USERNAME  EMAIL\n1   alice     a@example.com\n22  bob       -\n"
        );
    }

    #[test]
    fn cells_stay_on_one_line() {
        let mut table = Table::new(&["A", "B"]);
        table.push(vec!["x\ny".into(), "z".into()]);
        assert_eq!(table.render(), "A    B\nx y  z\n");
    }

    #[test]
    fn fields_align() {
        let text = render_fields(&[
            ("id", "1".into()),
            ("username", "alice".into()),
            ("email", String::new()),
        ]);
        assert_eq!(text, "id:       1\nusername: alice\nemail:    -\n");
    }
}
