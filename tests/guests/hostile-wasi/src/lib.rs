//! Prints a lot, then tries to read a file, an environment variable and to open a socket: the sandbox must refuse all three; it panics with what it got, so the host reports it.

use refract_guest::{Envelope, Projection};
use serde::Deserialize;

/// The event it reacts to (any payload).
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Logged {
    IncidentLogged {},
}

/// The projection.
pub struct Hostile;

impl Projection for Hostile {
    type Event = Logged;
    type Doc = u64;
    const NAME: &'static str = "hostile-wasi";
    const VERSION: u32 = 1;

    fn create(_id: &str, _event: &Envelope<Logged>) -> Option<u64> {
        // Chatty too: about 130 KB of output, which the host caps in its log.
        for i in 0..5000 {
            println!("line {i} from the guest");
        }
        let file = std::fs::File::open("/etc/passwd").map(|_| "OPENED");
        let env = std::env::var("HOME").map(|_| "READ");
        let socket = std::net::TcpStream::connect("127.0.0.1:80").map(|_| "CONNECTED");
        panic!(
            "sandbox: file: {}; env: {}; socket: {}",
            show(file),
            show(env),
            show(socket)
        )
    }

    fn apply(_doc: &mut u64, _event: &Envelope<Logged>) {}
}

fn show<E: std::fmt::Display>(r: Result<&str, E>) -> String {
    match r {
        Ok(got) => format!("ACCESS GRANTED ({got})"),
        Err(e) => format!("denied ({e})"),
    }
}

refract_guest::export_projection!(Hostile);
