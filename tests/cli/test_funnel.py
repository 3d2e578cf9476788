"""The funnel: first contact (no arguments, --help, --version) imports no command module; the table is honest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from envdoctor._cli import COMMANDS, MODULES, build_parser, main, short_usage

HEAVY = ("torch", "transformers", "pydantic", "rich", "packaging", "tomllib", "envdoctor.training")


def _imported_after(argv: list[str]) -> list[str]:
    """The heavy or command modules a fresh interpreter has loaded after `envdoctor ARGV`."""
    code = ("import sys\nfrom envdoctor._cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"heavy = {HEAVY!r}\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy) or m.startswith('envdoctor._cli.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(done.stdout.strip().splitlines()[-1])  # a list literal printed by the child


@pytest.mark.parametrize("argv", [pytest.param(["--version"], id="version"), pytest.param(["--help"], id="help"),
                                  pytest.param([], id="no-arguments"), pytest.param(["--help", "check"], id="help-first")])
def test_first_contact_imports_nothing_heavy(argv: list[str]) -> None:
    assert _imported_after(argv) == []


def test_a_command_imports_only_its_module() -> None:
    assert _imported_after(["lint", "--help"]) == ["envdoctor._cli.lint"]


def test_no_arguments_is_a_usage_error_listing_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == short_usage()
    for name, (_, help_) in COMMANDS.items():
        assert f"  {name} " in out.err and help_ in out.err


def test_help_lists_every_command_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS) and "exit codes:" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["chekc"])
    assert e.value.code == 2
    assert "invalid choice: 'chekc'" in capsys.readouterr().err


def test_the_table_says_what_the_modules_register() -> None:
    """One definition in practice: the static helps are the ones each module gives argparse."""
    sub = build_parser(MODULES)._subparsers._group_actions[0]  # type: ignore[union-attr]
    registered = {a.dest: a.help for a in sub._choices_actions}
    assert registered == {name: help_ for name, (_, help_) in COMMANDS.items()}
