"""The named recipes on local files shaped like the real ones, against direct transcriptions.

The transcriptions below follow github.com/locuslab/wanda ``lib/data.py`` (commit 0628038)
``get_c4`` / ``get_wikitext2`` and github.com/IST-DASLab/sparsegpt ``datautils.py`` (commit 54c8443)
``get_ptb`` line by line, with the code's variable names; the only change is where the rows come
from: ``load_dataset`` reads the local files here with Hugging Face ``datasets``' own json /
parquet builders (what the hub serves for these repositories), and the tokenizer is passed in.
maskbench reads the same files with its own readers (:mod:`models.datasets`), so the test also
checks that those give the rows ``datasets`` gives.
"""

from __future__ import annotations

import gzip
import json
import random

import pytest
import torch

from models.calibration import eval_windows, load_corpus
from models.protocol_data import prepare_datasets

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")

SEQLEN = 32
NSAMPLES = 12


# ----------------------------------------------------------------------------- local files shaped like the hub's
def _documents() -> list[str]:
    topics = load_corpus().text.split("\n\n")
    return [t for t in topics if t.strip()][:400]


@pytest.fixture(scope="module")
def c4_dir(tmp_path_factory):
    """``en/c4-train.00000-of-01024.json.gz`` and ``en/c4-validation.00000-of-00008.json.gz`` as C4 has them:
    gzip'd JSON lines with ``text``, ``timestamp``, ``url``."""
    root = tmp_path_factory.mktemp("c4")
    (root / "en").mkdir()
    docs = _documents()
    for name, part in (("c4-train.00000-of-01024.json.gz", docs[:300]), ("c4-validation.00000-of-00008.json.gz", docs[300:])):
        with gzip.open(root / "en" / name, "wt", encoding="utf-8") as fh:
            for n, text in enumerate(part):
                fh.write(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z",
                                     "url": f"https://example.org/{n}"}) + "\n")
    return root


def _wikitext_rows(text: str) -> list[str]:
    """Rows as the hub's wikitext-2-raw-v1 has them: every line with its newline, blank lines empty."""
    return [line if line.strip() else "" for line in text.splitlines(keepends=True)]


@pytest.fixture(scope="module")
def wikitext_dir(tmp_path_factory):
    """``wikitext-2-raw-v1/{train,test}-00000-of-00001.parquet`` (column ``text``) and ``wiki.{train,test}.raw``."""
    root = tmp_path_factory.mktemp("wikitext")
    (root / "wikitext-2-raw-v1").mkdir()
    text = load_corpus().text
    cut = len(text) * 4 // 5
    for split, part in (("train", text[:cut]), ("test", text[cut:])):
        pq.write_table(pa.table({"text": _wikitext_rows(part)}), root / "wikitext-2-raw-v1" / f"{split}-00000-of-00001.parquet")
        (root / f"wiki.{split}.raw").write_text(part, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_llama_dir))


def _load_json(path, cache):
    return datasets.load_dataset("json", data_files={"train": str(path)}, split="train", cache_dir=str(cache))


def _load_parquet(path, cache):
    return datasets.load_dataset("parquet", data_files={"train": str(path)}, split="train", cache_dir=str(cache))


# ----------------------------------------------------------------------------- transcriptions
def released_get_c4(traindata, valdata, nsamples, seed, seqlen, tokenizer):
    """Wanda ``lib/data.py::get_c4`` with ``traindata`` / ``valdata`` passed in."""
    random.seed(seed)
    trainloader = []
    for _ in range(nsamples):
        while True:
            i = random.randint(0, len(traindata) - 1)
            trainenc = tokenizer(traindata[i]['text'], return_tensors='pt')
            if trainenc.input_ids.shape[1] > seqlen:
                break
        i = random.randint(0, trainenc.input_ids.shape[1] - seqlen - 1)
        j = i + seqlen
        inp = trainenc.input_ids[:, i:j]
        tar = inp.clone()
        tar[:, :-1] = -100
        trainloader.append((inp, tar))
    valenc = tokenizer(' '.join(valdata[:1100]['text']), return_tensors='pt')
    valenc = valenc.input_ids[:, :(256 * seqlen)]
    return trainloader, valenc


