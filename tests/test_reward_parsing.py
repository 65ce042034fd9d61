"""parse_response on the shapes real model answers take; code_digest de-duplication."""

from __future__ import annotations

import ast

import pytest

from eureka_lab.reward.parsing import ParseResult, code_digest, parse_response

REWARD = """\
import numpy as np

def compute_reward(obs, action, next_obs, info):
    forward = next_obs[:, 0] - obs[:, 0]
    ctrl = -0.05 * np.sum(action ** 2, axis=1)
    return forward + ctrl, {"forward": forward, "ctrl": ctrl}
"""


def assert_valid(result: ParseResult) -> ast.Module:
    assert result.code is not None, result.reason
    tree = ast.parse(result.code)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "compute_reward" for n in tree.body)
    return tree


def defined(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]


def test_single_fenced_block_with_prose() -> None:
    text = (
        "Sure! Below is a reward that encourages the cheetah to run forward while keeping "
        f"the control cost low.\n\n```python\n{REWARD}```\n\n"
        "**Explanation:** `forward` measures progress; `ctrl` penalises large torques."
    )
    result = parse_response(text)
    assert_valid(result)
    assert result.code.strip() == REWARD.strip()
    assert result.reason == "took fenced block 1 of 1 (defines compute_reward)"


@pytest.mark.parametrize("fence", ["```python", "```py", "```", "```Python3", "~~~python"])
def test_fence_flavours(fence: str) -> None:
    close = fence[:3]
    result = parse_response(f"Here you go:\n{fence}\n{REWARD}{close}\nGood luck!")
    assert_valid(result)


def test_last_of_several_definitions_wins_and_helpers_merge() -> None:
    text = """My first attempt:
```python
def compute_reward(obs, action, next_obs, info):
    return obs[:, 0], {"x": obs[:, 0]}
```
That ignores posture. A helper for posture:
```python
import numpy as np

UPRIGHT_TEMP = 0.4

def upright_bonus(obs):
    return np.exp(-np.abs(obs[:, 1]) / UPRIGHT_TEMP)

def unused_helper(x):
    return x
```
To run it:
```bash
python train.py
```
Final version:
```python
def compute_reward(obs, action, next_obs, info):
    upright = upright_bonus(next_obs)
    speed = next_obs[:, 8]
    return upright + speed, {"upright": upright, "speed": speed}
```
"""
    result = parse_response(text)
    tree = assert_valid(result)
    assert result.reason.startswith("took fenced block 4 of 4 (defines compute_reward)")
    assert "last of 2 blocks that define it" in result.reason
    assert "plus helper block 2" in result.reason
    assert defined(tree) == ["upright_bonus", "compute_reward"]
    assert "UPRIGHT_TEMP = 0.4" in result.code and "import numpy as np" in result.code
    assert "unused_helper" not in result.code


def test_helpers_in_the_same_block_are_kept() -> None:
    code = "import math\n\ndef _shaped(x, t):\n    return math.exp(-x / t)\n\n" + REWARD
    result = parse_response(f"```python\n{code}```")
    assert defined(assert_valid(result)) == ["_shaped", "compute_reward"]


def test_missing_fences_take_the_code_region() -> None:
    text = """I will reward forward progress and penalise effort.

import numpy as np

SCALE = 2.0

def speed_term(obs):
    return SCALE * obs[:, 0]

def compute_reward(obs, action, next_obs, info):
    speed = speed_term(next_obs)

    effort = -0.1 * np.sum(action ** 2, axis=1)
    return speed + effort, {"speed": speed, "effort": effort}

This should make the agent run without wasting energy.
"""
    result = parse_response(text)
    tree = assert_valid(result)
    assert "unfenced" in result.reason and "no fenced block" in result.reason
    assert defined(tree) == ["speed_term", "compute_reward"]
    assert "SCALE = 2.0" in result.code
    assert "I will reward" not in result.code and "This should" not in result.code


def test_unfenced_definition_beside_unrelated_fences() -> None:
    text = "Run:\n```bash\npip install numpy\n```\nCode:\n\n" + REWARD + "\nDone."
    result = parse_response(text)
    assert_valid(result)
    assert "outside the fenced blocks" in result.reason


def test_think_section_is_ignored() -> None:
    draft = "def compute_reward(obs, action, next_obs, info):\n    return 0\n"
    text = (
        f"<think>\nThe user wants running. Draft:\n```python\n{draft}```\nBetter add control "
        f"cost.\n</think>\n\nHere is the reward:\n```python\n{REWARD}```"
    )
    result = parse_response(text)
    assert_valid(result)
    assert "ctrl" in result.code and "return 0" not in result.code
    assert "think" not in result.reason


