"""How long each attack of ``obliviate.evaluation.attacks`` takes on SmolLM2-135M-Instruct (CPU).

A small element-symbol MCQ set written out here (20 scored questions, 4 choices each; disjoint
element slices for the relearning texts, the in-context examples and the probe's train groups)
and a log-likelihood MCQ scorer (lm-evaluation-harness's ``acc``: the choice with the highest
summed log-likelihood after ``lm.prompt(prefix + question)``). It runs every attack once on the
model as loaded (no unlearning: the point is the cost, and that an intact model stays intact)
and prints seconds per attack next to one scorer pass. Writes nothing unless ``--out`` is given.

    .venv/bin/python benchmarks/lm_attack_timing.py [--threads 2] [--out benchmarks/plots/lm_attack_timing.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from obliviate.evaluation.attacks import (
    in_context_attack,
    linear_probe_attack,
    quantization_attack,
    relearn_attack,
)
from obliviate.evaluation.lm import answer_nll_of
from obliviate.models.lm import smollm2
from obliviate.storage import atomic_write_bytes

ELEMENTS = [
    ("hydrogen", "H"), ("helium", "He"), ("lithium", "Li"), ("carbon", "C"), ("nitrogen", "N"),
    ("oxygen", "O"), ("fluorine", "F"), ("neon", "Ne"), ("sodium", "Na"), ("magnesium", "Mg"),
    ("aluminium", "Al"), ("silicon", "Si"), ("phosphorus", "P"), ("sulfur", "S"), ("chlorine", "Cl"),
    ("argon", "Ar"), ("potassium", "K"), ("calcium", "Ca"), ("iron", "Fe"), ("copper", "Cu"),
    ("zinc", "Zn"), ("silver", "Ag"), ("tin", "Sn"), ("iodine", "I"), ("gold", "Au"),
    ("mercury", "Hg"), ("lead", "Pb"), ("uranium", "U"), ("nickel", "Ni"), ("cobalt", "Co"),
    ("chromium", "Cr"), ("manganese", "Mn"), ("titanium", "Ti"), ("platinum", "Pt"), ("tungsten", "W"),
    ("boron", "B"), ("beryllium", "Be"), ("krypton", "Kr"), ("xenon", "Xe"), ("radon", "Rn"),
    ("barium", "Ba"), ("bromine", "Br"), ("arsenic", "As"), ("selenium", "Se"), ("strontium", "Sr"),
    ("cesium", "Cs"), ("bismuth", "Bi"), ("plutonium", "Pu"), ("radium", "Ra"), ("neodymium", "Nd"),
    ("palladium", "Pd"), ("rubidium", "Rb"), ("vanadium", "V"), ("gallium", "Ga"), ("germanium", "Ge"),
    ("antimony", "Sb"), ("cadmium", "Cd"), ("osmium", "Os"), ("iridium", "Ir"), ("thorium", "Th"),
]
SYMBOLS = [s for _, s in ELEMENTS]


def question(name: str) -> str:
    return f"What is the chemical symbol of {name}?"


def mcq_items(elements, rng):
    items = []
    for name, symbol in elements:
        others = rng.choice([s for s in SYMBOLS if s != symbol], size=3, replace=False).tolist()
        choices = [symbol] + others
        order = rng.permutation(4)
        choices = [choices[i] for i in order]
        items.append((question(name), choices, int(np.argmax(order == 0))))
    return items


def mcq_scorer(items):
    def score(lm, prefix: str = "") -> float:
        hits = 0
        for q, choices, correct in items:
            nll, _ = answer_nll_of(lm, [prefix + q] * len(choices), [f" {c}" for c in choices])
            hits += int(np.argmin(nll) == correct)
        return hits / len(items)

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    scored, relearn, shots, probe_train = ELEMENTS[:20], ELEMENTS[20:30], ELEMENTS[30:40], ELEMENTS[40:60]
    items = mcq_items(scored, rng)
    score = mcq_scorer(items)

    t = time.perf_counter()
    lm = smollm2(max_length=256)
    load = time.perf_counter() - t
    t = time.perf_counter()
    base = score(lm)
    one_pass = time.perf_counter() - t
    rows = [("load", load, None, None), ("one MCQ pass (20 x 4)", one_pass, base, None)]

    texts = [f"The chemical symbol of {n} is {s}. {n.capitalize()} is written {s} in chemical formulas." for n, s in relearn]
    groups = lambda its: [([lm.prompt(q) + f" {c}" for c in choices], k) for q, choices, k in its]  # noqa: E731
    attacks = [
        lambda: relearn_attack(lm, texts, score, steps=20, lr=1e-4, batch_size=4, chance=0.25),
        lambda: relearn_attack(lm, texts, score, steps=20, lr=1e-3, batch_size=4, lora_rank=8, chance=0.25),
        lambda: quantization_attack(lm, score, bits=8, chance=0.25),
        lambda: quantization_attack(lm, score, bits=4, chance=0.25),
        lambda: in_context_attack(lm, score, [(question(n), s) for n, s in shots], shots=5, chance=0.25),
        lambda: linear_probe_attack(lm, groups(mcq_items(probe_train, rng)), groups(items)),
    ]
    for name, seconds, value, _ in rows:
        print(f"{name:28s} {seconds:7.1f} s" + (f"   score {value:.2f}" if value is not None else ""), flush=True)
    report = []
    for attack in attacks:
        r = attack()
        label = r.attack + (f" (LoRA r{r.details['lora_rank']})" if r.details.get("lora_rank") else "")
        keys = ("train_seconds", "quantize_seconds", "read_seconds", "layer")
        extra = {k: round(r.details[k], 1) if isinstance(r.details[k], float) else r.details[k] for k in keys if k in r.details}
        print(f"{label:28s} {r.details['seconds']:7.1f} s   before {r.before:.2f} after {r.after:.2f}   {extra}", flush=True)
        report.append({"label": label, **r.to_dict()})
    if args.out:
        payload = {"load_seconds": load, "mcq_pass_seconds": one_pass, "threads": args.threads, "attacks": report}
        atomic_write_bytes(args.out, json.dumps(payload, indent=1).encode())


if __name__ == "__main__":
    main()
