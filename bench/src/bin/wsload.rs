//! `wsload`: the load generator of BENCHMARKS.md. One measurement per
//! call, printed as one JSON object on stdout (and a summary on stderr).
//! All traffic goes to the address given, which must be a loopback one.

use std::process::ExitCode;

use boardcast_bench::args::Args;
use boardcast_bench::{conns, echo, fanout, resume, transports};

const USAGE: &str = "\
usage: wsload MODE --addr 127.0.0.1:PORT [options] [--label K=V ...]

modes:
  echo     lock-step round trips: one message in flight per connection
           --proto ws|tcp (ws)  --conns N (1)  --size BYTES (32)
           --warmup S (0.5)  --duration S (3)  --threads N (1)
           --max-round-trips N (50000000)  --server-pid PID
  fanout   subscribers of a broadcast server (8-byte BE send time in ns
           since the UNIX epoch, then an 8-byte BE sequence number)
           --subs N (1)  --warmup S (2)  --duration S (5)  --grace S (1)
           --first-timeout S (30)  --threads N (1)  --server-pid PID
           (the warm-up starts once every subscriber got a message)
  conns    open idle connections, then read the server's /proc status
           --proto ws|tcp (ws)  --count N (1000)  --server-pid PID
           --settle S (1.5)
  resume   one boardcast.v1 client of the broadcast example's topic that
           drops its link (a reset) N times, waits the outage, reconnects
           and resumes (s TOPIC EPOCH SEQ); times from each TCP connect to
           the 101, the r line, the first and last replayed message and
           the first sent after the connect began; counts gaps and
           duplicates across reconnects
           --topic NAME (bench)  --reconnects N (10)  --outage S (0.5)
           --read S (1: each connection lasts this long after its connect)
           --timeout S (10)  --listeners N (0: more v1 clients subscribed
           all along)  --server-pid PID
  transports
           N clients of one transport of the broadcast example, all
           subscribed to its topic (bench): ws (WebSocket, boardcast.v1),
           sse (GET /sse), poll (long polling, GET /poll), latest
           (GET /latest every --interval with If-None-Match); per
           delivered message: latency, bytes each way (HTTP heads and
           frame headers included), server CPU; the server's RSS and
           threads per client; refusals, statuses, timeouts, losses
           --transport ws|sse|poll|latest  --clients N (100: 0 measures
           the server alone)  --interval S (1)  --warmup S (2)
           --duration S (10)  --grace S (1)  --first-timeout S (30)
           --settle S (1)  --server-pid PID  --rate R and --payload P
           (labels copied into the JSON)

Extra --server, --run and --note values are copied into the JSON.";

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(mode) = argv.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if mode == "-h" || mode == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match Args::parse(argv) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("wsload: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.get::<std::net::SocketAddr>("addr", ([127, 0, 0, 1], 0).into()) {
        Ok(addr) if addr.ip().is_loopback() => {}
        Ok(addr) => {
            eprintln!("wsload: {addr} is not a loopback address; refusing");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("wsload: {e}");
            return ExitCode::from(2);
        }
    }
    let result = match mode.as_str() {
        "echo" => echo::run(&args),
        "fanout" => fanout::run(&args),
        "conns" => conns::run(&args),
        "resume" => resume::run(&args),
        "transports" => transports::run(&args),
        _ => Err(format!("unknown mode {mode:?}")),
    };
    match result {
        Ok(mut value) => {
            for key in ["server", "run", "note"] {
                let v = args.string(key, "");
                if !v.is_empty() {
                    value[key] = match v.parse::<u64>() {
                        Ok(n) => n.into(),
                        Err(_) => v.into(),
                    };
                }
            }
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsload {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}
