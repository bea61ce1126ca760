//! Plain-text tables for the CLI: rows are JSON objects (the same values `--json`
//! prints), columns their keys in first-seen order (each object's keys sorted, as
//! serde_json keeps them).

use serde_json::Value;

/// Renders `rows` (JSON objects) as an aligned table with a header line. Arrays are
/// joined with ","; nested objects are printed as compact JSON. Empty input renders as
/// "(none)".
pub fn render(rows: &[Value]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    if columns.is_empty() {
        return "(none)\n".into();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r.get(c))).collect())
        .collect();
    align(&columns, &cells)
}

/// Like [`render`], with the columns given (in that order).
pub fn render_columns(columns: &[String], rows: &[Value]) -> String {
    if rows.is_empty() {
        return "(none)\n".into();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r.get(c))).collect())
        .collect();
    align(columns, &cells)
}

fn align(columns: &[String], cells: &[Vec<String>]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |values: &[String]| {
        let text: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(columns);
    for row in cells {
        line(row);
    }
    out
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| cell(Some(x)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_joins_arrays() {
        let rows = vec![
            serde_json::json!({"name": "supply", "members": ["a", "b"], "size": 12}),
            serde_json::json!({"name": "", "members": [], "size": 3, "extra": {"k": 1}}),
        ];
        assert_eq!(
            render(&rows),
            "members  name    size  extra\na,b      supply  12\n                 3     {\"k\":1}\n"
        );
        assert_eq!(render(&[]), "(none)\n");
    }
}
