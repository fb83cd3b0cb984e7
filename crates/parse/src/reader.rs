//! PLACEHOLDER
/// Line reader.
pub struct LineReader;
