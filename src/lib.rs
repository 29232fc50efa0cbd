//! recur
