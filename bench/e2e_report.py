"""The report of bench/e2e_bench.py: markdown tables and PNG plots, both drawn from the report's JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

SERVICES = ("ingest", "classifier", "router", "sla")
PROCESSES = (*SERVICES, "tansu", "redis")


def table(head: list[str], rows: list[list[str]]) -> str:
    """Return a markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return "-" if seconds is None or math.isnan(seconds) else f"{seconds * 1000:,.0f}"


def num(value: float, digits: int = 0) -> str:
    """Format a number with thousands separators."""
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def ratio(value: float) -> str:
    """Format a ratio."""
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def cpu_cells(cpu: dict[str, Any]) -> list[str]:
    """Return CPU us/msg of each process, and of the whole stack."""
    cells = [num(cpu.get(p, math.nan)) for p in PROCESSES]
    stack = sum(cpu.get(p, 0.0) for p in PROCESSES)
    return [*cells, num(stack)]


def cores(cpu_s: dict[str, float]) -> str:
    """Return the cores the stack, this bench and the rest of the machine used: `stack / bench / other`."""
    wall = cpu_s["wall"]
    stack = sum(v for k, v in cpu_s.items() if k not in ("wall", "bench", "other"))
    return f"{stack / wall:.2f} / {cpu_s['bench'] / wall:.2f} / {cpu_s['other'] / wall:.2f}"


def rate_cell(rate: float, bounded: bool = True) -> str:
    """Format a sustained rate (`≥` when no probe failed), or say that no probe sustained its rate."""
    if not rate:
        return "no probe sustained its rate"
    return f"**{num(rate)} msg/s**" if bounded else f"**≥ {num(rate)} msg/s** (no probe failed)"


def headline(report: dict[str, Any]) -> str:
    """Return the table of headline figures next to their baselines."""
    s = report["summary"]
    kafka, http = s["bare_aiokafka_msg_per_s"], s["bare_fastapi_req_per_s"]
    bounded = report.get("sustained_bounded", {})
    single_ratios = f"**{ratio(s['single_vs_aiokafka'])}** of the loop; **{ratio(s['single_vs_fastapi'])}** "
    rows = [
        [
            "sustained rate, `POST /v1/messages` (one message a request)",
            rate_cell(s["sustained_single"], bounded.get("single", True)),
            f"aiokafka loop {num(kafka)} msg/s; FastAPI {num(http)} req/s",
            single_ratios + "of FastAPI" if s["sustained_single"] else "-",
        ],
        [
            f"sustained rate, `POST /v1/messages/batch` ({report['options']['batch_size']} a request)",
            rate_cell(s["sustained_batch"], bounded.get("batch", True)),
            f"aiokafka loop {num(kafka)} msg/s",
            f"**{ratio(s['batch_vs_aiokafka'])}** of the loop" if s["sustained_batch"] else "-",
        ],
        [
            f"burst of {report['burst']['messages']:,} through the batch endpoint, drain rate (10-90%)",
            f"{num(s['burst_msg_per_s'])} msg/s",
            f"aiokafka loop {num(kafka)} msg/s",
            f"{ratio(s['burst_vs_aiokafka'])} of the loop",
        ],
    ]
    for kind in ("single", "batch"):
        bound = s.get("cpu_bound_rate", {}).get(kind)
        if bound:
            rows.append(
                [
                    f"{kind}: what the stack's CPU per message at its sustained rate allows on "
                    f"{report['machine']['nproc']} free cores",
                    f"{num(bound)} msg/s",
                    f"aiokafka loop {num(kafka)} msg/s",
                    f"{ratio(bound / kafka)} of the loop",
                ]
            )
    return table(["figure", "value", "baseline, same run", "ratio"], rows)


