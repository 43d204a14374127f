"""The same facts in a document store or in the weights: deletion against weight unlearning, side by side (issue 13).

Min et al. 2023 (SILO) keep what may have to be deleted out of the weights: an external store answers through
retrieval and a deletion is a store delete. This benchmark measures that trade on one set of facts and one set of
questions, with SmolLM2-135M-Instruct on both sides.

Facts: the targets of :func:`obliviate.retrieval.corpus.planted_corpus` (fictional people from Faker -- a birth city
the base model cannot know -- and real facts -- element symbols and capitals -- it may), half forgotten (every other
one), half retained; each target has a direct and a paraphrased question, and an answer is correct when it states
the target's value as whole words (:func:`obliviate.retrieval.attacks.contains_fact`).

(a) **Store**: the whole planted corpus (targets, their planted near-duplicates, quotations and paraphrases, hard
    negatives, background) in a :class:`DocumentStore` (MiniLM vectors + BM25, hybrid search), answered by
    :class:`RAGAnswerer` with the base model. Deletion: scope expansion under the default
    :class:`ExpansionPolicy`, then one store delete per request.
(b) **Weights**: the base model fine-tuned (the authors suite's LoRA recipe, :data:`SMOLLM2_FINETUNE`, with more
    epochs since there are few items) on two QA pairs per target: the direct question answered with the target
    document, and "What does the record say about X?" answered with its planted paraphrase (the facts the store
    holds, in the two forms the store holds them). The paraphrased question is never trained on. Deletion:
    the LM unlearning methods (``--methods``; the knowledge/authors suites' best: grad_diff, npo, rmu) with their
    defaults for the model's family, on a request naming the forgotten targets' owners; the retained targets'
    items are the retain set.

Scored on the same 2 x targets questions: accuracy before deletion (the utility gap: the store's answerer against
the fine-tuned weights against the base model alone), after deletion on forget direct / paraphrased questions and
on the retained targets; the extraction prompts of :func:`obliviate.retrieval.attacks.extraction_prompts` on the
forgotten people (answer states the fact); a relearning attack on the weights (Lynch et al. 2024, "Eight methods
to evaluate robust unlearning in LLMs", Sec. 4.5; Hu et al. 2024, "Jogging the memory of unlearned LLMs through
targeted relearning attacks"): fine-tune the unlearned model on half of the forgotten targets (set A) and ask about
the other half (set B), which relearning A cannot teach; the same relearning of the base model (which never saw B)
is the control. The store has nothing to relearn from: its deleted rows are gone. Cost: setup (index vs
fine-tune), deletion (expansion + delete vs unlearning) and per question (retrieval + a longer prompt vs the
question alone).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/retrieval_vs_weights.py --out /tmp/retrieval_vs_weights.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import replace

import torch

from obliviate.data.authors import QADataset, QAItem
from obliviate.data.request import ForgetRequest
from obliviate.lm.generate import greedy_answers
from obliviate.lm.training import SMOLLM2_FINETUNE, finetune
from obliviate.retrieval import DocumentStore
from obliviate.retrieval.attacks import contains_fact, extraction_prompts
from obliviate.retrieval.corpus import planted_corpus
from obliviate.retrieval.expand import ExpansionPolicy, expand
from obliviate.retrieval.rag import RAGAnswerer

FORMS = ("direct", "paraphrased")


def subject_of(target) -> str:
    """Who or what a target is about: the person's name, the element or the country."""
    if target.kind == "person":
        return target.questions[0].removeprefix("Where was ").removesuffix(" born?")
    return target.owner.split(":", 1)[1]


def qa_data(corpus, targets) -> QADataset:
    """Two QA items per target (see the module docstring); perturbed answers put other targets' values of the
    same kind in the target's text (used by the methods that need them)."""
    items, next_id = [], 0
    for t in targets:
        paraphrase = corpus.texts[corpus.copies[t.key]["paraphrase"][0]]
        others = [o.answer for o in targets if o.kind == t.kind and o.answer != t.answer][:3]
        for question, answer in ((t.questions[0], t.text), (f"What does the record say about {subject_of(t)}?",
                                                              paraphrase)):
            perturbed = tuple(answer.replace(t.answer, o) for o in others) or (answer,)
            items.append(QAItem(next_id, t.owner, question, answer, paraphrase if answer != paraphrase else t.text,
                                perturbed))
            next_id += 1
    return QADataset(tuple(items), name="planted-facts")


def rate(flags: list[bool]) -> dict:
    """Share with its binomial standard error and the sample size."""
    n = len(flags)
    p = sum(flags) / n if n else float("nan")
    return {"rate": p, "se": math.sqrt(p * (1 - p) / n) if n else float("nan"), "n": n}


