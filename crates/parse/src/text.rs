//! Small text helpers shared by the service parsers.