def baselines(report: dict[str, Any]) -> str:
    """Return the baselines at the start and at the end of the run."""
    rows = []
    for when, (kafka, http) in zip(
        ("start", "end"),
        zip(report["baselines"]["aiokafka"], report["baselines"]["fastapi"], strict=False),
        strict=False,
    ):
        rows.append(
            [
                when,
                num(kafka["msg_per_s"]),
                num(kafka["cpu_us_per_msg"]),
                num(kafka["msg_per_s_per_core"]),
                num(http["req_per_s"]),
                num(http["cpu_us_per_req"]),
                num(http["req_per_s_per_core"]),
            ]
        )
    head = ["when", "aiokafka loop msg/s", "us CPU/msg", "msg/s per core", "FastAPI req/s", "us CPU/req"]
    return table([*head, "req/s per core"], rows)


def probes(report: dict[str, Any]) -> str:
    """Return every probe of the search for the sustained rates."""
    rows = []
    for r in report["probes"]:
        lat = r["latency_s"]["to_queue"]
        rows.append(
            [
                r["kind"],
                r["label"],
                num(r["offered"]),
                num(r["accepted_rate"]),
                num(r["routed_rate"]),
                f"{r['lag_growth']:+.1f} / {r['backlog_growth']:+.1f} / {r['sla_lag_growth']:+.1f}",
                f"{r['counted_lag_growth']:+.1f}",
                f"{num(r['lag_max'])} / {num(r['counted_lag_max'])}",
                ms(lat["p50"]),
                ms(lat["p99"]),
                "**yes**" if r["sustained"] else "no",
                cores(r["cpu_s"]),
                *cpu_cells(r["cpu_us_per_msg"]),
            ]
        )
    head = ["kind", "probe", "offered msg/s", "accepted/s", "routed/s"]
    head += ["growth /s: gauges / backlog / SLA", "growth /s: counters", "lag max: gauges / counters"]
    head += ["p50 ms", "p99 ms"]
    head += ["sustained", "cores: stack / bench / other", *(f"{p} us/msg" for p in PROCESSES), "stack us/msg"]
    return table(head, rows)


