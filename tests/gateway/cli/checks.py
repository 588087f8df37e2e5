"""What every device tool's refusal must look like: the exit code, one line naming the tool and the fault, no trace."""

from __future__ import annotations


def assert_one_line_failure(result: tuple[int, str, str], *, code: int, tool: str, expected: str) -> None:
    exit_code, out, err = result
    assert exit_code == code, err
    assert err.startswith(f"{tool}: "), err
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in out + err
    assert out == ""
