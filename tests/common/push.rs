//! A relay for push tests: a TCP proxy on 127.0.0.1 in front of a
//! registry that forwards requests with their bodies (registry.rs's
//! FaultProxy forwards heads only), records each request line, and can
//! cut the connection once after some bytes of an upload body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Relay {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// `cut_after`: close both sides after that many bytes of the first
    /// request body longer than it (later requests pass).
    pub fn start(target: SocketAddr, cut_after: Option<u64>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(cut_after.is_none()));
        let (s2, st2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for conn in listener.incoming() {
                if st2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let (s3, cut) = (s2.clone(), cut.clone());
                workers.push(std::thread::spawn(move || {
                    let _ = relay_one(client, target, cut_after.unwrap_or(0), &cut, &s3);
                }));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Relay {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `METHOD TARGET` of each request so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay_one(
    client: TcpStream,
    target: SocketAddr,
    after: u64,
    cut: &AtomicBool,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(target)?;
    let (mut s_read, mut c_write) = (server.try_clone()?, client.try_clone()?);
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut s_read, &mut c_write);
        let _ = c_write.shutdown(Shutdown::Write);
    });
    let mut r = BufReader::new(client.try_clone()?);
    let res = (|| -> std::io::Result<()> {
        loop {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                if r.read_until(b'\n', &mut head)? == 0 {
                    return Ok(());
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let first = text.lines().next().unwrap_or("");
            seen.lock()
                .unwrap()
                .push(first.split(' ').take(2).collect::<Vec<_>>().join(" "));
            let len: u64 = text
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            server.write_all(&head)?;
            if len > after && !cut.swap(true, Ordering::SeqCst) {
                std::io::copy(&mut (&mut r).take(after), &mut server)?;
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return Ok(());
            }
            std::io::copy(&mut (&mut r).take(len), &mut server)?;
        }
    })();
    let _ = server.shutdown(Shutdown::Write);
    let _ = back.join();
    res
}
