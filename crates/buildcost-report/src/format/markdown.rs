//! Markdown for chat and wikis (GitHub-flavoured tables).

use super::doc::{Align, Block, Doc};

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The document as Markdown; charts are left to the HTML report.
pub fn render(doc: &Doc) -> String {
    let mut out = format!("# {}\n", doc.title);
    for block in &doc.blocks {
        match block {
            Block::Heading(level, text) => {
                out.push_str(&format!("\n{} {text}\n", "#".repeat(usize::from(*level))));
            }
            Block::Paragraph(text) => out.push_str(&format!("\n{text}\n")),
            Block::Note(text) => out.push_str(&format!("\n<sub>{text}</sub>\n")),
            Block::Bullets(items) => {
                out.push('\n');
                for item in items {
                    out.push_str(&format!("- {item}\n"));
                }
            }
            Block::Table {
                headers,
                align,
                rows,
            } => {
                out.push('\n');
                let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
                out.push_str(&line(headers.iter().map(|h| cell(h)).collect()));
                out.push_str(&line(
                    align
                        .iter()
                        .map(|a| match a {
                            Align::Left => "---".to_owned(),
                            Align::Right => "---:".to_owned(),
                        })
                        .collect(),
                ));
                for row in rows {
                    out.push_str(&line(row.iter().map(|c| cell(c)).collect()));
                }
            }
            Block::Chart(_) => {}
        }
    }
    out
}
