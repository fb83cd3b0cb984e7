//! PLACEHOLDER: the driver is being written.
/// Parser configuration.
pub struct ParseConfig;
/// Counters.
pub struct Stats;
/// The driver.
pub struct LogParser;
