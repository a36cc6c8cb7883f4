//! A drill on disk: the append-only journal (the only source of truth), its
//! replay into state, the per-drill lock, and the store of drill directories.

pub mod attach;
pub mod event;
pub mod evidence;
pub mod journal;
pub mod lock;
pub mod participants;
pub mod state;
pub mod store;
pub mod tail;
pub mod verdict;
