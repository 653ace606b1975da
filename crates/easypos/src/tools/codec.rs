//! Codec calculators (issue 4): ISO 8583, EMV TLV and EMVCo QR.

use super::Report;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CodecTool {
    /// Hex-dump text as bytes (placeholder until the codec tools land).
    Hexdump {
        /// Text to show as hex.
        text: String,
    },
}

pub fn run(tool: CodecTool) -> anyhow::Result<Report> {
    match tool {
        CodecTool::Hexdump { text } => Ok(Report::new().field("hex", hex::encode_upper(text.as_bytes()))),
    }
}
