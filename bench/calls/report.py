"""The results of ``bench/tool_calls.py`` as a Markdown table for the README and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    sizes = results["sizes"]
    lines = []
    if results.get("label"):
        lines += [f"**{results['label']}**", ""]
    pinned = "server on CPU 0, load generator on CPU 1" if machine["pinned"] else "not pinned"
    lines += [
        f"Generated {results['generated']} by `bench/run` ({results['mode']} run: {sizes['rounds']} ABBA rounds; "
        f"{sizes['calls_single']} calls at 1 client, {sizes['calls_each']} per client at {sizes['concurrency']}); "
        f"{machine['cpus']} CPUs, Python {machine['python']}, {pinned}.",
        "",
        "| tool | clients | bare median ms | ringfence median ms | **overhead** | bare p99 ms | ringfence p99 ms "
        "| bare calls/s | ringfence calls/s | bare CPU ms/call | ringfence CPU ms/call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["comparison"]:
        bare, ringfence = row["bare"], row["ringfence"]
        lines.append(
            f"| {row['tool']} | {row['clients']} | {_ms(bare['median_ms'])} | {_ms(ringfence['median_ms'])} "
            f"| **{100 * (row['overhead'] - 1):+.0f}%** | {_ms(bare['p99_ms'])} | {_ms(ringfence['p99_ms'])} "
            f"| {_rate(bare['calls_per_s'])} | {_rate(ringfence['calls_per_s'])} "
            f"| {_ms(bare['server_cpu_ms_per_call'])} | {_ms(ringfence['server_cpu_ms_per_call'])} |"
        )
    if results.get("scaling"):
        lines += [
            "",
            f"ringfence on PostgreSQL and Redis, {sizes['concurrency']} clients spread over the processes "
            "(servers and generator share all CPUs):",
            "",
            "| processes | tool | median ms | p99 ms | calls/s | server CPU ms/call |",
            "| ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for row in results["scaling"]:
            lines.append(f"| {row['processes']} | {row['tool']} | {_ms(row['median_ms'])} | {_ms(row['p99_ms'])} "
                         f"| {_rate(row['calls_per_s'])} | {_ms(row['server_cpu_ms_per_call'])} |")
    lines += ["", "Each check alone, in-process (median of many calls):", "",
              "| check | what is timed | µs per call | per second (one core) |", "| --- | --- | ---: | ---: |"]
    for cost in results["guards"]:
        lines.append(f"| {cost['name']} | {cost['what']} | {cost['median_us']:,.1f} | {_rate(cost['per_second'])} |")
    generator = results.get("generator_cpu_us_per_call")
    if generator:
        lines += ["", f"Load generator CPU per call: {generator['raw']:.0f} µs with its raw HTTP/1.1 client, "
                      f"{generator['httpx']:.0f} µs with httpx."]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["comparison"]
    panels = 3 if results.get("scaling") else 2
    figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2))
    labels = [f"{row['tool'].split('_')[0]}\n{row['clients']} client{'s' if row['clients'] > 1 else ''}"
              for row in rows]
    positions = range(len(rows))
    width = 0.38
    for axis, metric, title in ((axes[0], "median_ms", "median latency (ms)"), (axes[1], "p99_ms", "p99 latency (ms)")):
        axis.bar([p - width / 2 for p in positions], [r["bare"][metric] for r in rows], width, label="bare MCPServer",
                 color="#9aa5b1")
        axis.bar([p + width / 2 for p in positions], [r["ringfence"][metric] for r in rows], width,
                 label="ringfence", color="#2f6db5")
        axis.set_xticks(list(positions), labels, fontsize=8)
        axis.set_yscale("log")  # 1 and 32 clients differ by two orders of magnitude
        axis.set_title(title)
        axis.legend(fontsize=8)
    if results.get("scaling"):
        axis = axes[2]
        scaling = results["scaling"]
        tools = sorted({row["tool"] for row in scaling})
        for offset, count in ((-width / 2, 1), (width / 2, 2)):
            values = [next(r["calls_per_s"] for r in scaling if r["tool"] == t and r["processes"] == count)
                      for t in tools]
            axis.bar([i + offset for i in range(len(tools))], values, width,
                     label=f"{count} process{'es' if count > 1 else ''}", color="#2f6db5" if count == 2 else "#9ecae1")
        axis.set_xticks(list(range(len(tools))), tools, fontsize=8)
        axis.set_title("ringfence throughput (calls/s), PostgreSQL + Redis")
        axis.legend(fontsize=8)
    figure.suptitle(f"ringfence vs bare MCP server ({results['machine']['cpus']} CPUs, {results['mode']} run)",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_outputs(results: dict[str, Any], folder: Path) -> None:
    (folder / "tool_calls.md").write_text(markdown(results))
    plot(results, folder / "tool_calls.png")
