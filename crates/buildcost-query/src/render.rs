//! Query results as a table, CSV or JSON.

use arrow::array::RecordBatch;

use crate::Result;

/// How `buildcost query` prints a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
}

/// Renders batches in the given format (JSON: one array of objects).
///
/// # Errors
/// Arrow cannot render a column type.
pub fn render(batches: &[RecordBatch], format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                for b in batches {
                    writer.write(b)?;
                }
            }
            if batches.is_empty() {
                return Ok(String::new());
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs)?;
            writer.finish()?;
            let out = writer.into_inner();
            if out.is_empty() {
                return Ok("[]".to_owned());
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
    }
}
