//! A small synchronous QMP client: qapi's typed commands, with our own line
//! reader so that events (which qapi's closed enums may not know) are queued
//! as JSON values and never put the stream out of step.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    pub name: String,
    pub data: Value,
}

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    partial: Vec<u8>,
    next_id: u64,
    events: VecDeque<QmpEvent>,
}

impl Qmp {
    /// Connect, read the greeting and negotiate capabilities.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let sock = UnixStream::connect(path)
            .with_context(|| format!("connecting to QMP at {}", path.display()))?;
        let mut q = Qmp {
            reader: BufReader::new(sock.try_clone()?),
            writer: sock,
            partial: Vec::new(),
            next_id: 1,
            events: VecDeque::new(),
        };
        let greeting = q
            .read_message(Instant::now() + timeout)?
            .context("QMP closed before its greeting")?;
        if greeting.get("QMP").is_none() {
            bail!("unexpected QMP greeting: {greeting}");
        }
        q.execute(&qapi::qmp::qmp_capabilities { enable: None }, timeout)?;
        Ok(q)
    }

    /// Run a typed command and wait for its reply; events seen meanwhile are queued.
    pub fn execute<C: qapi::Command>(&mut self, cmd: &C, timeout: Duration) -> Result<C::Ok> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "execute": C::NAME, "arguments": cmd, "id": id });
        let mut line = serde_json::to_vec(&msg)?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .with_context(|| format!("sending QMP {}", C::NAME))?;
        let deadline = Instant::now() + timeout;
        loop {
            let Some(v) = self.read_message(deadline)? else {
                bail!("QMP closed while waiting for the reply to {}", C::NAME);
            };
            if v.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // events were queued by read_message
            }
            if let Some(err) = v.get("error") {
                bail!("QMP {} failed: {err}", C::NAME);
            }
            let ret = v.get("return").cloned().unwrap_or(Value::Null);
            return serde_json::from_value(ret)
                .map_err(|e| anyhow!("decoding QMP {} reply: {e}", C::NAME));
        }
    }

    /// Events that arrived, waiting up to `wait` for the first one.
    pub fn poll_events(&mut self, wait: Duration) -> Result<Vec<QmpEvent>> {
        if self.events.is_empty() {
            let _ = self.read_message(Instant::now() + wait)?;
        }
        Ok(self.events.drain(..).collect())
    }

    /// Read one message, or None on timeout / closed socket. Events are queued
    /// (and also returned, so a caller waiting for a reply can skip them).
    fn read_message(&mut self, deadline: Instant) -> Result<Option<Value>> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => return Ok(None),
                Ok(_) if self.partial.ends_with(b"\n") => {
                    let line = std::mem::take(&mut self.partial);
                    let v: Value = serde_json::from_slice(&line).with_context(|| {
                        format!("bad QMP message: {}", String::from_utf8_lossy(&line))
                    })?;
                    if let Some(name) = v.get("event").and_then(Value::as_str) {
                        self.events.push_back(QmpEvent {
                            name: name.to_string(),
                            data: v.get("data").cloned().unwrap_or(Value::Null),
                        });
                    }
                    return Ok(Some(v));
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e).context("reading from QMP"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A scripted peer on a real socket: greets, answers, and interleaves events.
    #[test]
    fn replies_and_events_stay_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let peer = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
                .unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("qmp_capabilities"));
            w.write_all(b"{\"return\": {}, \"id\": 1}\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("query-status"));
            // An event nobody asked for arrives before the reply, split across writes.
            w.write_all(b"{\"event\": \"SOME_NEW_EVENT\", \"da")
                .unwrap();
            w.write_all(b"ta\": {\"x\": 1}}\n{\"return\": {\"running\": true, \"status\": \"running\"}, \"id\": 2}\n").unwrap();
            w.write_all(b"{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\n").unwrap();
        });
        let mut q = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        let st = q
            .execute(&qapi::qmp::query_status {}, Duration::from_secs(5))
            .unwrap();
        assert!(st.running);
        peer.join().unwrap();
        let mut seen = q.poll_events(Duration::from_millis(10)).unwrap();
        if seen.len() < 2 {
            seen.extend(q.poll_events(Duration::from_secs(2)).unwrap());
        }
        let names: Vec<&str> = seen.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["SOME_NEW_EVENT", "SHUTDOWN"]);
        assert_eq!(seen[1].data["reason"], "guest-shutdown");
    }
}
