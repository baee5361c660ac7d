//! The archive on disk: where files go ([`paths`]) and what makes a file
//! acceptable ([`content`]).

pub mod content;
pub mod paths;
