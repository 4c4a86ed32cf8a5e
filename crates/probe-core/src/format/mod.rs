//! How numbers and tables read in every text rollprobe writes, shared by the
//! renderers (output/), the gate and the matrix summary.
//!
//! Why a module of its own, at the bottom: the gate and the matrix are judged and
//! summarised *before* anything is rendered, and they must word a time the same way
//! the summary does. Kept with the renderers, these helpers made the gate and the
//! matrix import output/ while output/ imports them: a circle.

pub(crate) mod table;
pub(crate) mod times;
