//! A guest's stdout and stderr: each complete line goes to the host's log, tagged with
//! the component and the stream, up to a cap per instance; the rest is dropped (once
//! noted). Writes always succeed, so a chatty guest is never failed by its own prints.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of output one instance may put in the log, per stream (and for `host.log`).
pub const OUTPUT_CAP: usize = 16 << 10;
/// Longest line kept before it is logged as is.
const MAX_LINE: usize = 1024;

/// One of a guest instance's output streams.
#[derive(Clone)]
pub struct GuestOutput {
    component: Arc<str>,
    stream: &'static str,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    line: Vec<u8>,
    logged: usize,
    capped: bool,
}

impl GuestOutput {
    /// The `stream` (`stdout` or `stderr`) of `component`'s instance.
    pub fn new(component: &str, stream: &'static str) -> Self {
        Self {
            component: component.into(),
            stream,
            state: Arc::default(),
        }
    }

    fn take(&self, bytes: &[u8]) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for &b in bytes {
            if b == b'\n' || s.line.len() >= MAX_LINE {
                let line = std::mem::take(&mut s.line);
                self.emit(&mut s, &line);
                if b == b'\n' {
                    continue;
                }
            }
            s.line.push(b);
        }
    }

    fn emit(&self, s: &mut State, line: &[u8]) {
        if s.logged >= OUTPUT_CAP {
            if !s.capped {
                s.capped = true;
                tracing::warn!(
                    component = %self.component,
                    stream = self.stream,
                    "guest output beyond {OUTPUT_CAP} bytes is dropped"
                );
            }
            return;
        }
        s.logged += line.len() + 1;
        if !logs(&self.component, line.len() + 1) {
            return;
        }
        let text = super::guest_text::clip(&String::from_utf8_lossy(line));
        tracing::info!(component = %self.component, stream = self.stream, "{text}");
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Whether `component` may log `bytes` more (its budget per minute, whatever its
/// instances); notes once per minute that its lines are dropped.
pub(crate) fn logs(component: &str, bytes: usize) -> bool {
    use super::log_budget::{Allowance, LOG_BYTES_PER_MINUTE, charge};
    match charge(component, bytes) {
        Allowance::Log => true,
        Allowance::DropNoting => {
            tracing::warn!(
                component,
                "guest log lines beyond {LOG_BYTES_PER_MINUTE} bytes a minute are dropped"
            );
            false
        }
        Allowance::Drop => false,
    }
}
