"""Evidence anyone can check: every bundled rule cites a wheel line or a public URL, never a document outside the repo."""

from __future__ import annotations

import pytest

from envdoctor._matrix.evidence import OUTSIDE, PublicUrl, WheelLine, parse_evidence
from envdoctor._matrix.kinds import every_rule
from envdoctor._matrix.loader import available, load_matrix

BUNDLED = [e.ref for e in available() if e.bundled]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('transformers==4.43.0:transformers/modeling_rope_utils.py:L351 "\\"llama3\\": _compute"',
                 WheelLine("transformers", "4.43.0", "transformers/modeling_rope_utils.py", 351, 351,
                           ('"llama3": _compute',), '"\\"llama3\\": _compute"',
                           'transformers==4.43.0:transformers/modeling_rope_utils.py:L351 "\\"llama3\\": _compute"'),
                 id="a-line-with-a-quoted-hint"),
    pytest.param("trl==0.12.2:trl/trainer/sft_trainer.py:L110-L125 the deprecation list",
                 WheelLine("trl", "0.12.2", "trl/trainer/sft_trainer.py", 110, 125, (), "the deprecation list",
                           "trl==0.12.2:trl/trainer/sft_trainer.py:L110-L125 the deprecation list"), id="a-range"),
    pytest.param('transformers==5.0.0:transformers/training_args.py !"no_cuda:" removed',
                 WheelLine("transformers", "5.0.0", "transformers/training_args.py", 0, 0, (), '!"no_cuda:" removed',
                           'transformers==5.0.0:transformers/training_args.py !"no_cuda:" removed', ("no_cuda:",)),
                 id="a-whole-file-without"),
    pytest.param("https://docs.nvidia.com/cuda/x.html Table 3",
                 PublicUrl("https://docs.nvidia.com/cuda/x.html", "Table 3", "https://docs.nvidia.com/cuda/x.html Table 3"),
                 id="a-url"),
])
def test_the_two_forms(text: str, expected: object) -> None:
    assert parse_evidence(text) == expected


@pytest.mark.parametrize("text", ["transformers 4.41.0 training_args.py L784", "FACTS.md §2", "http://insecure.example",
                                  "run here: TypeError", "trl==0.8.6 sft_trainer.py L144"])
def test_what_is_not_evidence(text: str) -> None:
    assert parse_evidence(text) is None


@pytest.mark.parametrize("ref", BUNDLED)
def test_every_bundled_citation_is_a_wheel_line_or_a_public_url(ref: str) -> None:
    bad = [(p.place, e) for p in every_rule(load_matrix(ref, use_cache=False)) for e in p.evidence
           if parse_evidence(e) is None or OUTSIDE.search(e)]
    assert bad == [], f"{ref}: evidence that nobody can check"
