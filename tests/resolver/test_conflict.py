"""The refusal parsers on real pip and uv output, two versions of each (recorded under `recorded/`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdoctor._resolver import ConflictKind, Requested, Side
from envdoctor._resolver._conflict import from_pip, from_uv, unreachable

RECORDED = Path(__file__).parent / "recorded"
ASKED = (Requested("gamma==1.0", "req.txt:1"), Requested("beta==2.0", "req.txt:2"))
GAMMA, BETA = ASKED


def _read(tool: str, name: str) -> str:
    return (RECORDED / tool / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("tool", ["pip-23.2.1", "pip-25.3"])
def test_pip_resolution_impossible_names_both_sides_and_the_lines(tool: str) -> None:
    c = from_pip(_read(tool, "conflict.txt"), ASKED)
    assert c.kind is ConflictKind.UNSATISFIABLE
    assert c.summary == ("Cannot install beta==2.0 and gamma==1.0: requested beta==2.0; "
                         "gamma 1.0 depends on beta==1.0")
    assert c.chain == ("The user requested beta==2.0", "gamma 1.0 depends on beta==1.0")
    assert set(c.sides) == {Side("beta", "==2.0", line=BETA), Side("beta", "==1.0", "gamma", "1.0", BETA)}
    assert set(c.requested) == set(ASKED) and not c.unreachable


@pytest.mark.parametrize(("tool", "dependent_version"), [
    pytest.param("uv-0.4.30", "1.0", id="uv-0.4.30"),  # "Because gamma==1.0 depends on beta==1.0", wrapped at 80
    pytest.param("uv-0.13.9", None, id="uv-0.13.9"),  # "Because all versions of gamma depend on beta==1.0"
])
def test_uv_no_solution_names_both_sides_and_the_lines(tool: str, dependent_version: str | None) -> None:
    c = from_uv(_read(tool, "conflict.txt"), ASKED)
    assert c.kind is ConflictKind.UNSATISFIABLE
    assert "we can conclude that your requirements are unsatisfiable" in c.summary and "\n" not in c.summary
    # "we can conclude that you require beta==1.0" is derived, not a requested side
    assert c.sides == (Side("beta", "==1.0", "gamma", dependent_version, BETA), Side("gamma", "==1.0", line=GAMMA),
                       Side("beta", "==2.0", line=BETA))
    assert c.requested == (GAMMA, BETA)


@pytest.mark.parametrize("tool", ["pip-23.2.1", "pip-25.3"])
def test_pip_no_matching_distribution(tool: str) -> None:
    alpha = Requested("alpha==3.0", "req.txt:1")
    c = from_pip(_read(tool, "notfound.txt"), (alpha,))
    assert c.kind is ConflictKind.NOT_FOUND
    assert c.summary == "no version of alpha==3.0 can be found (from versions: 1.0, 2.0)"
    assert c.requested == (alpha,)


@pytest.mark.parametrize("tool", ["uv-0.4.30", "uv-0.13.9"])
def test_uv_no_such_version(tool: str) -> None:
    alpha = Requested("alpha==3.0", "req.txt:1")
    c = from_uv(_read(tool, "notfound.txt"), (alpha,))
    assert c.kind is ConflictKind.NOT_FOUND
    assert c.summary.startswith("Because there is no version of alpha==3.0 and you require alpha==3.0")
    assert c.sides == (Side("alpha", "==3.0", line=alpha),) and c.requested == (alpha,)


def test_pip_range_dependency_is_one_side_in_packagings_spelling() -> None:
    text = ("ERROR: Cannot install tokenizers==0.21.0 and transformers==4.46.3 because these package versions have "
            "conflicting dependencies.\n\nThe conflict is caused by:\n    The user requested tokenizers==0.21.0\n"
            "    transformers 4.46.3 depends on tokenizers<0.21 and >=0.20\n")
    tok = Requested("tokenizers==0.21.0", "m packages.tokenizers")
    c = from_pip(text, (Requested("transformers==4.46.3", "m packages.transformers"), tok))
    assert Side("tokenizers", "<0.21,>=0.20", "transformers", "4.46.3", tok) in c.sides


def test_a_tool_failure_keeps_its_last_errors_and_says_when_the_index_is_unreachable() -> None:
    text = ("WARNING: Retrying ... Failed to establish a new connection: [Errno 111] Connection refused\n"
            "ERROR: Could not find a version that satisfies the requirement alpha==1.0 (from versions: none)\n"
            "ERROR: No matching distribution found for alpha==1.0\n")
    c = from_pip(text, (Requested("alpha==1.0"),))
    assert c.kind is ConflictKind.NOT_FOUND and c.unreachable
    u = from_uv("error: Failed to fetch: `http://127.0.0.1:9/simple/alpha/`\n  Caused by: error sending request\n",
                (Requested("alpha==1.0"),))
    assert u.kind is ConflictKind.FAILED and u.unreachable and "Failed to fetch" in u.summary
    assert not unreachable(_read("uv-0.13.9", "conflict.txt"))


@pytest.mark.parametrize(("name", "asked", "unbuilt"), [
    pytest.param("no-usable-wheels-transitive.txt", ("bitsandbytes==0.39.0", "wandb==0.15.3"), ("pathtools",),
                 id="transitive"),
    pytest.param("no-usable-wheels-pinned.txt", ("click==8.0.3", "deepspeed==0.8.0"), ("deepspeed",), id="pinned"),
    pytest.param("no-matching-abi.txt", ("torch==1.12.0",), (), id="no-wheel-for-this-python-is-a-refusal"),
])
def test_uv_names_the_packages_it_could_not_use_without_a_build(name: str, asked: tuple[str, ...],
                                                                 unbuilt: tuple[str, ...]) -> None:
    # issue 13: a package with only an sdist is "not evaluated", not a conflict; a release with wheels for other
    # Pythons only (and no sdist) is a real refusal
    c = from_uv(_read("uv-0.13.9", name), [Requested(a) for a in asked])
    assert c.unbuilt == unbuilt


def test_pips_wheels_only_not_found_names_the_requirement_even_when_it_is_not_requested() -> None:
    from envdoctor._resolver._conflict import pip_not_found

    text = _read("pip-23.2.1", "only-binary-sdist-dependency.txt")
    assert pip_not_found(text) == "pathtools"
    c = from_pip(text, [Requested("wandb==0.15.3")])
    assert c.kind is ConflictKind.NOT_FOUND and c.unbuilt == ()  # the pip backend asks `pip index versions` next


@pytest.mark.parametrize(("tool", "parse"), [("uv-0.13.9", from_uv), ("pip-23.2.1", from_pip)])
def test_a_failed_build_is_a_failure_not_a_refusal(tool: str, parse) -> None:  # type: ignore[no-untyped-def]
    # uv words it with 'cause:' lines, as it words a refusal; pip's lines do not name the package
    c = parse(_read(tool, "build-failed.txt"), [Requested("brokenmeta==1.0")])
    assert c.kind is ConflictKind.FAILED and c.sides == () and c.unbuilt == ()
    assert "brokenmeta" in c.summary
