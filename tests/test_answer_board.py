"""Pure unit tests of AnswerBoard bounds (no server)."""
from cellmage_server.answer.board import AnswerBoard

END = {"usage": None, "error": None, "done": {"finish_reason": "stop", "elapsed_ms": 1}}


def _answer(board, i, text, conversation="nb.ipynb", cell=None):
    r = board.open(f"{i:032x}", owner="u", conversation=conversation, cell_id=cell or f"c{i}", model="m", persona=None)
    board.text(r, text)
    board.end(r, END, text)
    return r


def test_keeps_the_last_200():
    board = AnswerBoard()
    for i in range(201):
        _answer(board, i, "x")
    assert len(board._ended) == 200
    try:
        board.get(f"{0:032x}")
        raise AssertionError("the oldest should be gone")
    except Exception as e:
        assert type(e).__name__ == "NotFound"


def test_the_16_mb_bound_is_bytes_of_text():
    board = AnswerBoard()
    text = "\U0001F600" * (1 << 20)  # 1 Mi characters, 4 MiB of UTF-8
    for i in range(15):
        _answer(board, i, text)
    held = sum(len(r.text.encode()) for r in board._ended.values())
    assert held <= 16 << 20, f"{held >> 20} MiB held (README: 16 MB of text at most)"


def test_one_answer_over_the_bound_does_not_push_the_others_out():
    board = AnswerBoard()
    _answer(board, 1, "small")
    _answer(board, 2, "y" * ((16 << 20) + 1))
    assert f"{1:032x}" in board._ended  # the small, recent answer should survive a single huge one
