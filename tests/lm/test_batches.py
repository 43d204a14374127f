"""Question-answer batches: masking, padding, truncation, and NLL / log-prob read-outs by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _tiny import Item, Items, tiny_lm

from obliviate.errors import InvalidInputError
from obliviate.lm.batches import (
    IGNORE_INDEX,
    encode_qa,
    qa_batches,
    sequence_nll,
    token_logprobs,
)
from obliviate.training.loop import seeded_generator

TEXTS = ["who wrote the red book", "alice wrote it", "where was bob born", "bob was born in paris today"]


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(TEXTS, seed=1)


def test_labels_mask_prompt_and_padding(lm):
    batch = encode_qa(lm, ["who wrote the red book", "where was bob born"], ["alice wrote it", "paris"])
    tok = lm.tokenizer
    prompt0 = tok(lm.prompt("who wrote the red book"))["input_ids"]
    answer0 = tok("alice wrote it", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    n0 = len(prompt0) + len(answer0)
    assert batch["input_ids"][0, :n0].tolist() == prompt0 + answer0
    assert batch["labels"][0].tolist()[: len(prompt0)] == [IGNORE_INDEX] * len(prompt0)
    assert batch["labels"][0, len(prompt0) : n0].tolist() == answer0
    # second row is shorter: right padding with the pad id, masked in attention and labels
    prompt1 = tok(lm.prompt("where was bob born"))["input_ids"]
    n1 = len(prompt1) + 2
    assert batch["attention_mask"][1].tolist() == [1] * n1 + [0] * (n0 - n1)
    assert batch["input_ids"][1, n1:].eq(tok.pad_token_id).all()
    assert batch["labels"][1, n1:].eq(IGNORE_INDEX).all()
    assert batch["labels"][1].ne(IGNORE_INDEX).sum() == 2  # "paris" + eos


def test_missing_pad_token_falls_back_to_eos():
    lm = tiny_lm(TEXTS, pad=False)
    assert lm.tokenizer.pad_token_id is None
    batch = encode_qa(lm, ["who wrote the red book", "where"], ["alice", "paris today"])
    assert batch["input_ids"][1, -1] == lm.tokenizer.eos_token_id


def test_truncation_warns_and_keeps_answer_start():
    lm = tiny_lm(TEXTS, max_length=8)
    with pytest.warns(UserWarning, match="1 of 2"):
        batch = encode_qa(lm, ["who wrote the red book", "where"], ["alice wrote it " * 5, "paris"])
    assert batch["input_ids"].shape[1] == 8
    first_answer = lm.tokenizer("alice", add_special_tokens=False)["input_ids"][0]
    labels = batch["labels"][0]
    assert labels[labels != IGNORE_INDEX][0] == first_answer
    assert (labels != IGNORE_INDEX).sum() == 4  # half the window


def test_bad_input_is_typed(lm):
    with pytest.raises(InvalidInputError, match="one answer each"):
        encode_qa(lm, ["a", "b"], ["c"])
    with pytest.raises(InvalidInputError, match="single strings"):
        encode_qa(lm, "a", "b")
    with pytest.raises(InvalidInputError, match="idk_answers"):
        next(qa_batches(lm, Items([Item(0, "a", "q", "a")]), 2, answers="idk"))


def test_sequence_nll_and_token_logprobs_match_a_hand_computation(lm):
    batch = encode_qa(lm, ["who wrote the red book", "where was bob born"], ["alice wrote it", "paris"])
    with torch.no_grad():
        nll, length = sequence_nll(lm, batch)
        logits = lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    for b in range(2):
        expected, count = 0.0, 0
        for t in range(batch["input_ids"].shape[1] - 1):
            label = int(batch["labels"][b, t + 1])
            if label != IGNORE_INDEX:
                expected -= float(F.log_softmax(logits[b, t], -1)[label])
                count += 1
        assert math.isclose(float(nll[b]), expected, rel_tol=1e-5)
        assert int(length[b]) == count
    out = token_logprobs(lm, batch)
    assert torch.allclose(-(out.logprobs * out.mask).sum(1), nll, atol=1e-5)
    t = int(out.mask[0].nonzero()[0])
    logp = F.log_softmax(logits[0, t], -1)
    mu = float((logp.exp() * logp).sum())
    sigma = float(((logp.exp() * (logp - mu) ** 2).sum()).sqrt())
    assert math.isclose(float(out.mu[0, t]), mu, rel_tol=1e-5)
    assert math.isclose(float(out.sigma[0, t]), sigma, rel_tol=1e-4)


def test_qa_batches_cover_every_item_once_in_seeded_order(lm):
    data = Items([Item(i, f"o{i % 2}", f"where was bob born {i}", "paris", "in paris", ()) for i in range(7)])
    runs = [
        [b["ids"].tolist() for b in qa_batches(lm, data, 3, generator=seeded_generator(5, 1))] for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert sorted(i for b in runs[0] for i in b) == list(range(7))
    idk = list(qa_batches(lm, data, 7, shuffle=False, answers="idk", idk_answers=["alice"], generator=seeded_generator(0)))
    alice = lm.tokenizer("alice", add_special_tokens=False)["input_ids"][0]
    labels = idk[0]["labels"]
    assert (labels[labels != IGNORE_INDEX].view(7, 2)[:, 0] == alice).all()
