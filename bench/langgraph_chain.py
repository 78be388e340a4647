"""The same chain of steps as a LangGraph graph with its PostgreSQL checkpointer.

A graph of ``steps`` nodes in a line; each node bumps a counter in the state. The graph runs with
``durability="sync"``: the checkpoint of a step is written before the next step starts, which is
what "durable per step" means for the runtime too. ``chains`` threads (graph runs, each its own
``thread_id``) are shared out over ``concurrency`` processes, as the runtime's chains are over a
worker's ``concurrency`` pool processes; the database server is the same.

Installed only for the benchmark: ``pip install -e '.[bench]'`` (``make bench`` does).
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from typing import TypedDict


class State(TypedDict):
    step: int


def _run_share(args: tuple[str, int, list[int]]) -> list[tuple[int, float, float]]:
    """Run this process's chains one after the other; (chain, start, end) per step."""
    url, steps, chains = args
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.graph import END, START, StateGraph
    from psycopg import Connection
    from psycopg.rows import dict_row

    marks: list[tuple[int, float, float]] = []
    current: dict[str, float] = {}

    def node(state: State) -> State:
        now = time.time()
        if "start" in current:
            # A step ends when the next one starts: its checkpoint has been written by then.
            marks.append((int(current["chain"]), current["start"], now))
        current["start"] = now
        return {"step": state["step"] + 1}

    graph = StateGraph(State)
    names = [f"step_{i}" for i in range(steps)]
    for name in names:
        graph.add_node(name, node)
    graph.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    with Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        compiled = graph.compile(checkpointer=PostgresSaver(conn))
        for chain in chains:
            current.clear()
            current["chain"] = chain
            compiled.invoke({"step": 0}, {"configurable": {"thread_id": f"chain-{chain}"}}, durability="sync")
            marks.append((chain, current["start"], time.time()))  # the last step ends with the run
    return marks


def setup(url: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row

    with Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        PostgresSaver(conn).setup()
        for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
            conn.execute(f"TRUNCATE {table}")


def run(url: str, *, steps: int, chains: int, concurrency: int) -> list[tuple[int, float, float]]:
    """Run ``chains`` graphs of ``steps`` steps; returns (chain, start, end) for every step."""
    setup(url)
    shares = [(url, steps, list(range(i, chains, concurrency))) for i in range(concurrency)]
    with multiprocessing.get_context("spawn").Pool(concurrency) as pool:
        results = pool.map(_run_share, shares)
    return [mark for share in results for mark in share]