def table(correct: dict[tuple[str, str], bool], forget_keys: set[str], keys=None) -> dict:
    """Accuracy per (forget|retain) x (direct|paraphrased) from {(target key, form): correct}."""
    out = {}
    for role in ("forget", "retain"):
        for form in FORMS:
            flags = [v for (k, f), v in correct.items() if f == form and (k in forget_keys) == (role == "forget")
                     and (keys is None or k in keys)]
            if flags:
                out[f"{role}/{form}"] = rate(flags)
    return out


def closed_book(lm, targets, *, max_new_tokens: int = 32) -> tuple[dict, float, list]:
    """The model alone on every target's two questions: {(key, form): correct}, seconds per question, answers."""
    questions = [q for t in targets for q in t.questions]
    t0 = time.perf_counter()
    answers = greedy_answers(lm, questions, max_new_tokens=max_new_tokens, batch_size=8)
    per_q = (time.perf_counter() - t0) / len(questions)
    correct, at = {}, 0
    for t in targets:
        for form in FORMS:
            correct[(t.key, form)] = contains_fact(answers[at], t.answer)
            at += 1
    return correct, per_q, answers


def with_rag(rag, targets) -> tuple[dict, float, list]:
    questions = [q for t in targets for q in t.questions]
    t0 = time.perf_counter()
    answers = rag.answer(questions)
    per_q = (time.perf_counter() - t0) / len(questions)
    correct, at = {}, 0
    for t in targets:
        for form in FORMS:
            correct[(t.key, form)] = contains_fact(answers[at].raw, t.answer)
            at += 1
    return correct, per_q, [a.raw for a in answers]


def extraction_set(targets) -> tuple[list[str], list]:
    prompts, owners = [], []
    for t in targets:
        if t.kind != "person":
            continue
        extra = extraction_prompts(subject_of(t), first_words=" ".join(t.text.split()[:6]))
        prompts += extra
        owners += [t] * len(extra)
    return prompts, owners