def test_thinking_tag_and_missing_opening_tag() -> None:
    for text in (
        f"<thinking>maybe ```python\nx = 1\n```</thinking>\n```python\n{REWARD}```",
        f"reasoning without an opening tag, def compute_reward(...)\n</think>\n```python\n{REWARD}```",
    ):
        result = parse_response(text)
        assert_valid(result)
        assert "ctrl" in result.code


def test_unclosed_leading_think_falls_back_to_its_code() -> None:
    text = f"<think>\nLet me write the reward.\n```python\n{REWARD}```\nThat should work, now"
    result = parse_response(text)
    assert_valid(result)
    assert "inside the <think> section" in result.reason


def test_windows_line_endings() -> None:
    text = "Reward:\r\n```python\r\n" + REWARD.replace("\n", "\r\n") + "```\r\n"
    result = parse_response(text)
    assert_valid(result)
    assert "\r" not in result.code


def test_tabs_are_expanded_only_when_needed() -> None:
    mixed = REWARD.replace("    forward", "\tforward")  # tab and spaces in one body
    result = parse_response(f"```python\n{mixed}```")
    assert_valid(result)
    assert "expanded tabs" in result.reason
    only_tabs = REWARD.replace("    ", "\t")
    result = parse_response(f"```python\n{only_tabs}```")
    assert_valid(result)
    assert "\t" in result.code and "expanded tabs" not in result.reason


def test_indented_block_in_a_list_item() -> None:
    indented = "\n".join("   " + line if line else "" for line in REWARD.splitlines())
    result = parse_response(f"1. The reward:\n   ```python\n{indented}\n   ```\n")
    assert_valid(result)


def test_missing_numpy_import_is_added() -> None:
    body = REWARD.replace("import numpy as np\n\n", "")
    result = parse_response(f"```python\n{body}```")
    assert_valid(result)
    assert result.code.startswith("import numpy as np\n")
    assert "added missing `import numpy as np`" in result.reason


def test_example_usage_is_dropped() -> None:
    code = REWARD + (
        "\nif __name__ == '__main__':\n    obs = np.zeros((2, 17))\n"
        "    print(compute_reward(obs, obs, obs, {}))\nprint('done')\n"
    )
    result = parse_response(f"```python\n{code}```")
    assert_valid(result)
    assert "__main__" not in result.code and "print" not in result.code
    assert "dropped 2 top-level example/test statement(s)" in result.reason


def test_example_runs_sharing_a_line_go_with_that_line_only() -> None:
    """``print(1); print(2)`` once took the next line too (here the definition), and a run on
    the last line of a statement cut the statement in half: both raised SyntaxError."""
    code = "print(1); print(2)\n" + REWARD + "X = (1,\n     2); print(X)\n"
    result = parse_response(f"```python\n{code}```")
    assert_valid(result)
    assert result.code.startswith("import numpy as np\n")
    assert result.code.endswith("X = (1,\n     2); print(X)\n")
    assert "dropped 2 top-level example/test statement(s)" in result.reason


def test_truncated_answer_with_unclosed_fence() -> None:
    result = parse_response(f"Here:\n```python\n{REWARD}")
    assert_valid(result)


def test_broken_block_is_salvaged_around_the_definition() -> None:
    text = f"```python\n{REWARD}\nThis reward balances speed and effort.\n```"
    result = parse_response(text)
    assert_valid(result)
    assert "parseable part of fenced block 1" in result.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "I'm sorry, I can't help with that.",
            "no code: no fenced block and no `def compute_reward`",
        ),
        ("```python\nx = 1\n```", "no code: none of the 1 fenced block(s) defines compute_reward"),
        (
            "```python\ndef compute_reward(obs, action, next_obs, info)\n    return 1\n```",
            "no code: `def compute_reward` appears but no region around it parses as Python",
        ),
        ("", "no code: no fenced block and no `def compute_reward`"),
    ],
)
def test_no_code_reasons(text: str, reason: str) -> None:
    result = parse_response(text)
    assert result.code is None
    assert result.reason == reason


def test_digest_ignores_comments_formatting_and_docstrings() -> None:
    reformatted = '''
import numpy as np


def compute_reward(obs, action, next_obs, info):
    """Forward progress minus effort."""
    # progress along x
    forward = (next_obs[:, 0]
               - obs[:, 0])
    ctrl = -0.05 * np.sum(action**2, axis=1)  # effort
    return (forward + ctrl, {'forward': forward, 'ctrl': ctrl})
'''
    assert code_digest(reformatted) == code_digest(REWARD)
    assert len(code_digest(REWARD)) == 16
    assert code_digest(REWARD.replace("0.05", "0.5")) != code_digest(REWARD)


def test_digest_of_parsed_answers_matches_across_formats() -> None:
    a = parse_response(f"```python\n{REWARD}```").code
    b = parse_response("Answer:\r\n\r\n" + REWARD.replace("\n", "\r\n")).code
    assert a is not None and b is not None
    assert code_digest(a) == code_digest(b)