def released_get_wikitext2(traindata, testdata, nsamples, seed, seqlen, tokenizer, train_join=" ", test_join="\n\n"):
    """Wanda ``lib/data.py::get_wikitext2`` (``get_ptb`` of SparseGPT: both joins ``" "``, field ``sentence``)."""
    trainenc = tokenizer(train_join.join(traindata), return_tensors='pt')
    testenc = tokenizer(test_join.join(testdata), return_tensors='pt')
    random.seed(seed)
    trainloader = []
    for _ in range(nsamples):
        i = random.randint(0, trainenc.input_ids.shape[1] - seqlen - 1)
        j = i + seqlen
        inp = trainenc.input_ids[:, i:j]
        tar = inp.clone()
        tar[:, :-1] = -100
        trainloader.append((inp, tar))
    return trainloader, testenc


def released_eval_windows(testenc, seqlen):
    """``lib/eval.py::eval_ppl_wikitext``'s windows: ``nsamples = numel // seqlen``, stride seqlen."""
    nsamples = testenc.numel() // seqlen
    return [testenc[:, (i * seqlen):((i + 1) * seqlen)].reshape(1, seqlen) for i in range(nsamples)]


def _assert_same(ours, trainloader, testenc, seqlen):
    assert torch.equal(ours.windows, torch.cat([inp for inp, _ in trainloader]))
    ref = released_eval_windows(testenc, seqlen)
    mine = eval_windows(ours.held_out, seqlen)
    assert len(ref) == len(mine) == ours.protocol.eval_windows > 0
    assert torch.equal(mine, torch.cat(ref))


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", [0, 3])
def test_c4_recipe_equals_released_get_c4(c4_dir, tokenizer, tmp_path, seed):
    train = _load_json(c4_dir / "en/c4-train.00000-of-01024.json.gz", tmp_path)
    val = _load_json(c4_dir / "en/c4-validation.00000-of-00008.json.gz", tmp_path)
    trainloader, valenc = released_get_c4(train, val, NSAMPLES, seed, SEQLEN, tokenizer)
    ours = prepare_datasets(tokenizer, f"c4:{c4_dir}", None, NSAMPLES, SEQLEN, seed, "pruned")
    _assert_same(ours, trainloader, valenc, SEQLEN)
    rec = ours.protocol
    assert rec.calibration_split.endswith("c4-train.00000-of-01024.json.gz")
    assert rec.evaluation_split.endswith("c4-validation.00000-of-00008.json.gz")
    assert all(len(d) == 64 for d in (*rec.calibration_files.values(), *rec.evaluation_files.values()))
    # a shard file given for each role reads the same
    same = prepare_datasets(tokenizer, f"c4:{c4_dir}/en/c4-train.00000-of-01024.json.gz",
                            f"c4:{c4_dir}/en/c4-validation.00000-of-00008.json.gz", NSAMPLES, SEQLEN, seed, "pruned")
    assert torch.equal(same.windows, ours.windows) and torch.equal(same.held_out, ours.held_out)


def test_c4_eval_keeps_first_1100_documents_and_256_windows(tmp_path, tokenizer):
    """With more than 1 100 validation documents only the first 1 100 count, and at most 256 windows."""
    docs = [f"document {n}: " + " ".join(f"w{(n * 7 + k) % 97}" for k in range(40)) for n in range(1300)]
    path = tmp_path / "c4-validation.00000-of-00008.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": d}) + "\n" for d in docs)
    train = tmp_path / "train.json"
    train.write_text("\n".join(json.dumps({"text": d}) for d in docs[:50]), encoding="utf-8")
    ours = prepare_datasets(tokenizer, f"c4:{train}", f"c4:{path}", 2, 8, 0, "pruned")
    _, valenc = released_get_c4(_load_json(train, tmp_path), _load_json(path, tmp_path), 2, 0, 8, tokenizer)
    assert torch.equal(ours.held_out, valenc.reshape(-1))
    assert ours.protocol.eval_windows == 256


