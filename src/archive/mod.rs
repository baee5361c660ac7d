//! The archive on disk: where files go ([`paths`]), what makes a file
//! acceptable ([`content`]), and whether files are still as they were
//! verified ([`verify`]).

pub mod content;
pub mod paths;
pub mod verify;
