//! Files and text rendered from a finished [`crate::Report`]: the analyzer
//! produces the numbers, these modules only lay them out.

mod cause;
pub(crate) mod compare;
pub(crate) mod export;
pub mod html;
pub mod junit;
pub(crate) mod text;
pub mod timeline_csv;
pub(crate) mod windows_csv;
