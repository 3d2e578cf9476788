"""The base of `lint --fix`'s planner: the issues by place, what was fixed or left NOT FIXED (every stale issue
ends in one of the two), and the edits a keyword needs without a config: delete it (a `drop = true` rule), write
what a removed boolean means now (`true_means`/`false_means`), rename or delete a dict key that reaches a call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import libcst as cst
from libcst.metadata import PositionProvider

from .._drift import rules
from . import imports
from .engine import INFO, Issue


def code_of(node: cst.CSTNode) -> str:
    """The source text of a LibCST node."""
    return cst.Module(body=[]).code_for_node(node)


class Edits(cst.CSTVisitor):
    """Issues by place, the outcome of each, and the keyword and dict-key edits (applied by `_rewrite.Fixer`)."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__()
        self.issues = list(issues)
        self.by_pos = {(i.line, i.col): i for i in reversed(self.issues)}  # the first issue at a place decides
        self.fixed: list[Issue] = []
        self.unfixed: list[tuple[Issue, str]] = []
        self.removals: set[cst.Arg] = set()
        self.means_args: dict[cst.Arg, tuple[str, str, str, bool | None]] = {}  # (keyword, True, False, the literal)
        self.key_removals: set[cst.DictElement] = set()  # `{"low_cpu_mem_usage": True}`: a dropped key
        self.key_renames: dict[cst.SimpleString, str] = {}  # a dict key (or `kw["key"]`) renamed, quotes kept
        self.means_keys: dict[cst.DictElement, tuple[str, str, str, bool | None]] = {}  # as means_args, in a dict

    def _pos(self, node: cst.CSTNode) -> tuple[int, int]:
        start = self.get_metadata(PositionProvider, node).start
        return start.line, start.column

    def _note(self, line: int, col: int, callable_: str, keyword: str, new: str, message: str) -> None:
        issue = next(iter(self.by_pos.values()), None)
        path, cell = (issue.path, issue.cell) if issue else ("", None)
        self.fixed.append(Issue(path, cell, line, col, callable_, keyword, INFO, "default_changed", message, new,
                                via=imports.FIX_NOTE))

    def _drop(self, issue: Issue, node: cst.Arg | cst.DictElement, given: set[str] | None = None) -> None:
        """A keyword with no equivalent: a boolean becomes what its value means now, one that changes nothing is
        deleted (as its rule says); else it is left with why."""
        if issue.means is not None:
            self._means(issue, node, given or set())
            return
        if not issue.drop:
            self.unfixed.append((issue, f"no equivalent: {issue.reason}"))
            return
        if isinstance(node, cst.Arg):
            self.removals.add(node)
        else:
            self.key_removals.add(node)
        self.fixed.append(issue)
        self._note(issue.line, issue.col, issue.callable, issue.keyword, "",
                   f"`{issue.keyword}` deleted from {rules.short(issue.callable)}(...): {issue.reason}")

    def _means(self, issue: Issue, node: cst.Arg | cst.DictElement, given: set[str]) -> None:
        """`group_by_length=x` -> `train_sampling_strategy=('group_by_length' if x else 'random')` (literals folded)."""
        keyword, yes, no = issue.means or ("", "", "")
        if keyword in given:
            self.unfixed.append((issue, f"both `{issue.keyword}` and `{keyword}` are given; keep `{keyword}`"))
            return
        flag = {"True": True, "False": False}.get(node.value.value) if isinstance(node.value, cst.Name) else None
        if isinstance(node, cst.Arg):
            self.means_args[node] = (keyword, yes, no, flag)
        else:  # {"use_flash_attention_2": True}: the key (quotes kept) and the value
            self.means_keys[node] = (keyword, yes, no, flag)
        self.fixed.append(replace(issue, new=keyword))  # shown as `old -> keyword`
        shown = (yes if flag else no) if flag is not None else f"({yes} if {code_of(node.value)} else {no})"
        self._note(issue.line, issue.col, issue.callable, issue.keyword, keyword,
                   f"{issue.keyword}={code_of(node.value)} -> {keyword}={shown}: {issue.reason}")

    def visit_Dict(self, node: cst.Dict) -> None:
        """String keys of a dict literal that reaches a call through `**` (or `model_init_kwargs=`)."""
        keys = {str(e.key.evaluated_value) for e in node.elements
                if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)}
        for e in node.elements:
            if not (isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)):
                continue
            issue = self.by_pos.get(self._pos(e.key))
            if issue is None or issue.keyword != e.key.evaluated_value or imports.is_import_issue(issue):
                continue
            if issue.new is None:
                self._drop(issue, e, keys)
            elif issue.target is not None:
                self.unfixed.append((issue, through_why(issue)))
            elif issue.new in keys:
                self.unfixed.append((issue, f"both `{issue.keyword}` and `{issue.new}` are keys; keep one"))
            else:
                self.key_renames[e.key] = issue.new
                self.fixed.append(issue)

    def visit_SubscriptElement(self, node: cst.SubscriptElement) -> None:
        """`kw["torch_dtype"] = ...` of a dict that reaches a call: a rename is the string; anything else is left."""
        key = node.slice.value if isinstance(node.slice, cst.Index) else None
        if not isinstance(key, cst.SimpleString):
            return
        issue = self.by_pos.get(self._pos(key))
        if issue is None or issue.keyword != key.evaluated_value or imports.is_import_issue(issue):
            return
        if issue.new is not None and issue.target is None:
            self.key_renames[key] = issue.new
            self.fixed.append(issue)
        elif issue.new is None:
            self.unfixed.append((issue, f"set as {issue.through[2:] or 'a dict'}[{key.value}]: delete that statement "
                                        f"by hand ({issue.reason})" if issue.drop else f"no equivalent: {issue.reason}"))
        else:
            self.unfixed.append((issue, through_why(issue)))

    def _account(self) -> None:
        """Every stale issue ends fixed or NOT FIXED: one that shares its place with another shares its outcome."""
        fixed = {(i.line, i.col) for i in self.fixed if i.severity != INFO}
        why = {(i.line, i.col): w for i, w in self.unfixed}
        seen = {_key(i) for i in self.fixed if i.severity != INFO} | {_key(i) for i, _ in self.unfixed}
        for i in self.issues:
            if _key(i) in seen:
                continue
            if (i.line, i.col) in fixed:
                self.fixed.append(i)
            else:
                self.unfixed.append((i, why.get((i.line, i.col)) or "not a keyword, dict key or import this fix can "
                                                                     "rewrite where it is written; edit it by hand"))


def _key(i: Issue) -> tuple[int, int, str, str]:
    return i.line, i.col, i.keyword, i.callable


def field_why(issue: Issue) -> str:
    """Why a dataclass field a user's subclass re-declares is left alone."""
    what = (f"rename it to `{issue.new}` by hand" if issue.new and not issue.target
            else f"delete it by hand ({issue.reason})")
    return (f"a field the subclass re-declares: renaming or deleting it changes the class's attribute and its "
            f"command-line flag (HfArgumentParser), which other code may use; {what} and update what reads "
            f"`.{issue.keyword}`")


def through_why(issue: Issue) -> str:
    """Why a moved keyword that reaches its call through a dict is left alone."""
    return (f"it reaches {rules.short(issue.callable)} through {issue.through or 'a dict'}, not written in the call: "
            f"move it into {issue.via}={rules.short(issue.target or '')}(..., {issue.new}=...) by hand")
