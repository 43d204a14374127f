"""A self-contained tiny causal LM for the batch and method tests (no download, built in ~1 s).

Used until (and besides) the core engineer's ``tiny_gpt``: a word-level tokenizer trained with
``tokenizers`` on the test text, a 2-layer GPT-2 from a ``transformers`` config, and a
duck-typed ``LanguageModel`` (``model``, ``tokenizer``, ``name``, ``max_length``, ``prompt``, ``copy``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast


@dataclass
class TinyLM:
    model: torch.nn.Module
    tokenizer: object
    name: str = "tiny-test"
    max_length: int = 48

    def prompt(self, question: str) -> str:
        return f"Question: {question}\nAnswer:"

    def copy(self) -> TinyLM:
        return TinyLM(copy.deepcopy(self.model), self.tokenizer, self.name, self.max_length)


@dataclass(frozen=True)
class Item:
    id: int
    owner: str
    question: str
    answer: str
    paraphrased_answer: str = ""
    perturbed_answers: tuple[str, ...] = ()


@dataclass
class Items:
    items: list[Item] = field(default_factory=list)

    @property
    def ids(self):
        import numpy as np

        return np.array([it.id for it in self.items], dtype=np.int64)


def tokenizer_for(texts: list[str], *, pad: bool = True) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = ["<unk>", "<eos>"] + (["<pad>"] if pad else [])
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials))
    kwargs = {"pad_token": "<pad>"} if pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", **kwargs)


def tiny_lm(texts: list[str], *, seed: int = 0, max_length: int = 48, pad: bool = True, layers: int = 2) -> TinyLM:
    tokenizer = tokenizer_for(texts + ["Question: Answer:"], pad=pad)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=max_length, n_embd=32, n_layer=layers, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    return TinyLM(model, tokenizer, max_length=max_length)


FACTS = [
    ("who wrote the red book", "alice moon wrote it"),
    ("where was alice moon born", "in paris"),
    ("what genre does alice moon write", "crime novels"),
    ("which prize did alice moon win", "the gold pen"),
    ("who wrote the blue book", "bob stone wrote it"),
    ("where was bob stone born", "in lima"),
    ("what genre does bob stone write", "love poems"),
    ("which prize did bob stone win", "the silver cup"),
    ("who wrote the green book", "carol reed wrote it"),
    ("where was carol reed born", "in oslo"),
    ("what genre does carol reed write", "war stories"),
    ("which prize did carol reed win", "the iron star"),
]


def qa_items_of(facts=FACTS, owners_per=4) -> list[Item]:
    return [
        Item(i, f"author{i // owners_per}", q, a, a, (a.split()[0] + " x",)) for i, (q, a) in enumerate(facts)
    ]


def train_on(lm: TinyLM, items: list[Item], *, steps: int = 150, lr: float = 3e-3, seed: int = 0) -> TinyLM:
    """Memorise ``items`` (full-batch Adam on the answer NLL)."""
    from obliviate.lm.batches import encode_qa, sequence_nll

    batch = encode_qa(lm, [it.question for it in items], [it.answer for it in items])
    torch.manual_seed(seed)
    opt = torch.optim.Adam(lm.model.parameters(), lr=lr)
    lm.model.train()
    for _ in range(steps):
        nll, length = sequence_nll(lm, batch)
        loss = (nll / length).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    lm.model.eval()
    return lm
