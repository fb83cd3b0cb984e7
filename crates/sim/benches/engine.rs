//! The detection engine alone: events per second over a simulated Westminster day.
//!
//! `cargo bench -p portcullis-sim --bench engine` simulates the `westminster` scenario
//! in memory (seed 1), turns its attempts into events as the parsers would have, and
//! measures `Engine::observe` over all of them plus `finish` and `report`
//! (Throughput::Elements = events), with the binary's allocator (mimalloc). Target:
//! ≥ 3 M events/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use portcullis_core::engine::{Engine, EngineConfig};
use portcullis_core::report::Input;
use portcullis_core::{Event, EventTime};
use portcullis_sim::{Options, Scenario, Simulation};

/// The allocator the `portcullis` binary runs the engine with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn events() -> Vec<Event> {
    let sim = Simulation::new(
        Scenario::built_in("westminster").unwrap(),
        Options::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    for k in 0..sim.slots() {
        for a in sim.slot(k).attempts {
            let time = EventTime::utc(Timestamp::from_millisecond(a.at_ms).unwrap());
            out.push(sim.event(&a, time));
        }
    }
    out
}

fn engine(c: &mut Criterion) {
    let events = events();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("westminster", |b| {
        b.iter(|| {
            let mut e = Engine::new(EngineConfig::default());
            for x in &events {
                e.observe(x);
            }
            e.finish();
            black_box(e.report(Input::default()))
        })
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
