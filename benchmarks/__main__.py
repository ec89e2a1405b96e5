"""``make bench``: every row of the performance table, medians of several runs.

python -m benchmarks                     # everything, 3 runs each (about 30 minutes)
python -m benchmarks --runs 1 --only startup,ping
python -m benchmarks --python ../baseline/.venv/bin/python   # another checkout's code
python -m benchmarks --before ../before/.venv/bin/python     # before/after, one sitting
python -m benchmarks --only whoosh       # WHOOSH at N = 100, 1,000, 5,000: whole list vs views
python -m benchmarks --only hop          # the mesh's cost per hop: 20 agents at 10 and 100
                                         # msg/s, 50 agents at 10 msg/s
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial

from benchmarks import dht, hop, mesh, ping, receive, soak, startup, swarm, whoosh_scale
from benchmarks.procs import Interpreter
from benchmarks.report import Row, render

GROUPS = (
    "startup", "ping", "receive", "mesh", "idle", "soak", "hop", "dht", "whoosh", "swarm",
    "overrides",
)  # fmt: skip
DHT_REFRESH_S = 600.0  # AGENT_DHT_REFRESH_S's default: the settled walk period
DHT_IDLE_AGENTS = 20  # the DHT's idle cost is quoted in the agent_cpu row's mesh shape
PNET_RATE = 1000  # msg/s: the private network's cost is quoted here (issue 17)
OVERRIDE_RATE = 1000  # msg/s: the per-override figures, below saturation for all variants


def rows() -> dict[str, Row]:
    r = [
        Row("start", "agent process start -> /api/health answers", "s", 1.0),
        Row("ping", "libp2p ping RTT, idle local peers", "ms", 1.0),
        Row("ping_call", "  same: the whole ping call from asyncio (opens a stream)", "ms", None),
        Row("cost", "monitor CPU per received message (500 msg/s)", "µs", 400),
        Row("maxrate", "monitor: highest rate, zero loss, p99 < 100 ms", "msg/s", 2000, False),
        Row("cost1k", "monitor CPU per received message (1,000 msg/s)", "µs", None),
        Row(
            "cost1k_pnet", "  same, closed mesh (swarm.key): limit +15 % over the above", "µs", None
        ),
        Row("run10", "time to 10/10 heard (make run defaults)", "s", 15),
        Row(
            "agent_cpu",
            "one idle agent in a 20-agent mesh (stack defaults: 30 s broadcasts, 15 s polls)",
            "% core",
            0.25,
        ),
        Row("agent_rss", "one idle agent's RSS (same mesh)", "MiB", 80),
        Row(
            "agent_cpu10",
            "  same, make run's defaults (10 s broadcasts, 2-3 s polls)",
            "% core",
            0.6,
        ),
        Row(
            "soak_over",
            f"monitor RSS over idle, soak (churn, hostile, 50 KB garbage, {soak.SOAK_S:.0f} s)",
            "MiB",
            36,  # its 16 MiB kept-message cap + 20 MiB (issue 20)
        ),
        Row("soak_kept", "  same: kept messages at the end (cap 16 MiB)", "MiB", None),
        Row("mesh20", "idle mesh: 20 agents + WHOOSH + monitor", "% core", 30),
        Row("load_pct", "20 agents, one publishing 10 msg/s: delivered", "%", 100, False),
        Row("load_p50", "  same: monitor latency p50", "ms", None),
        Row("load_p99", "  same: monitor latency p99", "ms", 50),
        Row(
            "hop10",
            "agent CPU per message per hop: 20 agents, 10 msg/s (10 s broadcasts)",
            "µs",
            1000,
        ),
        Row("hop100", "  same at 100 msg/s", "µs", 500),
        Row("hop_p99_10", "  same: monitor latency p99 at 10 msg/s", "ms", 50),
        Row("load100_pct", "20 agents, one publishing 100 msg/s: delivered", "%", 100, False),
        Row("load100_p99", "  same: monitor latency p99", "ms", 100),
        Row("load50_pct", "50 agents, one publishing 10 msg/s: delivered", "%", 100, False),
        Row("load50_p99", "  same: monitor latency p99", "ms", 100),
        Row("hop50", "  same: agent CPU per message per hop", "µs", None),
        Row("heard50", "50 agents: launch -> 50/50 heard", "s", 60),
        Row("mesh50", "idle mesh: 50 agents + WHOOSH + monitor", "% core", None),
        Row(
            "heard50_dht", "50 agents, no WHOOSH, 1 bootstrap addr: launch -> 50/50 heard", "s", 60
        ),
        Row("dht_first", "  same: peers an agent learnt first from the DHT (vs gossip)", "%", None),
        Row("dht_cpu_on", "idle agent, 20-agent mesh, DHT on (after it settled)", "% core", None),
        Row("dht_cpu_off", "  same, DHT off", "% core", None),
        Row("dht_cpu_delta", "  DHT on - off", "% core", 0.1),
        Row("dht_walks", "  DHT walks per agent in that window (settled: one per 600 s)", "", None),
        Row(
            "dht_cpu_settled",
            "  DHT on - off, scaled to the settled walk rate (AGENT_DHT_REFRESH_S)",
            "% core",
            0.1,
        ),
        Row("dht_rss_on", "  idle agent RSS, DHT on", "MiB", None),
        Row("dht_rss_off", "  idle agent RSS, DHT off", "MiB", None),
        Row("dht_links_on", "  idle agent connections, DHT on", "", None),
        Row("dht_links_off", "  idle agent connections, DHT off", "", None),
        Row("swarm10", "Swarm: stack deploy -> 10/10 heard (stack defaults)", "s", 15),
        Row("swarm20", "Swarm: service scale 20 -> 20/20 heard", "s", 20),
        Row(
            "agent_rss_image",
            f"  same: an agent's RSS in the image, {swarm.RSS_SETTLE_S:.0f} s later (median of 20)",
            "MiB",
            80,
        ),
    ]
    return {row.key: row for row in r}


def measure(group: str, table: dict[str, Row], interp: Interpreter, image_tag: str | None) -> None:
    if group == "startup":
        table["start"].add(startup.run_once(interp))
    elif group == "ping":
        rtt, call = ping.run_once(interp)
        table["ping"].add(rtt)
        table["ping_call"].add(call)
    elif group == "receive":
        out = receive.run_once(interp)
        table["cost"].add(out["cost_us"])
        table["maxrate"].add(out["max_rate"])
        print("    receive:", ", ".join(f"{k} {v:.0f}" for k, v in out.items()), flush=True)
        # The private network's price, in the same sitting and the same single-rate run
        # shape with and without the key (issue 17: at most +15 %).
        open_1k = receive.run_once(interp, rates=(PNET_RATE,))
        table["cost1k"].add(open_1k[f"{PNET_RATE}/s cost us"])
        keyed = receive.run_once(interp, rates=(PNET_RATE,), private_network=True)
        table["cost1k_pnet"].add(keyed[f"{PNET_RATE}/s cost us"])
        print("    receive, private network:",
              ", ".join(f"{k} {v:.0f}" for k, v in keyed.items()), flush=True)  # fmt: skip
    elif group == "mesh":
        run10 = mesh.run_once(interp, 10, broadcast_s=10.0, idle=False)
        table["run10"].add(run10.heard_after_s)
        m20 = mesh.run_once(interp, 20, load=True)
        table["mesh20"].add(m20.idle_total_pct)
        for key, name in (("load_pct", "delivered_pct"), ("load_p50", "p50_ms"),
                          ("load_p99", "p99_ms")):  # fmt: skip
            table[key].add(m20.load.get(name, float("nan")))
        m50 = mesh.run_once(interp, 50, within_s=180)
        table["heard50"].add(m50.heard_after_s)
        table["mesh50"].add(m50.idle_total_pct)
    elif group == "idle":  # one idle agent of a 20-agent mesh, stack and make run periods
        m20 = mesh.run_once(interp, 20, broadcast_s=30.0, stack_periods=True)
        table["agent_cpu"].add(m20.idle_agent_pct)
        table["agent_rss"].add(m20.agent_rss_mib)
        m20 = mesh.run_once(interp, 20, broadcast_s=10.0)
        table["agent_cpu10"].add(m20.idle_agent_pct)
    elif group == "soak":
        run = soak.run_once(interp)
        table["soak_over"].add(run.over_idle_mib)
        table["soak_kept"].add(run.kept_mib)
    elif group == "hop":
        h20 = hop.run_once(interp, 20, (10, 100))
        print("    hop, 20 agents:", h20, flush=True)
        at10, at100 = h20.by_rate.get(10, {}), h20.by_rate.get(100, {})
        nan = float("nan")
        table["hop10"].add(at10.get("us_per_msg_hop", nan))
        table["hop_p99_10"].add(at10.get("p99_ms", nan))
        table["hop100"].add(at100.get("us_per_msg_hop", nan))
        table["load100_pct"].add(at100.get("delivered_pct", nan))
        table["load100_p99"].add(at100.get("p99_ms", nan))
        h50 = hop.run_once(interp, 50, (10,), within_s=240)
        print("    hop, 50 agents:", h50, flush=True)
        at10 = h50.by_rate.get(10, {})
        table["load50_pct"].add(at10.get("delivered_pct", nan))
        table["load50_p99"].add(at10.get("p99_ms", nan))
        table["hop50"].add(at10.get("us_per_msg_hop", nan))
    elif group == "dht":
        alone = dht.without_whoosh(interp, 50)
        table["heard50_dht"].add(alone.heard_after_s)
        named = alone.first_by.get("dht", 0.0) + alone.first_by.get("gossip", 0.0)
        table["dht_first"].add(100 * alone.first_by.get("dht", 0.0) / named if named else math.nan)
        print(f"    no WHOOSH, peers named first by source: {alone.first_by}", flush=True)
        on = dht.idle_cost(interp, DHT_IDLE_AGENTS, dht=True)
        off = dht.idle_cost(interp, DHT_IDLE_AGENTS, dht=False)
        for key, a, b in (
            ("cpu", on.idle_agent_pct, off.idle_agent_pct),
            ("rss", on.agent_rss_mib, off.agent_rss_mib),
            ("links", on.agent_connections, off.agent_connections),
        ):
            table[f"dht_{key}_on"].add(a)
            table[f"dht_{key}_off"].add(b)
        delta = on.idle_agent_pct - off.idle_agent_pct
        table["dht_cpu_delta"].add(delta)
        table["dht_walks"].add(on.walks_per_agent)
        # The window still holds walks of the back-off (2, 4, 8 ... s after the last news,
        # up to AGENT_DHT_REFRESH_S); once settled an agent walks once per refresh period.
        settled = dht.IDLE_WINDOW_S / DHT_REFRESH_S
        table["dht_cpu_settled"].add(
            delta * min(1.0, settled / on.walks_per_agent) if on.walks_per_agent > 0 else delta
        )
    elif group == "overrides":
        for variant in override_variants():
            row = table.setdefault(
                f"ovr:{variant}",
                Row(f"ovr:{variant}", f"monitor µs/msg at {OVERRIDE_RATE}/s, overrides {variant}",
                    "µs", None),
            )  # fmt: skip
            out = receive.run_once(interp, rates=(OVERRIDE_RATE,), overrides=variant)
            row.add(out["cost_us"])
    elif group == "whoosh":
        results = {n: whoosh_scale.run_once(interp, n) for n in whoosh_scale.SIZES}
        print(whoosh_scale.render(results), flush=True)
        for n, modes in results.items():
            for mode, r in modes.items():
                label = f"WHOOSH N={n:,}, {'whole list' if mode == 'full' else 'views'}"
                for key, what, unit, value in (
                    ("bytes", "bytes served per change of the list", "kB", r["bytes"] / 1e3),
                    ("cpu", "CPU per change (round included)", "s", r["cpu_s"]),
                    ("round", "discovery round", "s", r["round_s"]),
                ):
                    row = table.setdefault(
                        f"whoosh:{n}:{mode}:{key}", Row(key, f"{label}: {what}", unit, None)
                    )
                    row.add(value)
    elif group == "swarm":
        why = swarm.unavailable(image_tag) if image_tag else "no image tag"
        if why:
            for key in ("swarm10", "swarm20", "agent_rss_image"):
                table[key].note = f"not measured: {why}"
            return
        assert image_tag
        run = swarm.run_once(image_tag)
        table["swarm10"].add(run.deployed_s)
        table["swarm20"].add(run.scaled_s)
        table["agent_rss_image"].add(run.agent_rss_mib)


def override_variants() -> list[str]:
    """None, all, and all but one (what each override is worth in the whole)."""
    from meshcommon.p2p.types import P2POverrides

    names = P2POverrides.spec_names()
    return ["none", "all", *(f"all,-{name}" for name in names)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    p.add_argument(
        "--only",
        default=",".join(g for g in GROUPS if g != "overrides"),
        help=f"subset of {','.join(GROUPS)} (overrides: each py-libp2p override's worth; "
        "not in the default run)",
    )
    p.add_argument("--python", default=sys.executable, help="interpreter whose checkout runs")
    p.add_argument(
        "--image-tag", default="test", help="images of the Swarm rows (make images: test)"
    )
    p.add_argument(
        "--before",
        metavar="PYTHON",
        help="another checkout's interpreter: each run measures it first, then --python, so "
        "before and after share the sitting (and the machine's load); the table shows both",
    )
    p.add_argument(
        "--before-image-tag", help="images of the Swarm rows for --before (default: not measured)"
    )
    args = p.parse_args(argv)
    interp = Interpreter(args.python)
    table = rows()
    sides: list[tuple[dict[str, Row], Interpreter, str | None, str]] = [
        (table, interp, args.image_tag, "")
    ]
    before_table: dict[str, Row] | None = None
    if args.before:
        before_table = rows()
        sides.insert(0, (before_table, Interpreter(args.before), args.before_image_tag, "before "))
    started = time.monotonic()
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    for group in groups:
        if group not in GROUPS:
            p.error(f"unknown group {group!r}")
    print(f"benchmarks: {', '.join(groups)} x {args.runs} runs, services from {args.python}"
          + (f", before: {args.before}" if args.before else ""))  # fmt: skip
    for run in range(1, args.runs + 1):
        for group in groups:
            for tab, side, tag, label in sides:
                t0 = time.monotonic()
                _guarded(partial(measure, group, tab, side, tag), f"{label}{group} run {run}")
                print(f"  {label}{group} run {run}: {time.monotonic() - t0:.0f}s", flush=True)
    if before_table is not None:  # a row measured only before still gets its line
        for key, row in before_table.items():
            table.setdefault(key, Row(key, row.what, row.unit, row.target, row.lower_is_better))
    shown = [
        row
        for key, row in table.items()
        if row.samples
        or row.note
        or (before_table and key in before_table and before_table[key].samples)
    ]
    print()
    print(render(shown, before_table))
    print(f"\n(medians of {args.runs} runs; whole benchmark {time.monotonic() - started:.0f}s)")
    return 0


def _guarded(step: Callable[[], None], name: str) -> None:
    """A failed run is reported and the table still printed: a benchmark that dies on
    the first slow start would hide every other figure."""
    try:
        step()
    except Exception:
        print(f"  {name} FAILED:\n{traceback.format_exc()}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
