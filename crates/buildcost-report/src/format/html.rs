//! Self-contained HTML: inline CSS, inline SVG charts, no script, no external asset. Written as
//! well-formed XML (every element closed) so any XML parser can check it, and laid out to print
//! on A4.

use super::doc::{Align, Block, Doc};
use crate::Result;

const STYLE: &str = "
@page { size: A4; margin: 15mm; }
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       color: #222; max-width: 180mm; margin: 0 auto; padding: 8mm 4mm; line-height: 1.4;
       font-size: 10.5pt; }
h1 { font-size: 17pt; margin: 0 0 4pt 0; }
h2 { font-size: 12.5pt; margin: 14pt 0 4pt 0; border-bottom: 1px solid #ccc;
     break-after: avoid; page-break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0; break-inside: avoid;
        page-break-inside: avoid; }
th, td { padding: 2pt 6pt; border-bottom: 1px solid #e4e4e4; vertical-align: top; }
th { background: #f3f5f8; text-align: left; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
ul { padding-left: 16pt; }
li { margin: 3pt 0; }
.note { color: #666; font-size: 8.5pt; }
figure { margin: 6pt 0; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; }
@media print { body { padding: 0; max-width: none; } }
";

/// Escapes text for an element or an attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `code` spans for text in backticks, the rest escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// The document as one HTML page with `charts` (SVG) where the document places them.
///
/// # Errors
/// None today; kept fallible for charts that may fail to embed.
pub fn render(doc: &Doc, charts: Vec<String>) -> Result<String> {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\" xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    out.push_str(&format!("<title>{}</title>\n", escape(&doc.title)));
    out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    out.push_str(&format!("<h1>{}</h1>\n", escape(&doc.title)));
    for block in &doc.blocks {
        match block {
            Block::Heading(level, text) => {
                out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(text)));
            }
            Block::Paragraph(text) => out.push_str(&format!("<p>{}</p>\n", inline(text))),
            Block::Note(text) => {
                out.push_str(&format!("<p class=\"note\">{}</p>\n", inline(text)));
            }
            Block::Bullets(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table {
                headers,
                align,
                rows,
            } => {
                let class = |i: usize| match align.get(i) {
                    Some(Align::Right) => " class=\"num\"",
                    _ => "",
                };
                out.push_str("<table>\n<thead><tr>");
                for (i, h) in headers.iter().enumerate() {
                    out.push_str(&format!("<th{}>{}</th>", class(i), inline(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for (i, c) in row.iter().enumerate() {
                        out.push_str(&format!("<td{}>{}</td>", class(i), inline(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Chart(i) => {
                if let Some(svg) = charts.get(*i) {
                    out.push_str("<figure>\n");
                    out.push_str(strip_xml_declaration(svg));
                    out.push_str("\n</figure>\n");
                }
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

fn strip_xml_declaration(svg: &str) -> &str {
    let s = svg.trim();
    match s.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(s, |(_, r)| r.trim_start()),
        None => s,
    }
}