def log(msg: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:6.0f} s] {msg}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--people", type=int, default=12)
    parser.add_argument("--facts", type=int, default=4)
    parser.add_argument("--background", type=int, default=150)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["grad_diff", "npo", "rmu"])
    parser.add_argument("--ft-epochs", type=int, default=10, help="fine-tuning epochs (LoRA, the authors recipe)")
    parser.add_argument("--relearn-epochs", type=int, default=5, help="relearning attack epochs on forget set A")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    load0 = os.getloadavg()
    from obliviate.models.lm import smollm2
    from obliviate.unlearning import unlearn

    base = smollm2()
    log("SmolLM2 loaded", started)
    corpus = planted_corpus(seed=args.seed, people=args.people, facts=args.facts, background=args.background)
    targets = corpus.targets
    forget, retain = targets[::2], targets[1::2]
    forget_keys = {t.key for t in forget}
    set_a, set_b = forget[::2], forget[1::2]
    result: dict = {"args": vars(args), "targets": len(targets), "forget_targets": len(forget),
                    "retain_targets": len(retain), "questions": 2 * len(targets)}

    # the model alone: what the weights know before anything is added
    base_correct, base_q, _ = closed_book(base, targets)
    result["base model (closed book)"] = table(base_correct, forget_keys)
    log(f"base closed book: {result['base model (closed book)']}", started)

    # (a) the store
    root = tempfile.mkdtemp(prefix="obliviate-rvw-")
    t0 = time.perf_counter()
    store = DocumentStore(os.path.join(root, "store"), embedder=args.embedder, create=True)
    ids = store.add(corpus.texts, owners=corpus.owners)
    index_s = time.perf_counter() - t0
    rag = RAGAnswerer(base, store, k=args.k)
    rag_before, rag_q, _ = with_rag(rag, targets)
    log(f"RAG before: {table(rag_before, forget_keys)}", started)
    policy = ExpansionPolicy()
    expand_ms, delete_ms, deleted, planted_hit, planted_all = [], [], 0, 0, 0
    for t in forget:
        doc_id = ids[corpus.target_position[t.key]]
        t1 = time.perf_counter()
        found = expand(store, [doc_id], policy=policy)
        expand_ms.append((time.perf_counter() - t1) * 1e3)
        done = store.delete(found.all_ids, reason=f"forget {t.key}")
        delete_ms.append(done.seconds * 1e3)
        deleted += len(done.ids)
        planted = {ids[p] for ps in corpus.copies[t.key].values() for p in ps}
        planted_hit += len(planted & set(done.ids))
        planted_all += len(planted)
    rag_after, _, rag_after_answers = with_rag(RAGAnswerer(base, store, k=args.k), targets)
    log(f"RAG after delete: {table(rag_after, forget_keys)}", started)
    prompts, owners = extraction_set(forget)
    rag_x = RAGAnswerer(base, store, k=args.k, max_new_tokens=48)
    x_context = sum(any(contains_fact(h.text, t.answer) for h in rag_x.retrieve(p)) for p, t in zip(prompts, owners))
    x_answers = rag_x.answer(prompts)
    store_side = {
        "setup_seconds (embed + index)": index_s,
        "documents": len(ids),
        "accuracy before": table(rag_before, forget_keys),
        "accuracy after deletion": table(rag_after, forget_keys),
        "deletion": {"requests": len(forget), "documents_deleted": deleted, "planted_copies_deleted": planted_hit,
                     "planted_copies": planted_all, "expand_ms_mean": sum(expand_ms) / len(expand_ms),
                     "delete_ms_mean": sum(delete_ms) / len(delete_ms),
                     "total_seconds": (sum(expand_ms) + sum(delete_ms)) / 1e3},
        "seconds_per_question": rag_q,
        "extraction": {"prompts": len(prompts), "context_holds_fact": x_context,
                       "answer_states_fact": sum(contains_fact(a.raw, t.answer) for a, t in zip(x_answers, owners))},
        "relearning": "not applicable: the deleted rows are gone from the table, both indexes and the cache",
        "leaks_after": [{"target": t.key, "question": q, "answer": a}
                        for (t, q), a in zip(((t, q) for t in targets for q in t.questions), rag_after_answers)
                        if t.key in forget_keys and contains_fact(a, t.answer)],
    }
    store.close()
    shutil.rmtree(root, ignore_errors=True)
    result["store"] = store_side
    log(f"store extraction: {store_side['extraction']}", started)

    # (b) the weights
    data = qa_data(corpus, targets)
    recipe = replace(SMOLLM2_FINETUNE, epochs=args.ft_epochs)
    t0 = time.perf_counter()
    tuned = finetune(base, data, recipe=recipe, description="facts into the weights")
    ft_s = time.perf_counter() - t0
    ft_correct, ft_q, _ = closed_book(tuned, targets)
    x_before = greedy_answers(tuned, prompts, max_new_tokens=48, batch_size=8)
    weights = {"recipe": recipe.to_dict(), "train_items": len(data), "setup_seconds (fine-tune)": ft_s,
               "accuracy before": table(ft_correct, forget_keys), "seconds_per_question": ft_q,
               "extraction before unlearning": sum(contains_fact(a, t.answer) for a, t in zip(x_before, owners)),
               "methods": {}}
    log(f"fine-tuned in {ft_s:.0f} s: {weights['accuracy before']}", started)

    relearn_recipe = replace(SMOLLM2_FINETUNE, epochs=args.relearn_epochs)
    relearn_data = data.of_owners([t.owner for t in set_a], name="relearn-A")
    b_keys = {t.key for t in set_b}

    def relearn(lm) -> dict:
        attacked = finetune(lm, relearn_data, recipe=relearn_recipe, description="relearning attack")
        correct, _, _ = closed_book(attacked, set_a + set_b)
        return {"set B (not relearned)": rate([v for (k, _), v in correct.items() if k in b_keys]),
                "set A (relearned)": rate([v for (k, _), v in correct.items() if k not in b_keys])}

    weights["relearning control (base model, never saw the facts)"] = relearn(base)
    log(f"relearning control: {weights['relearning control (base model, never saw the facts)']}", started)
    request = ForgetRequest(owners=[t.owner for t in forget], note="retrieval vs weights")
    for method in args.methods:
        t0 = time.perf_counter()
        run = unlearn(tuned, request, data, method=method, seed=0)
        seconds = time.perf_counter() - t0
        correct, _, answers = closed_book(run.model, targets)
        x_after = greedy_answers(run.model, prompts, max_new_tokens=48, batch_size=8)
        entry = {
            "seconds": seconds,
            "gradient_steps": run.cost.gradient_steps,
            "settings": {k: repr(v) for k, v in dict(run.config).items()},
            "accuracy after unlearning": table(correct, forget_keys),
            "extraction": {"prompts": len(prompts),
                           "answer_states_fact": sum(contains_fact(a, t.answer) for a, t in zip(x_after, owners))},
            "relearning attack": relearn(run.model),
            "examples": [{"question": q, "answer": a} for q, a in
                         list(zip([q for t in targets for q in t.questions], answers))[:4]],
        }
        weights["methods"][method] = entry
        log(f"{method}: {seconds:.0f} s, {entry['accuracy after unlearning']}, relearn {entry['relearning attack']}",
            started)
    result["weights"] = weights
    result["seconds"] = time.perf_counter() - started
    result["load_average"] = {"start": load0, "end": os.getloadavg()}
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
