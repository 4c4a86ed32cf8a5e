//! Files rendered from a finished [`crate::Report`]: the analyzer produces the
//! numbers, these modules only lay them out.

pub mod html;
pub mod timeline_csv;