@pytest.mark.parametrize("kind", ["parquet", "raw"])
def test_wikitext2_recipe_equals_released_get_wikitext2(wikitext_dir, tokenizer, tmp_path, kind):
    train = _load_parquet(wikitext_dir / "wikitext-2-raw-v1/train-00000-of-00001.parquet", tmp_path)["text"]
    test = _load_parquet(wikitext_dir / "wikitext-2-raw-v1/test-00000-of-00001.parquet", tmp_path)["text"]
    trainloader, testenc = released_get_wikitext2(list(train), list(test), NSAMPLES, 0, SEQLEN, tokenizer)
    if kind == "parquet":
        ours = prepare_datasets(tokenizer, f"wikitext2:{wikitext_dir}", None, NSAMPLES, SEQLEN, 0, "pruned")
    else:
        ours = prepare_datasets(tokenizer, f"wikitext2:{wikitext_dir / 'wiki.train.raw'}",
                                f"wikitext2:{wikitext_dir / 'wiki.test.raw'}", NSAMPLES, SEQLEN, 0, "pruned")
    _assert_same(ours, trainloader, testenc.input_ids, SEQLEN)
    assert ours.protocol.evaluation_rule.startswith("rows joined by '\\n\\n'")


def test_ptb_recipe_equals_released_get_ptb(tmp_path, tokenizer):
    """PTB text files (one sentence a line, as ``ptb.{train,test}.txt``): rows stripped, joined by spaces."""
    lines = [s.strip() for s in load_corpus().text.splitlines() if s.strip()]
    (tmp_path / "ptb.train.txt").write_text("\n".join(f" {s} " for s in lines[:1500]) + "\n", encoding="utf-8")
    (tmp_path / "ptb.test.txt").write_text("\n".join(f" {s} " for s in lines[1500:2000]) + "\n", encoding="utf-8")
    trainloader, testenc = released_get_wikitext2(lines[:1500], lines[1500:2000], NSAMPLES, 1, SEQLEN, tokenizer,
                                                  " ", " ")
    ours = prepare_datasets(tokenizer, f"ptb:{tmp_path}", None, NSAMPLES, SEQLEN, 1, "pruned")
    _assert_same(ours, trainloader, testenc.input_ids, SEQLEN)


def test_split_recipe_keeps_the_old_default(tokenizer):
    """``pydoc`` (and no dataset) is the old calibration: same windows, held-out part and record keys."""
    from models.calibration import prepare

    old = prepare(tokenizer, load_corpus(), 4, SEQLEN, 0, "pruned", 0.1)
    new = prepare_datasets(tokenizer, None, None, 4, SEQLEN, 0, "pruned", 0.1)
    assert torch.equal(old.windows, new.windows) and torch.equal(old.held_out, new.held_out)
    meta = new.protocol.metadata()
    assert {k: meta[k] for k in old.protocol.metadata()} == old.protocol.metadata()


def test_json_and_parquet_files_use_the_split_recipe(tmp_path, tokenizer):
    docs = _documents()[:120]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    pq.write_table(pa.table({"text": docs}), tmp_path / "d.parquet")
    (tmp_path / "d.txt").write_text("\n\n".join(docs), encoding="utf-8")
    runs = [prepare_datasets(tokenizer, f"{k}:{tmp_path / f}", None, 4, SEQLEN, 0, "pruned")
            for k, f in (("json", "d.jsonl"), ("parquet", "d.parquet"), ("text", "d.txt"))]
    for r in runs[1:]:
        assert torch.equal(r.windows, runs[0].windows) and torch.equal(r.held_out, runs[0].held_out)
    assert runs[0].protocol.calibration_files == {"d.jsonl": runs[0].protocol.evaluation_files["d.jsonl"]}
