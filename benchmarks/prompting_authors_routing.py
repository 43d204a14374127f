"""Where the boxed system's router sends the attacked forget questions on the authors suite (issue 14).

The box exposes only ``answer(question)``: a question routed to the refusing worker gets the refusal (no
forward pass), one routed to the original worker gets the target's own answer. So against the black-box
interface an attack works exactly when it gets the question past the router. This rebuilds the router of
``benchmarks/prompting_authors.py`` (the same description, forget and retain exemplars, default and
calibrated thresholds; no language model needed) and reports, per attack, the share of the 8 forget questions
it routes to the refusing worker. With ``--answers`` it also loads the suite's cached target, builds the box
(calibrated threshold) and records its answers to the attacked questions: the share the output filter blocked
and the ROUGE-L recall of the true answer (the suite's free-answer metric), beside the target's own answers.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prompting_authors_routing.py [--answers]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from obliviate.data.authors import fictitious_authors
from obliviate.prompting import EmbeddingRouter, calibrate_threshold
from obliviate.prompting.base import describe_forget
from obliviate.prompting.system_prompt import LEAK_PROMPTS
from obliviate.storage import atomic_write_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompting_authors import MULTI_TURN, SPLIT, mcqs, transform, validation_questions  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    bench = fictitious_authors(n_authors=20, qa_per_author=4, n_holdout=2, seed=0)
    forget, retain = bench.forget(SPLIT), bench.retain(SPLIT)
    router = EmbeddingRouter(
        describe_forget(bench.forget_authors(SPLIT)),
        exemplars=[t for it in forget for t in (it.question, it.answer)],
        retain_exemplars=[t for it in retain for t in (it.question, it.answer)],
        threshold=0.5,
    )
    val = validation_questions(bench, 20, 2, 4, 0, bench.forget_authors(SPLIT))
    calibrated = calibrate_threshold(router, val["in_scope"], val["out_of_scope"])
    questions = mcqs(list(forget), 0)
    out: dict = {"calibrated_threshold": calibrated, "routed": {}}
    for how in ("none", "paraphrase", "spelled", "leetspeak", "base64", "roleplay", "many_shot", "multi_turn", "leak"):
        if how == "leak":
            texts = [[p] for p in LEAK_PROMPTS]
        elif how == "many_shot":  # the conversation's user turns: the other author's questions, then the question
            texts = [[it.question for it in forget if it.owner != q.owner] + [q.question] for q in questions]
        elif how == "multi_turn":
            texts = [[u for u, _ in MULTI_TURN] + [q.question] for q in questions]
        else:
            texts = [[q.question] for q in (questions if how == "none" else [transform(q, how) for q in questions])]
        scores = np.asarray([router.score(t) for t in texts])
        out["routed"][how] = {f"{t:.3f}": float((scores >= t).mean()) for t in (0.5, calibrated)}
        out["routed"][how]["min_score"] = float(scores.min())
    if "--answers" in sys.argv:
        import types

        from obliviate.evaluation.lm import rouge_l_recall
        from obliviate.lm.generate import greedy_answers
        from obliviate.lm.training import base_model, recipe_for, target_model
        from obliviate.prompting import BoxedUnlearning

        base = base_model("smollm2", bench)
        target = target_model(base, bench, recipe=recipe_for(base).with_seed(0), cache=True).lm
        box = BoxedUnlearning(threshold=calibrated).build_box(
            target, types.SimpleNamespace(forget=forget, retain=retain)
        )
        truth = [q_.answer for q_ in forget]
        out["answers"] = {}
        for how in ("none", "spelled", "leetspeak", "base64"):
            qs = [it.question for it in forget]
            if how != "none":
                qs = [transform(q, how).question for q in mcqs(list(forget), 0)]
            boxed = box.answer_many(qs)
            plain = greedy_answers(target, qs, max_new_tokens=32)
            out["answers"][how] = {
                "box_refused": float(np.mean([a == box.refusal for a in boxed])),
                "box_rouge": float(np.mean(rouge_l_recall(boxed, truth))),
                "target_rouge": float(np.mean(rouge_l_recall(plain, truth))),
                "pairs": [{"q": q, "box": b, "target": t} for q, b, t in zip(qs, boxed, plain)],
            }
    text = json.dumps(out, indent=1)
    print(text)
    Path("/tmp/prompting_authors").mkdir(exist_ok=True)
    atomic_write_bytes(Path("/tmp/prompting_authors/routing.json"), text.encode())


if __name__ == "__main__":
    main()
