//! A small authoritative DNS server on a loopback UDP port, for `dns-check`
//! tests: a zone of CNAME and A records answered as a real server answers
//! (the CNAME chain, then the target's addresses; NXDOMAIN for a name it
//! does not have), or a socket that never replies. Messages are read and
//! written with hickory's own protocol crate (re-exported by
//! hickory-resolver). Stops when dropped.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, CNAME};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// One record of the zone.
#[derive(Debug, Clone)]
pub enum Rec {
    Cname(&'static str),
    A(Ipv4Addr),
}

pub const CNAME_TTL: u32 = 300;
pub const A_TTL: u32 = 60;

pub struct DnsServer {
    pub address: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Answers from `zone` (names without the final dot).
    pub fn start(zone: &[(&str, Rec)]) -> DnsServer {
        let mut records: HashMap<String, Vec<Rec>> = HashMap::new();
        for (name, record) in zone {
            records.entry(name.to_ascii_lowercase()).or_default().push(record.clone());
        }
        DnsServer::spawn(Some(records))
    }

    /// Reads every query and answers none.
    pub fn silent() -> DnsServer {
        DnsServer::spawn(None)
    }

    pub fn nameserver(&self) -> String {
        self.address.to_string()
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    fn spawn(zone: Option<HashMap<String, Vec<Rec>>>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port for the DNS server");
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let address = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (stopping, counted) = (stop.clone(), queries.clone());
        let thread = std::thread::Builder::new()
            .name("test-dns".into())
            .spawn(move || {
                let mut buffer = [0u8; 4096];
                while !stopping.load(Ordering::SeqCst) {
                    let Ok((length, from)) = socket.recv_from(&mut buffer) else { continue };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let Some(zone) = &zone else { continue };
                    let Ok(query) = Message::from_vec(&buffer[..length]) else { continue };
                    if let Ok(bytes) = answer(zone, &query).to_vec() {
                        let _ = socket.send_to(&bytes, from);
                    }
                }
            })
            .unwrap();
        DnsServer { address, queries, stop, thread: Some(thread) }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(format!("{text}.")).unwrap()
}

fn answer(zone: &HashMap<String, Vec<Rec>>, query: &Message) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let Some(question) = query.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(question.clone());
    let mut at = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
    if !zone.contains_key(&at) {
        response.metadata.response_code = ResponseCode::NXDomain;
        return response;
    }
    // The CNAME chain, as far as the zone has it.
    for _ in 0..8 {
        let Some(Rec::Cname(target)) =
            zone.get(&at).and_then(|records| records.iter().find(|r| matches!(r, Rec::Cname(_))))
        else {
            break;
        };
        response.add_answer(Record::from_rdata(name(&at), CNAME_TTL, RData::CNAME(CNAME(name(target)))));
        at = target.to_ascii_lowercase();
    }
    if question.query_type() == RecordType::A {
        for record in zone.get(&at).into_iter().flatten() {
            if let Rec::A(ip) = record {
                response.add_answer(Record::from_rdata(name(&at), A_TTL, RData::A(A(*ip))));
            }
        }
    }
    response
}
