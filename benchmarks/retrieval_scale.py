"""Delete latency and search latency of the document store at 100,000 documents.

Documents: seeded synthetic texts (12 to 40 words drawn from a 20,000-word vocabulary with a Zipf law, so BM25
postings have realistic long heads) with **synthetic unit vectors of the MiniLM width (384)** passed to
``store.add(..., vectors=...)``: embedding 100,000 texts with all-MiniLM-L6-v2 takes about 10 minutes on one quiet
core, and the vectors' values do not change the index's cost. Search queries are embedded by the same synthetic
rule (a random unit vector), so the timed search excludes the embedder; the MiniLM query embedding is timed
separately (one sentence).

Timed, per operation, with one torch/FAISS/BLAS thread:

- ``delete``: ``store.delete([id])`` of one random live document, end to end: the SQLite transaction (tombstone,
  row delete with secure_delete, generation bump, commit with fsync of the write-ahead log), the vector index
  update (row swap), the BM25 postings removal, the cache clear. The first delete also unlinks the two snapshot
  files; it is reported apart.
- ``search``: ``store.search(query, k=5, mode=...)`` for hybrid, vector and keyword, cache cleared before each;
  then the two index calls of a hybrid search alone (FAISS top 50, BM25 top 50), and the load average around them.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/retrieval_scale.py --docs 100000 --out /tmp/retrieval_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np

from obliviate.retrieval.embed import Embedder


class SyntheticEmbedder(Embedder):
    """A stand-in with MiniLM's width: random unit vectors (seeded by the text's hash) for queries."""

    name = "synthetic-384"
    dim = 384

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(abs(hash(t)) % (2**32))
            v = rng.standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


def texts_and_vectors(n: int, seed: int):
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(20_000)])
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / ranks
    p /= p.sum()
    lengths = rng.integers(12, 41, size=n)
    words = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    texts, at = [], 0
    for length in lengths:
        texts.append(" ".join(vocab[words[at : at + length]]))
        at += length
    vecs = rng.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return texts, vecs


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--deletes", type=int, default=300)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", default=None, help="where the store is built (default: a temp folder on disk)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    from obliviate.retrieval import DocumentStore

    folder = args.folder or tempfile.mkdtemp(prefix="obliviate-scale-", dir=os.environ.get("TMPDIR"))
    result = {"args": vars(args), "folder": folder}
    t0 = time.perf_counter()
    texts, vecs = texts_and_vectors(args.docs, args.seed)
    result["generate_seconds"] = time.perf_counter() - t0
    store = DocumentStore(folder, embedder=SyntheticEmbedder(), create=True)
    t0 = time.perf_counter()
    step = 10_000
    for start in range(0, args.docs, step):
        store.add(texts[start : start + step], vectors=vecs[start : start + step])
        print(f"added {start + step} in {time.perf_counter() - t0:.0f} s", flush=True)
    result["add_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.save_indexes()
    result["snapshot_seconds"] = time.perf_counter() - t0
    store.close()
    t0 = time.perf_counter()
    store = DocumentStore(folder, embedder=SyntheticEmbedder())
    result["open_from_snapshots_seconds"] = time.perf_counter() - t0
    result["open_repairs"] = store.repairs
    rng = np.random.default_rng(args.seed + 1)
    queries = [" ".join(texts[int(i)].split()[:6]) for i in rng.integers(0, args.docs, size=args.searches)]
    result["load_average_before_search"] = os.getloadavg()
    for mode in ("hybrid", "vector", "keyword"):
        times = []
        for q in queries:
            store._cache.clear()
            t = time.perf_counter()
            store.search(q, k=5, mode=mode)
            times.append(time.perf_counter() - t)
        result[f"search_{mode}_ms"] = {"p50": pct(times, 50), "p90": pct(times, 90), "p99": pct(times, 99)}
        print(mode, result[f"search_{mode}_ms"], flush=True)
    # the two index calls a hybrid search makes (top 50 each), without the store around them (query embedding,
    # generation check, fusion, the table read of the k hits): what the store adds is hybrid minus their sum
    embedded = [store.embed_query(q) for q in queries]
    for name, call in (("vector_index_top50", lambda i: store.vectors.search(embedded[i], 50)),
                       ("keyword_index_top50", lambda i: store.keywords.search(queries[i], 50))):
        times = []
        for i in range(len(queries)):
            t = time.perf_counter()
            call(i)
            times.append(time.perf_counter() - t)
        result[f"{name}_ms"] = {"p50": pct(times, 50), "p90": pct(times, 90), "p99": pct(times, 99)}
        print(name, result[f"{name}_ms"], flush=True)
    result["load_average_after_search"] = os.getloadavg()
    victims = rng.choice(np.arange(1, args.docs + 1), size=args.deletes + 1, replace=False)
    t = time.perf_counter()
    store.delete([int(victims[0])])
    result["first_delete_ms (unlinks the snapshots)"] = (time.perf_counter() - t) * 1e3
    times, phases = [], {}
    for v in victims[1:]:
        t = time.perf_counter()
        done = store.delete([int(v)])
        times.append(time.perf_counter() - t)
        for name, seconds in done.phases.items():
            phases.setdefault(name, []).append(seconds)
    result["delete_ms"] = {"p50": pct(times, 50), "p90": pct(times, 90), "p99": pct(times, 99), "max": pct(times, 100)}
    result["delete_phase_ms_p50"] = {name: pct(xs, 50) for name, xs in phases.items()}
    print("delete", result["delete_ms"], flush=True)
    times = []  # the floor: one durable SQLite commit that changes one meta row (the fsync of the WAL)
    for k in range(50):
        t = time.perf_counter()
        with store._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('benchmark', ?)", (str(k),))
        times.append(time.perf_counter() - t)
    result["bare_durable_commit_ms"] = {"p50": pct(times, 50), "p90": pct(times, 90)}
    print("bare commit", result["bare_durable_commit_ms"], flush=True)
    gone = [int(v) for v in victims]
    presence = store.presence(gone)
    result["deleted_still_present"] = {k: len(v) for k, v in presence.items()}
    try:
        from obliviate.retrieval.embed import MiniLMEmbedder

        emb = MiniLMEmbedder()
        emb.embed(["warm up"])
        times = []
        for q in queries[:30]:
            t = time.perf_counter()
            emb.embed([q])
            times.append(time.perf_counter() - t)
        result["minilm_query_embed_ms"] = {"p50": pct(times, 50), "p90": pct(times, 90)}
    except Exception as exc:  # noqa: BLE001 - optional part
        result["minilm_query_embed_ms"] = f"not measured: {exc}"
    t0 = time.perf_counter()
    store.compact()
    result["compact_seconds"] = time.perf_counter() - t0
    store.close()
    result["load_average"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
