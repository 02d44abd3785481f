//! What a call handler is: its signature and what it asks the loop to do with the reply.
//!
//! Replaces the `int do_*(message *)` convention of `servers/vm/proto.h` and the
//! `SUSPEND` result.

use super::Vm;
use crate::errno::Errno;
use crate::message::Message;

/// What a handler asks the loop to do with the reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reply {
    /// Send the (edited) request back with `mtype = OK`.
    Now,
    /// No reply now (`SUSPEND`); no 2010 handler uses it, the loop supports it.
    #[allow(dead_code)]
    Suspend,
}

/// A handler's result.
pub(crate) type CallResult = Result<Reply, Errno>;
/// A call handler: the server, the caller's slot index, the message (edited in place).
pub(crate) type Handler<F, P> = fn(&mut Vm<F, P>, usize, &mut Message) -> CallResult;