def levels(report: dict[str, Any]) -> str:
    """Return latency and achieved rate at 10%, 50% and 90% of each sustained rate."""
    bare = {round(b["share"], 2): b for b in report.get("bare_latency", [])}
    rows = []
    for r in report["levels"]:
        lat, seen, http = (r["latency_s"][k] for k in ("to_queue", "to_reader", "http_answer"))
        share = float(r["label"].rstrip("%")) / 100
        b = bare.get(round(share, 2)) if r["kind"] == "single" else None
        d = r["delivery"]
        rows.append(
            [
                r["kind"],
                r["label"],
                num(r["offered"]),
                num(r["routed_rate"]),
                ms(lat["p50"]),
                ms(lat["p90"]),
                ms(lat["p99"]),
                ms(lat["max"]),
                f"{ms(seen['p50'])} / {ms(seen['p99'])}",
                f"{ms(http['p50'])} / {ms(http['p99'])}",
                f"{ms(b['p50'])} / {ms(b['p99'])}" if b else "-",
                f"{ratio(lat['p50'] / b['p50'])} / {ratio(lat['p99'] / b['p99'])}" if b else "-",
                f"{ratio(http['p50'] / b['p50'])} / {ratio(http['p99'] / b['p99'])}" if b else "-",
                ms(r["send_delay_p99_s"]),
                cores(r["cpu_s"]),
                f"{d['accepted']}/{d['routed']}/{d['missing']}/{d['duplicates']}",
            ]
        )
    head = ["kind", "level", "offered msg/s", "routed msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    head += ["to reader p50/p99", "HTTP answer p50/p99", "bare FastAPI answer p50/p99"]
    head += ["to queue ÷ bare p50/p99", "HTTP answer ÷ bare p50/p99", "client send delay p99 ms"]
    head += ["cores: stack / bench / other", "accepted/routed/missing/dup"]
    return table(head, rows)


def per_core(report: dict[str, Any]) -> str:
    """Return each process's messages per second per core, against the bare loop's and FastAPI's."""
    s = report["summary"]
    kafka = 1e6 / s["bare_aiokafka_cpu_us_per_msg"]
    http = 1e6 / s["bare_fastapi_cpu_us_per_req"]
    rows = []
    for kind, label in (
        ("single", "at the sustained single-message rate"),
        ("batch", "at the sustained batch rate"),
    ):
        cores = s["msg_per_s_per_core"].get(kind)
        if not cores:
            continue
        for p in PROCESSES:
            value = cores.get(p, math.nan)
            yardstick = http if p == "ingest" and kind == "single" else kafka
            name = "FastAPI" if p == "ingest" and kind == "single" else "aiokafka loop"
            rows.append(
                [
                    label,
                    p,
                    num(1e6 / value if value else math.nan),
                    num(value),
                    f"{ratio(value / yardstick)} of {name}",
                ]
            )
    burst = report["burst"]["cpu_us_per_msg"]
    for p in PROCESSES:
        if burst.get(p):
            rows.append(
                [
                    "burst (batch endpoint)",
                    p,
                    num(burst[p]),
                    num(1e6 / burst[p]),
                    f"{ratio(1e6 / burst[p] / kafka)} of aiokafka loop",
                ]
            )
    head = ["during", "process", "us CPU/msg", "msg/s per core", "÷ baseline per core"]
    return table(head, rows)


def memory(report: dict[str, Any]) -> str:
    """Return Redis memory per open case and per open timer, and the key families behind them."""
    m = report["memory"]
    lines = [
        f"{m['messages']:,} messages opened **{m['cases_opened']:,} cases** and **{m['timers_opened']:,} SLA "
        f"timers**; Redis `used_memory` grew by {m['used_memory_grown']:,} bytes.",
        "",
        table(
            ["figure", "bytes"],
            [
                [
                    "per open case, all state (used_memory grown ÷ cases)",
                    f"**{num(m['bytes_per_case_all_state'])}**",
                ],
                ["per open case, the router's keys (MEMORY USAGE)", num(m["bytes_per_case_router_keys"])],
                [
                    "per open SLA timer, the SLA service's keys (MEMORY USAGE)",
                    f"**{num(m['bytes_per_timer_sla_keys'])}**",
                ],
                [
                    "per message, the rest (ingest claims, handled-id sets, allocator)",
                    num(m["bytes_per_message_rest"]),
                ],
            ],
        ),
        "",
    ]
    before, after = m["before"]["families"], m["after"]["families"]
    rows = []
    for family, v in after.items():
        b = before.get(family, {"keys": 0, "bytes": 0})
        rows.append([f"`{family}`", num(v["keys"] - b["keys"]), num(v["bytes"] - b["bytes"])])
    lines.append(table(["key family", "keys added", "bytes added (MEMORY USAGE)"], rows))
    return "\n".join(lines)


def scaling(report: dict[str, Any]) -> str:
    """Return the bursts with 1, 3 and 6 partitions and 1 to 3 router processes."""
    s = report["summary"]
    rows = []
    for r in report["scaling"]:
        rows.append(
            [
                r["label"],
                str(r["partitions"]),
                str(r["routers"]),
                num(r["routed_rate"]),
                ratio(s.get("scaling_vs_p3r1", {}).get(r["label"], math.nan)),
                ratio(r["routed_rate"] / s["bare_aiokafka_msg_per_s"]),
                cores(r["cpu_s"]),
                *cpu_cells(r["cpu_us_per_msg"]),
                ", ".join(f"{v:.0%}" for v in r["router_share"].values()),
                f"{num(r['lag_peak'])} / {num(r['counted_lag_peak'])}",
            ]
        )
    head = ["stack", "partitions", "routers", "routed msg/s (10-90%)", "÷ p3 r1", "÷ aiokafka loop"]
    head += ["cores: stack / bench / other", *(f"{p} us/msg" for p in PROCESSES), "stack us/msg"]
    head += ["router shares", "lag peak: gauges / counters"]
    return table(head, rows)


def method(report: dict[str, Any]) -> str:
    """Return the paragraph that says how the run was made and how to read it."""
    info, o = report["machine"], report["options"]
    idle = ", ".join(f"{k} {v:.2f}" for k, v in report["idle_cores"].items())
    return (
        f"`{report['command']}`. Code from `{report['code']}`. Machine: {info['nproc']} CPUs "
        f"({info['cpu']}), load average {info['loadavg_at_start'][0]:.2f} at start and "
        f"{report['loadavg_at_end'][0]:.2f} at the end; Python {info['python']}, {info['uvicorn_stack']}, "
        f"aiokafka {info['aiokafka']}, {info['broker']}.\n\n"
        f"Probes: {o['warm']:g} s of load, then a {o['window']:g} s window; levels: {o['level_warm']:g} s, "
        f"then {o['level_window']:g} s. A probe sustains its rate when ingest accepts at least 95% of it and "
        "none of these grows by more than 5% of the rate per second: the services' summed "
        "`switchboard_*_consumer_lag_records` gauges; the backlog (messages ingest answered for, not yet on "
        "a queue topic, counted by this bench); the SLA service's lag (records on the queue topics minus its "
        "consumed counter). Each is sampled twice a second; its growth is the rise of its troughs, the "
        "lowest value of the window's last third minus that of its first third over the time between "
        "them, since lag rises between polls and drops by a whole poll. `counters` is the lag the services' "
        "own record counters give for all three hops (published upstream minus consumed), shown to check "
        "the gauges.\n\n"
        "Latency is the CaseRouted record's CreateTime (the router's producer stamps it; Tansu keeps it) "
        "minus the time the request was due in the open-loop schedule; `to reader` is when this bench's "
        "consumer saw the record. `cores: stack / bench / other` are the CPU seconds per second of the "
        "stack's processes, of this bench (load generator, reader, metrics) and of the rest of the machine "
        "(other tenants). "
        f"Cores used while the stack stood idle before the run: {idle}."
    )


def render_markdown(report: dict[str, Any], plots: list[str]) -> str:
    """Return the markdown report."""
    checks = [r["delivery"] for r in report["probes"] + report["levels"]] + [
        s["delivery"] for s in [report["burst"], *report["scaling"]]
    ]
    missing = sum(d["missing"] for d in checks)
    duplicates = sum(d["duplicates"] for d in checks)
    accepted = sum(d["accepted"] for d in checks)
    lines = [
        f"# End to end, webhook to queue topic, {report['started_at']}",
        "",
        method(report),
        "",
        "## Headline",
        "",
        headline(report),
        "",
        "## Baselines (same run)",
        "",
        baselines(report),
        "",
        "## Search for the sustained rates",
        "",
        probes(report),
        "",
        "## Latency at 10%, 50% and 90% of the sustained rates",
        "",
        levels(report),
        "",
        "## Cost per message and messages per second per core",
        "",
        per_core(report),
        "",
        "## Redis memory",
        "",
        memory(report),
        "",
        "## Scaling: partitions and router instances (bursts through the batch endpoint)",
        "",
        scaling(report),
        "",
        "## Delivery",
        "",
        f"Across every measured run: {accepted:,} messages accepted, {missing} missing from the queue "
        f"topics, {duplicates} routed twice.",
        "",
    ]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


# -- plots -------------------------------------------------------------------------------------------


def write_plots(report: dict[str, Any], stem: Path) -> list[Path]:
    """Draw the four PNGs next to the report; return their paths (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plots")
        return []
    paths = []
    for name, draw in (
        ("throughput", plot_throughput),
        ("latency", plot_latency),
        ("per-core", plot_per_core),
        ("scaling", plot_scaling),
    ):
        fig = draw(plt, report)
        if fig is None:
            continue
        path = stem.parent / f"{stem.name}-{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


COLOURS = {"single": "tab:blue", "batch": "tab:orange"}


def plot_throughput(plt: Any, report: dict[str, Any]) -> Any:
    """Draw achieved (routed) rate against offered rate, the sustained rates marked."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    top = 0.0
    for kind in ("single", "batch"):
        runs = [r for r in report["probes"] + report["levels"] if r["kind"] == kind]
        runs.sort(key=lambda r: r["offered"])
        if not runs:
            continue
        x = [r["offered"] for r in runs]
        ax.plot(x, [r["routed_rate"] for r in runs], "-", color=COLOURS[kind], alpha=0.4)
        for r in runs:
            filled = r["sustained"]
            ax.plot(
                r["offered"],
                r["routed_rate"],
                "o",
                color=COLOURS[kind],
                markerfacecolor=COLOURS[kind] if filled else "white",
                markersize=7,
            )
        sustained = report["sustained"][kind]
        if sustained:
            at_least = "" if report.get("sustained_bounded", {}).get(kind, True) else "≥ "
            ax.axvline(
                sustained,
                color=COLOURS[kind],
                linestyle=":",
                linewidth=1.5,
                label=f"sustained, {kind}: {at_least}{sustained:,.0f} msg/s",
            )
        top = max(top, *x, *(r["routed_rate"] for r in runs))
    ax.plot([0, top * 1.05], [0, top * 1.05], "--", color="grey", linewidth=1, label="routed = offered")
    ax.plot([], [], "o", color=COLOURS["single"], label="POST /v1/messages")
    ax.plot(
        [],
        [],
        "o",
        color=COLOURS["batch"],
        label=f"POST /v1/messages/batch ({report['options']['batch_size']})",
    )
    ax.plot([], [], "o", color="black", markerfacecolor="white", label="lag grows: not sustained")
    s = report["summary"]
    ax.set_title(
        "End to end, webhook to queue topic: routed rate against offered rate\n"
        f"same run: bare aiokafka loop {s['bare_aiokafka_msg_per_s']:,.0f} msg/s, "
        f"bare FastAPI {s['bare_fastapi_req_per_s']:,.0f} req/s",
        fontsize=10,
    )
    ax.set_xlabel("offered messages/s (open loop)")
    ax.set_ylabel("messages/s routed to the queue topics (in the window)")
    ax.set_xlim(0, top * 1.05)
    ax.set_ylim(0, top * 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    return fig


def plot_latency(plt: Any, report: dict[str, Any]) -> Any:
    """Draw p50 and p99 latency at 10%, 50% and 90% of each sustained rate."""
    runs = report["levels"]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    labels = [f"{r['kind']}\n{r['label']} ({r['offered']:,.0f}/s)" for r in runs]
    x = range(len(runs))
    p50 = [r["latency_s"]["to_queue"]["p50"] * 1000 for r in runs]
    p99 = [r["latency_s"]["to_queue"]["p99"] * 1000 for r in runs]
    ax.bar([i - 0.2 for i in x], p50, width=0.4, label="p50", color="tab:blue")
    ax.bar([i + 0.2 for i in x], p99, width=0.4, label="p99", color="tab:red")
    for i, (a, b) in enumerate(zip(p50, p99, strict=True)):
        ax.annotate(f"{a:,.0f}", (i - 0.2, a), ha="center", va="bottom", fontsize=8)
        ax.annotate(f"{b:,.0f}", (i + 0.2, b), ha="center", va="bottom", fontsize=8)
    bare = {round(b["share"], 2): b for b in report.get("bare_latency", [])}
    shown = False
    for i, r in enumerate(runs):
        b = bare.get(round(float(r["label"].rstrip("%")) / 100, 2)) if r["kind"] == "single" else None
        if b:
            ax.plot(
                [i - 0.4, i + 0.4],
                [b["p99"] * 1000] * 2,
                color="black",
                linewidth=2,
                label=None if shown else "bare FastAPI p99, same rate",
            )
            shown = True
    ax.set_yscale("log")
    # Room above the tallest bar for the legend.
    ax.set_ylim(top=max(p99) * 4)
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylabel("ms from the request's due time to the CaseRouted record (log)")
    ax.set_title(
        "Latency per message, webhook to queue topic, at 10/50/90% of the sustained rate", fontsize=10
    )
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="upper left", ncol=3)
    return fig


def plot_per_core(plt: Any, report: dict[str, Any]) -> Any:
    """Draw each process's messages per second per core at the sustained rates."""
    s = report["summary"]
    kinds = [k for k in ("single", "batch") if s["msg_per_s_per_core"].get(k)]
    if not kinds:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    height = 0.8 / len(kinds)
    for j, kind in enumerate(kinds):
        values = [s["msg_per_s_per_core"][kind].get(p, 0.0) for p in PROCESSES]
        ys = [i + j * height for i in range(len(PROCESSES))]
        ax.barh(ys, values, height=height, color=COLOURS[kind], label=f"at the sustained {kind} rate")
        for y, v in zip(ys, values, strict=True):
            ax.annotate(
                f"{v:,.0f}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
            )
    kafka = 1e6 / s["bare_aiokafka_cpu_us_per_msg"]
    http = 1e6 / s["bare_fastapi_cpu_us_per_req"]
    ax.axvline(kafka, color="black", linestyle="--", label=f"bare aiokafka loop ({kafka:,.0f})")
    ax.axvline(http, color="grey", linestyle=":", label=f"bare FastAPI endpoint ({http:,.0f})")
    ax.set_yticks([i + height * (len(kinds) - 1) / 2 for i in range(len(PROCESSES))], PROCESSES)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("messages per second per core (1 / CPU seconds per message; log)")
    ax.set_title("What each process costs: messages per second per core, same run", fontsize=10)
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_scaling(plt: Any, report: dict[str, Any]) -> Any:
    """Draw burst throughput, and each process's CPU per message, against partitions and router instances."""
    runs = report["scaling"]
    main = report["options"]["partitions"]
    by_partitions = sorted((r for r in runs if r["routers"] == 1), key=lambda r: r["partitions"])
    by_routers = sorted((r for r in runs if r["partitions"] == main), key=lambda r: r["routers"])
    if len(by_partitions) < 2 and len(by_routers) < 2:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharey="row")
    colours = dict(zip(PROCESSES, plt.get_cmap("tab10").colors, strict=False))
    for column, group, key, title in (
        (0, by_partitions, "partitions", "topic partitions (1 router)"),
        (1, by_routers, "routers", f"router processes ({main} partitions)"),
    ):
        x = [str(r[key]) for r in group]
        top, bottom = axes[0][column], axes[1][column]
        rates = [r["routed_rate"] for r in group]
        top.bar(x, rates, color="tab:green", alpha=0.8)
        for i, v in enumerate(rates):
            top.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=9)
        top.set_title(title, fontsize=10)
        top.grid(axis="y", alpha=0.3)
        base = [0.0] * len(group)
        for process in PROCESSES:
            values = [r["cpu_us_per_msg"].get(process, 0.0) for r in group]
            bottom.bar(x, values, bottom=base, color=colours[process], label=process)
            base = [b + v for b, v in zip(base, values, strict=True)]
        for i, total in enumerate(base):
            bottom.annotate(f"{total:,.0f}", (i, total), ha="center", va="bottom", fontsize=9)
        bottom.set_xlabel(title)
        bottom.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("messages/s routed (burst, 10-90%)")
    axes[1][0].set_ylabel("CPU microseconds per message")
    top_rate = max(r["routed_rate"] for r in runs)
    axes[0][0].set_ylim(0, top_rate * 1.2)
    handles, labels = axes[1][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(PROCESSES), fontsize=9)
    fig.suptitle(
        f"Scaling: a burst of {runs[0]['messages']:,} messages through the batch endpoint per stack\n"
        "(a fresh stack per partition count; router instances added in turn to one fresh stack)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
