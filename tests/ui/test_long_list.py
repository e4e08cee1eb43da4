"""The experiments list at 600 experiments: only the rows in view exist, yet every one is
reachable by scrolling, sorting, filtering and the keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.hyperflow.conftest import Running, serve_plane, server_settings
from tests.ui.conftest import experiment

COUNT = 600


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server over a store holding COUNT finished experiments (written to the store
    directly, as if an earlier server had run them: running 600 would take minutes)."""
    from tuner.spec import parse_experiment
    from tuner.store import Store
    from tuner.types import ExperimentPhase

    home = tmp_path_factory.mktemp("many-home")
    folder = tmp_path_factory.mktemp("many-trials")
    settings = server_settings(home)
    settings.ensure_home()
    store = Store(settings.store_url)
    try:
        for i in range(COUNT):
            body = parse_experiment(experiment(f"exp-{i:03d}", folder, trials=3)).to_dict()
            record = store.create_experiment("default", f"exp-{i:03d}", body, str(folder), "local")
            store.set_experiment_phase(
                record.uid, ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "done"
            )
    finally:
        store.close()
    with serve_plane(settings) as server:
        yield server


def _keys(page: Any) -> list[str]:
    return page.locator("#experiments tbody tr[data-key]").evaluate_all(
        "rs => rs.map(r => r.dataset.key)"
    )


def test_a_long_list_draws_the_rows_in_view(page: Any, many: Running) -> None:
    page.goto(many.url)
    page.wait_for_selector("#experiments tbody tr[data-key]")
    assert page.get_attribute("#experiments", "aria-rowcount") == str(COUNT + 1)
    assert page.inner_text("#exp-count") == "600 of 600 experiments"
    drawn = _keys(page)
    assert 10 < len(drawn) < 80, len(drawn)
    # Newest first; every drawn row has the same height (the spacers' arithmetic).
    assert drawn[0] == f"default/exp-{COUNT - 1:03d}"
    heights = page.locator("#experiments tbody tr[data-key]").evaluate_all(
        "rs => rs.map(r => Math.round(r.getBoundingClientRect().height))"
    )
    assert len(set(heights)) == 1, heights
    # The spacer rows that stand for the others are hidden from assistive technology.
    spacers = page.locator("#experiments tr.spacer")
    assert spacers.count() == 1
    assert spacers.get_attribute("aria-hidden") == "true"
    # The page is as tall as all rows: scrolling to the end shows the oldest.
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#experiments tbody tr[data-key]')]"
        ".some((r) => r.dataset.key === 'default/exp-000')"
    )
    last = page.locator('tr[data-key="default/exp-000"]').bounding_box()
    assert last is not None and 0 <= last["y"] < 900
    assert page.get_attribute('tr[data-key="default/exp-000"]', "aria-rowindex") == str(COUNT + 1)
    # Sort by name (ascending): the top of the page holds exp-000.
    page.evaluate("() => window.scrollTo(0, 0)")
    page.click("#experiments th button:has-text('Name')")
    page.wait_for_function(
        "() => document.querySelector('#experiments tbody tr[data-key]')?.dataset.key === 'default/exp-000'"
    )
    # A filter reaches rows that were not drawn.
    page.fill("#f-text", "exp-31")
    page.wait_for_function(
        "() => document.querySelector('#exp-count').textContent.startsWith('10 of')"
    )
    assert _keys(page) == [f"default/exp-{i}" for i in range(310, 320)]


def test_tabbing_down_the_long_list_keeps_the_focus(page: Any, many: Running) -> None:
    page.goto(many.url)
    page.wait_for_selector("#experiments tbody tr[data-key]")
    first = _keys(page)[0]
    page.focus(f'tr[data-key="{first}"] input[type=checkbox]')
    # Two stops a row (checkbox, link): 120 presses walk 60 rows, past the drawn ones.
    for _ in range(120):
        page.keyboard.press("Tab")
    where = page.evaluate(
        "() => { const a = document.activeElement; const r = a.closest('#experiments tr');"
        " return [a.tagName, r ? r.getAttribute('aria-rowindex') : null]; }"
    )
    assert where == ["INPUT", str(2 + 60)], where
    # Space selects the focused row; it stays selected when it scrolls out and back.
    page.keyboard.press("Space")
    key = page.evaluate("() => document.activeElement.closest('tr').dataset.key")
    page.wait_for_selector(f'tr[data-key="{key}"] input:checked')  # selected before it scrolls
    # Out of view (and out of the drawn rows), then back to where it was focused: a
    # position taken from the page, not a fraction of its height, which put the row
    # just outside the view on some runs.
    here = page.evaluate("() => window.scrollY")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_selector(f'tr[data-key="{key}"]', state="detached")
    page.evaluate(f"() => window.scrollTo(0, {here})")
    page.wait_for_selector(f'tr[data-key="{key}"] input:checked')
    assert page.inner_text("#compare") == "Compare selected"  # one is not enough
